//! HDF5 metadata walker: where the datasets of an HDF5 (or NetCDF-4) file keep their raw
//! data, and of what element width.
//!
//! This module owns the reading of HDF5 metadata for typed regions: the superblock
//! (versions 0 to 3), object headers (version 1, and version 2 `OHDR` with `OCHK`
//! continuations), groups (symbol tables: v1 B-tree group nodes, `SNOD` nodes and the
//! local heap for names; compact Link messages with hard links), and per dataset its
//! Datatype, Filter Pipeline and Data Layout messages. Raw data becomes [`TypedRegion`]s
//! for contiguous layouts and for unfiltered chunked layouts indexed by a version-1
//! B-tree (layout v3), a single chunk, or an unpaged fixed array (layout v4/v5).
//! Compact data, filtered (compressed) chunks, dense link storage (fractal heaps),
//! extensible-array, implicit and v2 B-tree chunk indexes and shared datatypes are
//! skipped. Checksums are not verified.
//!
//! The parser runs on untrusted bytes and only on those `head` holds: every read is
//! bounds-checked, arithmetic is checked, recursion, objects visited and regions are
//! capped, and anything pointing outside `head` is ignored; what was found until then is
//! returned. See the HDF5 File Format Specification, version 3.

use std::collections::HashSet;

use super::format::TypedRegion;

/// Deepest group nesting, and deepest B-tree, followed.
const MAX_DEPTH: usize = 16;
/// Object headers, B-tree nodes, symbol table nodes and index blocks read, in all.
const MAX_OBJECTS: usize = 10_000;
/// Typed regions kept, in all.
const MAX_REGIONS: usize = 100_000;
/// Messages read from one object header, over all its chunks.
const MAX_MESSAGES: usize = 4_096;

/// How a dataset stores its raw data, as far as the walker could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Storage {
    /// One contiguous block.
    Contiguous,
    /// Unfiltered chunks, of which `chunks` were found.
    Chunked {
        /// Chunks found in `head` (each one typed region).
        chunks: usize,
    },
    /// Chunks through a filter pipeline (compressed): no regions.
    Filtered,
    /// Data inside the object header: no regions.
    Compact,
    /// No storage allocated yet.
    Unallocated,
    /// A layout or chunk index this walker does not read.
    Unsupported,
}

/// One dataset reached from the root group.
#[derive(Debug, Clone)]
pub(super) struct Dataset {
    /// Path from the root group, e.g. `grp/temp` (empty if the name was not found).
    pub name: String,
    /// Short type name, e.g. `float32`, `int16`, `compound16`.
    pub dtype: String,
    /// How its raw data is stored.
    pub storage: Storage,
}

/// What the walker found in an HDF5 file's head.
#[derive(Debug, Clone, Default)]
pub(super) struct Hdf5Layout {
    /// Superblock version (0 to 3).
    pub superblock: u8,
    /// Datasets reached from the root group, in the order found.
    pub datasets: Vec<Dataset>,
    /// Typed regions of their raw data, sorted by start, absolute in the file, disjoint.
    pub regions: Vec<TypedRegion>,
    /// Groups whose links are in dense storage (fractal heap), not followed.
    pub dense_groups: usize,
}

/// Walk the metadata of the HDF5 file whose superblock starts at `at` in `head`.
pub(super) fn parse(head: &[u8], at: usize) -> Hdf5Layout {
    let mut w = Walker {
        head,
        base: at as u64,
        so: 8,
        sl: 8,
        eof: u64::MAX,
        objects: 0,
        seen: HashSet::new(),
        out: Hdf5Layout::default(),
    };
    let _ = w.superblock(at);
    let mut regions = std::mem::take(&mut w.out.regions);
    regions.sort_by_key(|r| (r.start, r.len));
    let mut out: Vec<TypedRegion> = Vec::with_capacity(regions.len());
    for r in regions {
        let free = out.last().is_none_or(|p| p.start + p.len <= r.start);
        if free {
            out.push(r);
        }
    }
    w.out.regions = out;
    w.out
}

/// Little-endian unsigned integer of `n` (at most 8) bytes at `pos` of `b`.
fn le(b: &[u8], pos: usize, n: usize) -> Option<u64> {
    let s = b.get(pos..pos.checked_add(n)?)?;
    (n <= 8).then(|| s.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

/// A message of an object header: type, flags, body.
type Message<'a> = (u16, u8, &'a [u8]);

struct Walker<'a> {
    head: &'a [u8],
    /// Absolute offset of address 0.
    base: u64,
    /// Size of offsets and of lengths.
    so: usize,
    sl: usize,
    /// Absolute end of the file's data, from the superblock.
    eof: u64,
    objects: usize,
    /// Object headers already visited (hard links may share or loop).
    seen: HashSet<u64>,
    out: Hdf5Layout,
}

