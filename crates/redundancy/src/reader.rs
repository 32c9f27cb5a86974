//! [`ObjectReader`]: one object opened for reading ([`RedundantStore::open`]). Opening
//! looks at the domains once (every domain probed for the object's pieces, slow ones
//! hedged); the reader then serves any number of ranges from what it found, every byte
//! verified as a single read is (replica chunk hashes; each shard and each decoded stripe),
//! so a large object read span by span costs one look at the domains, not one per span,
//! and each fragment's table is read once.
//!
//! What the reader found can go stale while it reads: a domain vanishes, a fragment is
//! found damaged, a concurrent re-encode replaces the encoding (its old pieces are
//! removed once the new ones are verified). A range read through a look already used
//! that meets any fault it did not know of is read again from a fresh look (up to
//! [`READ_ATTEMPTS`] of them), and what that read meets is what is reported: a piece that
//! only went away because a re-encode replaced it is not reported as lost. Pieces a read
//! found missing, damaged or unreachable are left out of the later ranges' reads and
//! listed in every later [`Read::faults`], so the caller keeps seeing a degraded read and
//! schedules the rebuild. [`RedundancyCounters`] count per reader: one degraded read per
//! object read, each damaged piece once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::domains::RedundantStore;
use crate::domains::{frag_path, Inventory, Layout, ObjectStat, Read, RedundancyCounters};
use crate::erasure::TableCache;
use crate::error::{DomainFault, FaultKind, RedundancyError};
use crate::spec::Redundancy;

/// How many fresh looks at the domains a range read takes when every encoding it found
/// failed (a concurrent re-encode may have replaced it in between).
pub const READ_ATTEMPTS: usize = 3;

/// One object of a [`RedundantStore`] opened for reading (see the [module docs](self)).
/// Cheap to clone; clones share what was found, and ranges may be read concurrently.
#[derive(Clone)]
pub struct ObjectReader {
    inner: Arc<Inner>,
}

struct Inner {
    rs: RedundantStore,
    rel: String,
    /// What the last look found, as reads have refined it.
    view: Mutex<Arc<View>>,
    /// What this reader has counted in the store's counters already.
    counted: Mutex<Counted>,
}

#[derive(Default)]
struct Counted {
    degraded: bool,
    damaged: HashSet<(usize, String)>,
}

/// One look at the domains, and the readable layouts it found, likeliest current first.
struct View {
    inventory: Inventory,
    layouts: Vec<ViewLayout>,
    /// Whether a read was served through this view: a fault met after that may mean the
    /// view is stale, while a fault met by the first read is what a fresh look meets.
    used: AtomicBool,
}

/// A layout to read from, with what is known to be wrong with its pieces.
struct ViewLayout {
    layout: Layout,
    /// The pieces missing, damaged or unreachable (found by the look or by earlier reads,
    /// which then left them out of `layout`): listed in every read's faults.
    known: Vec<DomainFault>,
    /// Fragment tables read so far (one cache per layout: its keys are domain and index).
    tables: TableCache,
}

impl View {
    fn new(rs: &RedundantStore, inventory: Inventory) -> View {
        let layouts = inventory
            .layouts()
            .into_iter()
            .filter(Layout::readable)
            .map(|layout| ViewLayout {
                known: rs.probe_faults(&inventory, &layout).1,
                layout,
                tables: TableCache::default(),
            })
            .collect();
        View {
            inventory,
            layouts,
            used: AtomicBool::new(false),
        }
    }

    /// This view with the pieces a read of layout `index` met faults on (`met`) left
    /// out of that layout and added to its known faults.
    fn without(&self, index: usize, met: &[DomainFault]) -> View {
        let rel = &self.inventory.rel;
        let layouts = self
            .layouts
            .iter()
            .enumerate()
            .map(|(i, vl)| {
                let (layout, mut known) = (vl.layout.clone(), vl.known.clone());
                if i != index {
                    return ViewLayout {
                        layout,
                        known,
                        tables: TableCache::default(),
                    };
                }
                known.extend(met.iter().cloned());
                ViewLayout {
                    layout: layout.without(met, rel),
                    known,
                    tables: TableCache::default(),
                }
            })
            .collect();
        View {
            inventory: self.inventory.clone(),
            layouts,
            used: AtomicBool::new(true),
        }
    }
}

