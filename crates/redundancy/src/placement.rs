//! Where an object's pieces go and in which order readers try domains.
//!
//! **Placement** is rendezvous (highest-random-weight) hashing: each domain scores
//! BLAKE3(domain URI, 0, rel) and the object's domains are the highest scorers. It needs no
//! stored map (readers compute it), spreads objects evenly, and adding a domain to a tier
//! moves only the objects the new domain wins. `replicate:N` uses the first N domains of
//! the order, `ec:K+M` puts fragment i on the i-th.
//!
//! **Read order** follows observed speed: an exponentially weighted moving average of each
//! domain's read latency (weight 1/5 for the newest sample), kept per [`Latencies`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strata_store::Store;

/// The domains in rendezvous order for `rel`: indices into `domains`, best first.
pub fn placement(domains: &[Store], rel: &str) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = domains
        .iter()
        .enumerate()
        .map(|(index, store)| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(store.uri().to_string().as_bytes());
            hasher.update(&[0]);
            hasher.update(rel.as_bytes());
            let mut score = [0u8; 8];
            score.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
            (u64::from_le_bytes(score), index)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, index)| index).collect()
}

/// Each domain's read latency, smoothed; unknown domains count as fast so they get tried.
#[derive(Debug)]
pub struct Latencies {
    micros: Vec<AtomicU64>,
}

impl Latencies {
    /// No samples yet for `domains` domains.
    pub fn new(domains: usize) -> Latencies {
        Latencies {
            micros: (0..domains).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records one read of `domain` that took `took`.
    pub fn record(&self, domain: usize, took: Duration) {
        let Some(slot) = self.micros.get(domain) else {
            return;
        };
        let sample = took.as_micros().min(u64::MAX as u128) as u64;
        // A lost update between two readers only drops one sample of an average.
        let old = slot.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample.max(1)
        } else {
            (old * 4 + sample) / 5
        };
        slot.store(new.max(1), Ordering::Relaxed);
    }

    /// The smoothed latency of `domain` (zero before its first read).
    pub fn of(&self, domain: usize) -> Duration {
        Duration::from_micros(
            self.micros
                .get(domain)
                .map_or(0, |m| m.load(Ordering::Relaxed)),
        )
    }

    /// `domains` sorted fastest first (stable: ties keep their order).
    pub fn fastest_first(&self, mut domains: Vec<usize>) -> Vec<usize> {
        domains.sort_by_key(|&d| self.of(d));
        domains
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn placement_is_deterministic_and_a_permutation() {
        let dir = std::env::temp_dir();
        let mut stores = Vec::new();
        for i in 0..6 {
            let uri: strata_store::StoreUri =
                format!("file://{}/d{i}", dir.display()).parse().unwrap();
            stores.push(Store::open(&uri, &Default::default()).await.unwrap());
        }
        let a = placement(&stores, "objects/x");
        assert_eq!(a, placement(&stores, "objects/x"));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        let firsts: std::collections::HashSet<usize> = (0..200)
            .map(|i| placement(&stores, &format!("k{i}"))[0])
            .collect();
        assert_eq!(firsts.len(), 6, "every domain leads some objects");
    }

    #[test]
    fn faster_domains_come_first() {
        let l = Latencies::new(3);
        l.record(0, Duration::from_millis(50));
        l.record(1, Duration::from_millis(5));
        assert_eq!(l.fastest_first(vec![0, 1, 2]), vec![2, 1, 0]);
    }
}
