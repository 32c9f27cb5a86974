//! Which stored objects share a parity group, and how many parity shards each group gets.
//!
//! Shards are whole objects (losing one object then loses one shard, never more), padded
//! with zeros to the largest of their group, so a group costs M × its largest member. Two
//! choices keep that close to what was asked:
//!
//! - **Objects of similar size share a group**: they are sorted by size (largest first)
//!   and cut into runs of K, so padding is small. Groups are explicit in the parity map,
//!   so maps written in index order before this stay readable.
//! - **A `P%` budget adapts the shape** ([`ParityRequest::budget`]): the nominal `ec:K+M`
//!   is kept when it fits within the budget (plus [`TOLERANCE`]); otherwise groups grow
//!   (larger K), then M is lowered, until it fits. On a dataset of full chunks the nominal
//!   shape fits as it is. When nothing fits (the largest object alone is more than the
//!   budget: to rebuild it, a parity shard must be as large), the least parity that still
//!   rebuilds a lost object is written (one group, M = 1), and [`GroupPlan::shortfall`] says
//!   so.
//!
//! `ec:K+M` is used as given; [`GroupPlan::shortfall`] says when it writes well above M/K.

use serde::Serialize;
use strata_codec::parity::{shard_len_for, ParityRequest, ParitySpec};

use super::parity::StoredObject;

/// How far above its budget (in parity bytes per data byte) a `P%` request may land.
pub const TOLERANCE: f64 = 0.01;
/// How far above M/K an `ec:K+M` request may land before it counts as a shortfall.
pub const PADDED_ABOVE: f64 = 0.03;

/// Why the parity written differs from what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    /// A `P%` budget: the nominal shape would have written more, so groups were enlarged
    /// or M lowered to stay within it.
    Adapted,
    /// A `P%` budget nothing reaches: the largest object alone needs more parity; the
    /// least parity that rebuilds any one lost object is written instead.
    Unreachable,
    /// `ec:K+M` as given, well above M/K: objects of different sizes are padded.
    Padded,
}

/// The groups chosen for a version's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPlan {
    /// The shape written: K data objects at most per group, M parity shards each.
    pub spec: ParitySpec,
    /// The shape asked for (`ec:K+M`, or a budget's nominal shape).
    pub nominal: ParitySpec,
    /// Each group's members, as indices into the objects, largest first.
    pub groups: Vec<Vec<usize>>,
    /// Bytes of the objects.
    pub data_bytes: u64,
    /// Bytes of parity the groups need.
    pub parity_bytes: u64,
    /// Bytes of parity the nominal shape would need over the same objects.
    pub nominal_parity_bytes: u64,
    /// The largest object: no parity shard of its group can be shorter.
    pub largest_object: u64,
    /// Why the parity differs from what was asked, when it does.
    pub shortfall: Option<Shortfall>,
}

/// Choose the groups for `objects` (see the module docs).
pub fn plan_groups(objects: &[StoredObject], request: ParityRequest) -> GroupPlan {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&objects[a], &objects[b]);
        b.len.cmp(&a.len).then_with(|| a.key.cmp(&b.key))
    });
    let lens: Vec<u64> = order.iter().map(|&i| objects[i].len).collect();
    let data_bytes: u64 = lens.iter().sum();
    let nominal = request.spec;
    let nominal_parity_bytes = cost(&lens, nominal);
    let (spec, shortfall) = match request.budget {
        None => {
            let padded = nominal_parity_bytes as f64
                > (nominal.overhead() + PADDED_ABOVE) * data_bytes as f64;
            (nominal, padded.then_some(Shortfall::Padded))
        }
        Some(budget) => {
            let allowed = (budget + TOLERANCE) * data_bytes as f64;
            match fitting_shape(&lens, nominal, allowed) {
                Some(spec) if spec == nominal => (spec, None),
                Some(spec) => (spec, Some(Shortfall::Adapted)),
                None => (least_parity(lens.len()), Some(Shortfall::Unreachable)),
            }
        }
    };
    GroupPlan {
        spec,
        nominal,
        groups: order.chunks(spec.k).map(<[usize]>::to_vec).collect(),
        data_bytes,
        parity_bytes: cost(&lens, spec),
        nominal_parity_bytes,
        largest_object: lens.first().copied().unwrap_or(0),
        shortfall,
    }
}

/// Parity bytes of `spec` over `lens` (sorted, largest first) cut into runs of K.
fn cost(lens: &[u64], spec: ParitySpec) -> u64 {
    lens.chunks(spec.k)
        .map(|run| shard_len_for(run.iter().map(|&l| l as usize)) as u64)
        .sum::<u64>()
        * spec.m as u64
}