impl Layout {
    /// This layout without the pieces `faults` name (replicas at `rel`, fragments at
    /// their slot's path).
    fn without(&self, faults: &[DomainFault], rel: &str) -> Layout {
        let hit = |d: usize, path: &str| faults.iter().any(|f| f.domain == d && f.rel == path);
        let mut layout = self.clone();
        match &mut layout {
            Layout::Erasure { slot, holders, .. } => {
                let path = frag_path(*slot, rel);
                holders.retain(|&(d, _)| !hit(d, &path));
            }
            Layout::Replicas { holders, .. } | Layout::Legacy { holders, .. } => {
                holders.retain(|&d| !hit(d, rel));
            }
        }
        layout
    }
}

/// Why a range read through one view gave no bytes.
enum Missed {
    /// A view already used met a fault it did not know of: look again.
    Stale,
    /// Every layout of the view failed.
    Failed(RedundancyError),
}

impl RedundantStore {
    /// Opens `rel` for reading: looks at the domains once (slow ones hedged) and returns
    /// an [`ObjectReader`] that serves ranges from what it found (see
    /// [`crate::reader`]). Fails with [`RedundancyError::Missing`] when no domain has the
    /// object, and with [`RedundancyError::TooFewGood`] when no encoding found has enough
    /// pieces to read (after [`READ_ATTEMPTS`] looks).
    pub async fn open(&self, rel: &str) -> Result<ObjectReader, RedundancyError> {
        self.check_rel(rel)?;
        let mut last = None;
        for _ in 0..READ_ATTEMPTS {
            let view = self.look(rel).await?;
            if !view.layouts.is_empty() {
                return Ok(ObjectReader {
                    inner: Arc::new(Inner {
                        rs: self.clone(),
                        rel: rel.to_string(),
                        view: Mutex::new(Arc::new(view)),
                        counted: Mutex::default(),
                    }),
                });
            }
            last = Some(self.unreadable(&view.inventory, &view.inventory.layouts()));
        }
        RedundancyCounters::add(&self.counters.failed_reads, 1);
        Err(last.unwrap_or(RedundancyError::Missing {
            rel: rel.to_string(),
        }))
    }

    /// `len` bytes from `offset` (clamped to the object's end), every byte verified
    /// against BLAKE3 hashes (replica chunk hashes; fragments: each shard and each decoded
    /// stripe). Serves through up to `losses_tolerated()` missing, damaged or unreachable
    /// domains; [`Read::faults`] lists them and [`RedundancyCounters`] count them. One
    /// range of an [`ObjectReader`]: to read an object in several ranges, open it once
    /// ([`RedundantStore::open`]).
    pub async fn read_range(
        &self,
        rel: &str,
        offset: u64,
        len: u64,
    ) -> Result<Read, RedundancyError> {
        self.open(rel).await?.read_range(offset, len).await
    }

    /// The whole object, verified (see [`RedundantStore::read_range`]).
    pub async fn read_all(&self, rel: &str) -> Result<Read, RedundancyError> {
        self.read_range(rel, 0, u64::MAX).await
    }

    /// One look at the domains for a read; `Missing` when nothing of `rel` is anywhere.
    async fn look(&self, rel: &str) -> Result<View, RedundancyError> {
        let inventory = self.inventory_to_read(rel).await;
        if inventory.is_empty() && inventory.layouts().is_empty() {
            return Err(RedundancyError::Missing {
                rel: rel.to_string(),
            });
        }
        Ok(View::new(self, inventory))
    }

    /// A range of one layout of a view; its faults are the layout's known ones followed
    /// by those the read met.
    async fn read_view_layout(
        &self,
        inventory: &Inventory,
        vl: &ViewLayout,
        offset: u64,
        len: u64,
    ) -> Result<Read, RedundancyError> {
        match vl.layout {
            Layout::Erasure { .. } => {
                self.read_fragments(inventory, &vl.layout, &vl.known, (offset, len), &vl.tables)
                    .await
            }
            _ => {
                self.read_replicas(inventory, &vl.layout, &vl.known, offset, len)
                    .await
            }
        }
    }
}

impl ObjectReader {
    /// The object's path on its domains.
    pub fn rel(&self) -> &str {
        &self.inner.rel
    }

    /// The object's length, encoding and raw bytes as the last look found them (its
    /// likeliest current encoding).
    pub fn stat(&self) -> ObjectStat {
        let view = self.view();
        match view.layouts.first() {
            Some(vl) => self.inner.rs.stat_of(&view.inventory, &vl.layout),
            None => ObjectStat {
                len: 0,
                encoding: Redundancy::None,
                raw_bytes: 0,
                legacy: false,
            },
        }
    }