impl<'a> Walker<'a> {
    /// Offset in `head` of file address `addr`, if `len` bytes from there are in `head`.
    fn pos(&self, addr: u64, len: usize) -> Option<usize> {
        let p = usize::try_from(self.base.checked_add(addr)?).ok()?;
        (p.checked_add(len)? <= self.head.len()).then_some(p)
    }

    /// Count one more metadata object; `None` once the budget is spent.
    fn tick(&mut self) -> Option<()> {
        self.objects += 1;
        (self.objects <= MAX_OBJECTS).then_some(())
    }

    /// An address field (`so` bytes) of `b` at `pos`; `None` when undefined (all ones).
    fn addr(&self, b: &[u8], pos: usize) -> Option<u64> {
        let v = le(b, pos, self.so)?;
        let undefined = if self.so >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.so)) - 1
        };
        (v != undefined).then_some(v)
    }

    fn superblock(&mut self, at: usize) -> Option<()> {
        let h = self.head.get(at..)?;
        let version = *h.get(8)?;
        self.out.superblock = version;
        let (so, sl, fields) = match version {
            0 | 1 => (*h.get(13)?, *h.get(14)?, if version == 0 { 24 } else { 28 }),
            2 | 3 => (*h.get(9)?, *h.get(10)?, 12),
            _ => return None,
        };
        if !matches!(so, 2 | 4 | 8) || !matches!(sl, 2 | 4 | 8) {
            return None;
        }
        (self.so, self.sl) = (so as usize, sl as usize);
        let o = self.so;
        // Base address, then (v0/v1) free space, EOF, driver info, root symbol table
        // entry; (v2/v3) extension, EOF, root object header. The library takes the
        // superblock's own position as base address, whatever the field says.
        if let Some(eof) = self.addr(h, fields + 2 * o) {
            self.eof = self.base.saturating_add(eof);
        }
        let root = if version < 2 {
            // Root group symbol table entry: link name offset, object header address.
            let entry = fields + 4 * o;
            let cached = self.cached_group(h, entry);
            return self.object(self.addr(h, entry + o)?, String::new(), 0, cached);
        } else {
            self.addr(h, fields + 3 * o)?
        };
        self.object(root, String::new(), 0, None)
    }

    /// The B-tree and local heap addresses a symbol table entry at `e` of `b` caches
    /// for a group (cache type 1): a group whose header lies beyond `head` is still read.
    fn cached_group(&self, b: &[u8], e: usize) -> Option<(u64, u64)> {
        let scratch = e + 2 * self.so + 8;
        (le(b, e + 2 * self.so, 4)? == 1)
            .then(|| Some((self.addr(b, scratch)?, self.addr(b, scratch + self.so)?)))?
    }

    /// Visit the object whose header is at `addr`: a group or a dataset. `cached` is the
    /// group's symbol table as its parent's entry caches it, used if the header has none.
    fn object(
        &mut self,
        addr: u64,
        name: String,
        depth: usize,
        cached: Option<(u64, u64)>,
    ) -> Option<()> {
        if depth > MAX_DEPTH || !self.seen.insert(addr) {
            return None;
        }
        self.tick()?;
        let msgs = self.messages(addr).unwrap_or_default();
        let has_table = msgs.iter().any(|m| m.0 == 0x0011);
        if let (false, Some((btree, heap))) = (has_table, cached) {
            let _ = self.group_btree(btree, heap, &name, depth, MAX_DEPTH);
        }
        let layout = msgs.iter().find(|m| m.0 == 0x0008);
        if let Some(&(_, _, layout)) = layout {
            self.dataset(&msgs, layout, name);
            return Some(());
        }
        let mut dense = false;
        for &(kind, _, body) in &msgs {
            match kind {
                0x0011 => {
                    let (btree, heap) = (self.addr(body, 0), self.addr(body, self.so));
                    if let (Some(btree), Some(heap)) = (btree, heap) {
                        let _ = self.group_btree(btree, heap, &name, depth, MAX_DEPTH);
                    }
                }
                0x0006 => {
                    if let Some((child, target)) = self.link(body) {
                        let _ = self.object(target, join(&name, &child), depth + 1, None);
                    }
                }
                // Link Info with a fractal heap address: links in dense storage.
                0x0002 => {
                    let at = 2 + 8 * usize::from(body.get(1).is_some_and(|f| f & 1 != 0));
                    dense |= self.addr(body, at).is_some();
                }
                _ => {}
            }
        }
        self.out.dense_groups += usize::from(dense);
        Some(())
    }

    /// Every message of the object header at `addr`, following continuations in `head`.
    fn messages(&mut self, addr: u64) -> Option<Vec<Message<'a>>> {
        let head = self.head;
        let p = self.pos(addr, 16)?;
        let v2 = head.get(p..p + 4)? == b"OHDR";
        if v2 && head[p + 4] != 2 {
            return None;
        }
        let (mut chunks, flags) = if v2 {
            let flags = *head.get(p + 5)?;
            let mut at = p + 6;
            if flags & 0x20 != 0 {
                at += 16;
            }
            if flags & 0x10 != 0 {
                at += 4;
            }
            let n = 1usize << (flags & 3);
            let size = usize::try_from(le(head, at, n)?).ok()?;
            (vec![(at + n, size)], flags)
        } else {
            if head[p] != 1 {
                return None;
            }
            let size = usize::try_from(le(head, p + 8, 4)?).ok()?;
            (vec![(p + 16, size)], 0)
        };
        let mut msgs = Vec::new();
        let mut i = 0;
        while let Some(&(start, size)) = chunks.get(i) {
            i += 1;
            // Only the part of the chunk inside `head` is read.
            let end = start.saturating_add(size).min(head.len());
            // Message header: v1 8 bytes; v2 4, plus 2 if creation order is stored.
            let hdr = [8, 4 + 2 * usize::from(flags & 0x04 != 0)][usize::from(v2)];
            let mut at = start;
            while at.checked_add(hdr)? <= end && msgs.len() < MAX_MESSAGES {
                let (kind, len, mflags) = if v2 {
                    (le(head, at, 1)?, le(head, at + 1, 2)?, head[at + 3])
                } else {
                    (le(head, at, 2)?, le(head, at + 2, 2)?, head[at + 4])
                };
                let body_at = at + hdr;
                let body_end = body_at.checked_add(len as usize)?;
                let Some(body) = head.get(body_at..body_end.min(end)) else {
                    break;
                };
                if body_end > end {
                    break;
                }
                if kind == 0x0010 && chunks.len() < 64 {
                    let (to, n) = (self.addr(body, 0), le(body, self.so, self.sl));
                    if let (Some(to), Some(n)) = (to, n) {
                        self.tick()?;
                        let n = usize::try_from(n).ok()?;
                        if let Some(q) = self.pos(to, 0) {
                            if !v2 {
                                chunks.push((q, n));
                            } else if head.get(q..q + 4) == Some(b"OCHK") && n >= 8 {
                                chunks.push((q + 4, n - 8));
                            }
                        }
                    }
                }
                msgs.push((kind as u16, mflags, body));
                // Version 1 pads each message to a multiple of 8 bytes from the chunk start.
                at = if v2 {
                    body_end
                } else {
                    start + (body_end - start).next_multiple_of(8)
                };
            }
        }
        Some(msgs)
    }

    /// A Link message: the name and the object header address of a hard link.
    fn link(&self, b: &[u8]) -> Option<(String, u64)> {
        let flags = *b.get(1)?;
        let mut at = 2;
        let kind = if flags & 0x08 != 0 {
            at += 1;
            *b.get(2)?
        } else {
            0
        };
        if flags & 0x04 != 0 {
            at += 8;
        }
        if flags & 0x10 != 0 {
            at += 1;
        }
        let n = 1usize << (flags & 3);
        let len = usize::try_from(le(b, at, n)?).ok()?;
        at += n;
        let name = b.get(at..at.checked_add(len)?)?;
        if kind != 0 {
            return None;
        }
        Some((
            String::from_utf8_lossy(name).into_owned(),
            self.addr(b, at + len)?,
        ))
    }

    /// A v1 B-tree of group nodes (type 0) down to its symbol table nodes.
    fn group_btree(
        &mut self,
        addr: u64,
        heap: u64,
        group: &str,
        depth: usize,
        level: usize,
    ) -> Option<()> {
        self.tick()?;
        let (o, l) = (self.so, self.sl);
        let p = self.pos(addr, 8 + 2 * o)?;
        let head = self.head;
        let node_level = usize::from(head[p + 5]);
        if &head[p..p + 4] != b"TREE" || head[p + 4] != 0 || node_level >= level {
            return None;
        }
        let entries = le(head, p + 6, 2)? as usize;
        let mut at = p + 8 + 2 * o;
        for _ in 0..entries {
            let child = self.addr(head, at + l)?;
            at += l + o;
            if node_level > 0 {
                let _ = self.group_btree(child, heap, group, depth, node_level);
            } else {
                let _ = self.symbol_node(child, heap, group, depth);
            }
        }
        Some(())
    }

    /// A symbol table node (`SNOD`): its entries are the group's members.
    fn symbol_node(&mut self, addr: u64, heap: u64, group: &str, depth: usize) -> Option<()> {
        self.tick()?;
        let p = self.pos(addr, 8)?;
        let head = self.head;
        if &head[p..p + 4] != b"SNOD" {
            return None;
        }
        let n = le(head, p + 6, 2)? as usize;
        let size = 2 * self.so + 24;
        for i in 0..n {
            let e = p + 8 + i * size;
            let name_at = le(head, e, self.so)?;
            let target = self.addr(head, e + self.so)?;
            let name = self.heap_name(heap, name_at).unwrap_or_default();
            let cached = self.cached_group(head, e);
            let _ = self.object(target, join(group, &name), depth + 1, cached);
        }
        Some(())
    }

    /// A name from a local heap (`HEAP`), at `offset` in its data segment.
    fn heap_name(&self, heap: u64, offset: u64) -> Option<String> {
        let p = self.pos(heap, 8 + 2 * self.sl + self.so)?;
        if &self.head[p..p + 4] != b"HEAP" {
            return None;
        }
        let data = self.addr(self.head, p + 8 + 2 * self.sl)?;
        let at = self.pos(data.checked_add(offset)?, 0)?;
        let s = &self.head[at..self.head.len().min(at + 256)];
        let end = s.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    }

    /// Record a dataset and the regions of its raw data.
    fn dataset(&mut self, msgs: &[Message<'_>], layout: &[u8], name: String) {
        let dtype = msgs.iter().find(|m| m.0 == 0x0003);
        let (dtype, width) = match dtype {
            Some(&(_, flags, body)) if flags & 0x02 == 0 => datatype(body),
            Some(_) => ("shared type".to_string(), None),
            None => ("no type".to_string(), None),
        };
        let filtered = msgs
            .iter()
            .any(|m| m.0 == 0x000B && m.2.get(1).is_some_and(|&n| n > 0));
        let storage = self.layout(layout, width, filtered);
        self.out.datasets.push(Dataset {
            name,
            dtype,
            storage,
        });
    }

    fn layout(&mut self, b: &[u8], width: Option<u8>, filtered: bool) -> Storage {
        let (version, class) = (b.first().copied(), b.get(1).copied());
        match (version, class) {
            (Some(3..=5), Some(0)) => Storage::Compact,
            (Some(3..=5), Some(1)) => match (self.addr(b, 2), le(b, 2 + self.so, self.sl)) {
                (Some(addr), Some(len)) if len > 0 => {
                    if let Some(w) = width {
                        self.region(addr, len, w);
                    }
                    Storage::Contiguous
                }
                _ => Storage::Unallocated,
            },
            (Some(3..=5), Some(2)) if filtered => Storage::Filtered,
            (Some(3), Some(2)) => {
                let ndims = b.get(2).map_or(0, |&n| usize::from(n));
                let Some(addr) = self.addr(b, 3) else {
                    return Storage::Unallocated;
                };
                let mut chunks = 0;
                if let Some(w) = width {
                    let _ = self.chunk_btree(addr, ndims, w, MAX_DEPTH, &mut chunks);
                }
                Storage::Chunked { chunks }
            }
            (Some(4 | 5), Some(2)) => self
                .chunk_index_v4(b, width)
                .unwrap_or(Storage::Unsupported),
            _ => Storage::Unsupported,
        }
    }

    /// A v1 B-tree of raw data chunks (type 1): each leaf child is one chunk.
    fn chunk_btree(
        &mut self,
        addr: u64,
        ndims: usize,
        width: u8,
        level: usize,
        chunks: &mut usize,
    ) -> Option<()> {
        self.tick()?;
        let o = self.so;
        let p = self.pos(addr, 8 + 2 * o)?;
        let head = self.head;
        let node_level = usize::from(head[p + 5]);
        if &head[p..p + 4] != b"TREE" || head[p + 4] != 1 || node_level >= level {
            return None;
        }
        let entries = le(head, p + 6, 2)? as usize;
        let key = 8 + 8 * ndims;
        let mut at = p + 8 + 2 * o;
        for _ in 0..entries {
            let size = le(head, at, 4)?;
            let child = self.addr(head, at + key)?;
            at += key + o;
            if node_level > 0 {
                let _ = self.chunk_btree(child, ndims, width, node_level, chunks);
            } else if self.region(child, size, width) {
                *chunks += 1;
            }
        }
        Some(())
    }

    /// Layout v4/v5 chunked: single-chunk and (unpaged) fixed-array indexes.
    fn chunk_index_v4(&mut self, b: &[u8], width: Option<u8>) -> Option<Storage> {
        let (flags, ndims, enc) = (*b.get(2)?, usize::from(*b.get(3)?), usize::from(*b.get(4)?));
        let mut at = 5;
        let mut bytes = 1u64;
        for _ in 0..ndims {
            bytes = bytes.checked_mul(le(b, at, enc)?)?;
            at += enc;
        }
        let index = *b.get(at)?;
        at += 1;
        let Some(width) = width else {
            return Some(Storage::Unsupported);
        };
        match index {
            1 if flags & 0x02 == 0 => {
                let Some(addr) = self.addr(b, at) else {
                    return Some(Storage::Unallocated);
                };
                let chunks = usize::from(self.region(addr, bytes, width));
                Some(Storage::Chunked { chunks })
            }
            3 => {
                let Some(addr) = self.addr(b, at + 1) else {
                    return Some(Storage::Unallocated);
                };
                Some(
                    self.fixed_array(addr, bytes, width)
                        .unwrap_or(Storage::Unsupported),
                )
            }
            _ => Some(Storage::Unsupported),
        }
    }

    /// A fixed array (`FAHD` + `FADB`) of unfiltered chunk addresses, unpaged.
    fn fixed_array(&mut self, addr: u64, bytes: u64, width: u8) -> Option<Storage> {
        self.tick()?;
        let (o, l) = (self.so, self.sl);
        let p = self.pos(addr, 8 + l + o)?;
        let head = self.head;
        let (client, entry, page_bits) = (head[p + 5], usize::from(head[p + 6]), head[p + 7]);
        let n = le(head, p + 8, l)?;
        if &head[p..p + 4] != b"FAHD" || client != 0 || entry != o {
            return None;
        }
        if page_bits >= 32 || n > 1u64 << page_bits {
            return None;
        }
        let data = self.addr(head, p + 8 + l)?;
        self.tick()?;
        let q = self.pos(data, 6 + o)?;
        if &head[q..q + 4] != b"FADB" {
            return None;
        }
        let mut chunks = 0;
        for i in 0..usize::try_from(n).ok()? {
            let at = q + 6 + o + i.checked_mul(o)?;
            if at.checked_add(o)? > head.len() {
                break;
            }
            if let Some(chunk) = self.addr(head, at) {
                chunks += usize::from(self.region(chunk, bytes, width));
            }
        }
        Some(Storage::Chunked { chunks })
    }

    /// Keep `len` bytes of `width` at file address `addr`, if sane; true if kept.
    fn region(&mut self, addr: u64, len: u64, width: u8) -> bool {
        let Some(start) = self.base.checked_add(addr) else {
            return false;
        };
        let inside = start.checked_add(len).is_some_and(|end| end <= self.eof);
        if len == 0 || !inside || self.out.regions.len() >= MAX_REGIONS {
            return false;
        }
        self.out.regions.push(TypedRegion { start, len, width });
        true
    }
}

fn join(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{group}/{name}")
    }
}

/// A Datatype message: a short name, and the element width if the class is simple.
fn datatype(b: &[u8]) -> (String, Option<u8>) {
    let (Some(&cv), Some(&bits), Some(size)) = (b.first(), b.get(1), le(b, 4, 4)) else {
        return ("bad type".to_string(), None);
    };
    let name = match cv & 0x0F {
        0 if bits & 0x08 != 0 => "int",
        0 => "uint",
        1 => "float",
        2 => "time",
        3 => "string",
        4 => "bitfield",
        5 => "opaque",
        6 => "compound",
        7 => "reference",
        8 => "enum",
        9 => "vlen",
        10 => "array",
        _ => "type",
    };
    let simple = matches!(cv & 0x0F, 0 | 1 | 2 | 4 | 7 | 8);
    let width = (simple && matches!(size, 1 | 2 | 4 | 8)).then_some(size as u8);
    let name = if matches!(cv & 0x0F, 0 | 1) {
        format!("{name}{}", size.saturating_mul(8))
    } else {
        format!("{name}{size}")
    };
    (name, width)
}
