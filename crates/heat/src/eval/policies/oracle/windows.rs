//! The oracle's knowledge of the future: per object, what the trace does in each window
//! it is active, read once from the trace ([`Activity::read`]).
//!
//! A *segment* is what one object does in one window within one life (a life runs from
//! the object's appearance to its delete or the end): its reads, the bytes they return, its
//! writes, whether the life starts in it (and when, and what its first request was) and
//! whether it ends in it (and when).
//! Segments are kept object by object in time order, in one vector with offsets per object,
//! so memory is proportional to the (object, active window) pairs, not to objects ×
//! windows.

use crate::eval::{EvalError, PrepareContext};
use crate::stats::Op;
use crate::trace::{TraceRequest, DEFAULT_OBJECT_SIZE};

/// No time (a segment that does not start or end a life).
pub(super) const NO_TIME: i64 = -1;
/// No segment.
const NONE: u32 = u32::MAX;
/// [`Segment::first_read_bytes`] of a life that starts with a write.
pub(super) const FIRST_WRITE: u64 = u64::MAX;

/// One object's requests in one window of one life.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    /// The window.
    pub(super) window: u32,
    /// Reads served.
    pub(super) reads: u32,
    /// Writes served.
    pub(super) writes: u32,
    /// Bytes the reads returned.
    pub(super) read_bytes: u64,
    /// When the life starts, if it starts in this segment ([`NO_TIME`] otherwise).
    pub(super) born_ms: i64,
    /// When the life ends by a delete, if it does in this segment ([`NO_TIME`] otherwise).
    pub(super) deleted_ms: i64,
    /// In a segment that starts a life: the bytes of its first request if a read,
    /// [`FIRST_WRITE`] if a write (the oracle may move the object right after it).
    pub(super) first_read_bytes: u64,
}

impl Segment {
    /// Whether a life starts in this segment.
    pub(super) fn starts_life(&self) -> bool {
        self.born_ms != NO_TIME
    }

    /// Whether a life ends in this segment.
    pub(super) fn ends_life(&self) -> bool {
        self.deleted_ms != NO_TIME
    }
}

/// Every object's segments, and the trace's last window.
#[derive(Clone, Debug, Default)]
pub(super) struct Activity {
    /// Segments of object `o` are `segments[offsets[o]..offsets[o + 1]]`.
    offsets: Vec<usize>,
    segments: Vec<Segment>,
    /// Object sizes, by id.
    pub(super) sizes: Vec<u64>,
    /// The window of the last request (the replay ends at its end).
    pub(super) last_window: u32,
}

impl Activity {
    /// Reads the whole trace once through the context's `reopen`.
    pub(super) fn read(context: &PrepareContext<'_, '_>) -> Result<Self, EvalError> {
        let mut builder = Builder::new(context.summary.sizes.clone(), context.window_ms);
        for request in (context.reopen)()? {
            builder.add(&request?)?;
        }
        Ok(builder.finish())
    }

    /// Object ids `0..objects()`.
    pub(super) fn objects(&self) -> u32 {
        self.offsets.len().saturating_sub(1) as u32
    }

    /// An object's segments, in time order.
    pub(super) fn of(&self, object: u32) -> &[Segment] {
        let o = object as usize;
        match (self.offsets.get(o), self.offsets.get(o + 1)) {
            (Some(&from), Some(&to)) => &self.segments[from..to],
            _ => &[],
        }
    }

    /// An object's size.
    pub(super) fn size(&self, object: u32) -> u64 {
        self.sizes
            .get(object as usize)
            .copied()
            .unwrap_or(DEFAULT_OBJECT_SIZE)
    }
}

/// Builds [`Activity`] request by request (requests come in time order).
struct Builder {
    window_ms: i64,
    sizes: Vec<u64>,
    /// (object, segment), in the order segments open.
    opened: Vec<(u32, Segment)>,
    /// Per object: its open segment in `opened`, or [`NONE`].
    open: Vec<u32>,
    alive: Vec<bool>,
    last_window: u32,
}

impl Builder {
    fn new(sizes: Vec<u64>, window_ms: i64) -> Self {
        Builder {
            window_ms: window_ms.max(1),
            sizes,
            opened: Vec::new(),
            open: Vec::new(),
            alive: Vec::new(),
            last_window: 0,
        }
    }

    fn add(&mut self, request: &TraceRequest) -> Result<(), EvalError> {
        let window = u32::try_from(request.time_ms / self.window_ms).map_err(|_| {
            EvalError::Settings(format!(
                "request at {} ms falls in a window beyond the oracle's range; use a longer \
                 --window",
                request.time_ms
            ))
        })?;
        self.last_window = self.last_window.max(window);
        let o = request.object as usize;
        if self.open.len() <= o {
            self.open.resize(o + 1, NONE);
            self.alive.resize(o + 1, false);
        }
        if request.op == Op::Delete {
            if self.alive[o] {
                let segment = self.segment(request.object, window, NO_TIME);
                segment.deleted_ms = request.time_ms;
                self.alive[o] = false;
                self.open[o] = NONE;
            }
            return Ok(());
        }
        let born_ms = if self.alive[o] {
            NO_TIME
        } else {
            self.alive[o] = true;
            self.open[o] = NONE;
            request.time_ms
        };
        let size = self.sizes.get(o).copied().unwrap_or(DEFAULT_OBJECT_SIZE);
        let segment = self.segment(request.object, window, born_ms);
        let bytes = request.size.unwrap_or(size);
        if born_ms != NO_TIME {
            segment.first_read_bytes = if request.op == Op::Read {
                bytes.min(FIRST_WRITE - 1)
            } else {
                FIRST_WRITE
            };
        }
        if request.op == Op::Read {
            segment.reads = segment.reads.saturating_add(1);
            segment.read_bytes = segment.read_bytes.saturating_add(bytes);
        } else {
            segment.writes = segment.writes.saturating_add(1);
        }
        Ok(())
    }

    /// The object's open segment of `window`, opened if needed (starting a life at
    /// `born_ms` unless [`NO_TIME`]).
    fn segment(&mut self, object: u32, window: u32, born_ms: i64) -> &mut Segment {
        let o = object as usize;
        let current = self.open[o];
        let reuse = current != NONE && self.opened[current as usize].1.window == window;
        if !reuse {
            self.open[o] = self.opened.len() as u32;
            self.opened.push((
                object,
                Segment {
                    window,
                    reads: 0,
                    writes: 0,
                    read_bytes: 0,
                    born_ms,
                    deleted_ms: NO_TIME,
                    first_read_bytes: FIRST_WRITE,
                },
            ));
        }
        let index = self.open[o] as usize;
        &mut self.opened[index].1
    }

    /// Groups the segments by object (a stable counting sort: time order kept).
    fn finish(self) -> Activity {
        let objects = self.open.len().max(self.sizes.len());
        let mut offsets = vec![0usize; objects + 1];
        for &(object, _) in &self.opened {
            offsets[object as usize + 1] += 1;
        }
        for o in 0..objects {
            offsets[o + 1] += offsets[o];
        }
        let mut next = offsets.clone();
        let placeholder = self.opened.first().map(|&(_, s)| s);
        let mut segments = match placeholder {
            Some(s) => vec![s; self.opened.len()],
            None => Vec::new(),
        };
        for (object, segment) in self.opened {
            let slot = &mut next[object as usize];
            segments[*slot] = segment;
            *slot += 1;
        }
        Activity {
            offsets,
            segments,
            sizes: self.sizes,
            last_window: self.last_window,
        }
    }
}