    /// What the last look (and the reads since) found missing, damaged or unreachable
    /// among the pieces of the object's likeliest current encoding.
    pub fn faults(&self) -> Vec<DomainFault> {
        self.view()
            .layouts
            .first()
            .map(|vl| vl.known.clone())
            .unwrap_or_default()
    }

    /// `len` bytes from `offset`, as [`RedundantStore::read_range`] reads them, from what
    /// the reader found (see the [module docs](self) for when it looks again).
    pub async fn read_range(&self, offset: u64, len: u64) -> Result<Read, RedundancyError> {
        let view = self.view();
        let first_use = !view.used.swap(true, Ordering::AcqRel);
        let mut last = match self.read_view(&view, offset, len, first_use).await {
            Ok((read, refined)) => {
                if let Some(refined) = refined {
                    self.replace(&Arc::new(refined), Some(&view));
                }
                return Ok(self.served(read));
            }
            Err(Missed::Stale) => None,
            Err(Missed::Failed(e)) => Some(e),
        };
        let rs = &self.inner.rs;
        for _ in 0..READ_ATTEMPTS {
            let view = Arc::new(rs.look(&self.inner.rel).await?);
            view.used.store(true, Ordering::Release);
            match self.read_view(&view, offset, len, true).await {
                Ok((read, refined)) => {
                    let view = refined.map_or(view, Arc::new);
                    self.replace(&view, None);
                    return Ok(self.served(read));
                }
                Err(Missed::Failed(e)) => {
                    if last.as_ref().is_none_or(|l| l.faults().is_empty()) {
                        last = Some(e);
                    }
                }
                Err(Missed::Stale) => {}
            }
        }
        RedundancyCounters::add(&rs.counters.failed_reads, 1);
        Err(last.unwrap_or(RedundancyError::Missing {
            rel: self.inner.rel.clone(),
        }))
    }

    fn view(&self) -> Arc<View> {
        let view = self.inner.view.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&view)
    }

    /// Makes `new` the reader's view, unless a concurrent read replaced `old` (when
    /// given) already.
    fn replace(&self, new: &Arc<View>, old: Option<&Arc<View>>) {
        let mut view = self.inner.view.lock().unwrap_or_else(|p| p.into_inner());
        if old.is_none_or(|old| Arc::ptr_eq(old, &view)) {
            *view = Arc::clone(new);
        }
    }

    /// Reads the range from the view's layouts in order. With `accept`, faults met are
    /// reported, and the view without their pieces is returned for the later reads;
    /// without, a fault the view did not know of ends the read: the view is stale.
    async fn read_view(
        &self,
        view: &View,
        offset: u64,
        len: u64,
        accept: bool,
    ) -> Result<(Read, Option<View>), Missed> {
        let rs = &self.inner.rs;
        let mut last: Option<RedundancyError> = None;
        for (i, vl) in view.layouts.iter().enumerate() {
            match rs.read_view_layout(&view.inventory, vl, offset, len).await {
                Ok(read) => {
                    let met = &read.faults[vl.known.len().min(read.faults.len())..];
                    if met.is_empty() {
                        return Ok((read, None));
                    }
                    if !accept {
                        return Err(Missed::Stale);
                    }
                    let refined = view.without(i, met);
                    return Ok((read, Some(refined)));
                }
                Err(_) if !accept => return Err(Missed::Stale),
                Err(e) => {
                    if last.as_ref().is_none_or(|l| l.faults().is_empty()) {
                        last = Some(e);
                    }
                }
            }
        }
        let layouts = view.inventory.layouts();
        Err(Missed::Failed(last.unwrap_or_else(|| {
            rs.unreadable(&view.inventory, &layouts)
        })))
    }

    /// Counts what `read` found that this reader has not counted yet: the object read as
    /// degraded once, each damaged piece once.
    fn served(&self, read: Read) -> Read {
        if read.faults.is_empty() {
            return read;
        }
        let counters = &self.inner.rs.counters;
        let mut counted = self.inner.counted.lock().unwrap_or_else(|p| p.into_inner());
        if !counted.degraded {
            counted.degraded = true;
            RedundancyCounters::add(&counters.degraded_reads, 1);
        }
        let new_damage = read
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::Damaged)
            .filter(|f| counted.damaged.insert((f.domain, f.rel.clone())))
            .count();
        RedundancyCounters::add(&counters.fragments_damaged_found, new_damage as u64);
        read
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stat = self.stat();
        f.debug_struct("ObjectReader")
            .field("rel", &self.inner.rel)
            .field("len", &stat.len)
            .field("encoding", &stat.encoding)
            .finish()
    }
}