/// The first shape within `allowed` parity bytes: M from the nominal down to 1, and for
/// each, K from the nominal up to one group of everything.
fn fitting_shape(lens: &[u64], nominal: ParitySpec, allowed: f64) -> Option<ParitySpec> {
    for m in (1..=nominal.m).rev() {
        for k in nominal.k..=lens.len().max(nominal.k) {
            let spec = ParitySpec { k, m };
            if spec.check().is_err() {
                break;
            }
            if cost(lens, spec) as f64 <= allowed {
                return Some(spec);
            }
        }
    }
    None
}

/// One group of every object (as large as the code allows), one parity shard: the least
/// parity that still rebuilds any one lost object.
fn least_parity(objects: usize) -> ParitySpec {
    let mut k = objects.max(1);
    while k > 1 && (ParitySpec { k, m: 1 }).check().is_err() {
        k -= 1;
    }
    ParitySpec { k, m: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(lens: &[u64]) -> Vec<StoredObject> {
        lens.iter()
            .enumerate()
            .map(|(i, &len)| StoredObject {
                key: format!("chunks/{i:04}"),
                len,
                uses: Vec::new(),
            })
            .collect()
    }

    fn request(text: &str) -> ParityRequest {
        ParityRequest::parse(text).unwrap()
    }

    #[test]
    fn full_chunks_keep_the_nominal_shape() {
        let objects = objects(&[4 << 20; 200]);
        let plan = plan_groups(&objects, request("10%"));
        assert_eq!(plan.spec, ParitySpec { k: 20, m: 2 });
        assert_eq!(plan.groups.len(), 10);
        assert_eq!(plan.parity_bytes * 10, plan.data_bytes);
        assert_eq!(plan.shortfall, None);
    }

    #[test]
    fn objects_of_similar_size_share_a_group() {
        // Alternating large and small: in index order every group would pad to large.
        let lens: Vec<u64> = (0..40)
            .map(|i| if i % 2 == 0 { 4 << 20 } else { 64 << 10 })
            .collect();
        let plan = plan_groups(&objects(&lens), request("ec:20+2"));
        for group in &plan.groups {
            let sizes: Vec<u64> = group.iter().map(|&i| lens[i]).collect();
            assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
        }
        assert!(
            plan.parity_bytes * 100 < plan.data_bytes * 105 / 10,
            "{plan:?}"
        );
    }

    #[test]
    fn a_budget_is_kept_by_growing_groups_then_lowering_m() {
        // The scientific set's shape: 23 objects from 0.3 to 4.2 MB, 42.6 MB in all.
        let lens = [
            309700, 447128, 706785, 815313, 976241, 1051786, 1087388, 1087922, 1193418, 1290244,
            1329954, 1356757, 1508789, 1640624, 1641560, 1907762, 2002074, 2904878, 3131106,
            3876328, 4037762, 4120572, 4172324,
        ];
        let plan = plan_groups(&objects(&lens), request("10%"));
        assert!(plan.parity_bytes * 100 <= plan.data_bytes * 11, "{plan:?}");
        assert_eq!(plan.spec.m, 1, "two lost objects need two shards of 4.2 MB");
        assert_eq!(plan.shortfall, Some(Shortfall::Adapted));
        assert_eq!(plan.nominal, ParitySpec { k: 20, m: 2 });
        assert!(
            plan.nominal_parity_bytes * 100 > plan.data_bytes * 20,
            "{plan:?}"
        );
        // Every object is in exactly one group.
        let mut all: Vec<usize> = plan.groups.concat();
        all.sort();
        assert_eq!(all, (0..lens.len()).collect::<Vec<_>>());
    }

    #[test]
    fn an_unreachable_budget_says_why_and_writes_the_least_parity() {
        let plan = plan_groups(&objects(&[8 << 20, 1 << 20]), request("10%"));
        assert_eq!(plan.spec, ParitySpec { k: 2, m: 1 });
        assert_eq!(plan.parity_bytes, 8 << 20);
        assert_eq!(plan.shortfall, Some(Shortfall::Unreachable));
        assert_eq!(plan.largest_object, 8 << 20);
    }

    #[test]
    fn an_exact_shape_is_kept_and_its_padding_explained() {
        let plan = plan_groups(&objects(&[8 << 20, 1 << 20, 1 << 20]), request("ec:4+1"));
        assert_eq!(plan.spec, ParitySpec { k: 4, m: 1 });
        assert_eq!(
            plan.shortfall,
            Some(Shortfall::Padded),
            "80% is far above 25%"
        );
        let plan = plan_groups(&objects(&[1 << 20; 8]), request("ec:4+1"));
        assert_eq!(plan.shortfall, None);
        assert!(plan_groups(&[], request("10%")).groups.is_empty());
    }
}
