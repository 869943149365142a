import QuiverCore

#if _endian(big)
#error("HNSWCodec writes and maps little-endian data in place; a big-endian build needs byte swapping")
#endif

// # HNSW graph codec (segment payload), format version 1
//
// The bytes of one `HNSWIndex`: graph, vectors, ids and tombstones, laid out so that a memory-mapped
// file can be searched in place (every section starts at a multiple of 64 bytes, and the layer-0 block
// is exactly the index's in-memory element block). The codec knows nothing of files: it writes to a
// sink and reads from a buffer; the segment store (`SegmentStore` in Quiver) maps the file and hands the buffer in.
//
// All integers are little-endian; floats are IEEE-754 binary32, little-endian. CRC32C is Castagnoli
// (`QuiverCore.CRC32C`). "slot" = a node's position in insertion order (0..<count).
//
// ## Header: 256 bytes at offset 0
// | off | size | field |
// |-----|------|-------|
// |   0 |  8 | magic: ASCII "QVHNSW01" |
// |   8 |  4 | format version = 1 |
// |  12 |  4 | header size = 256 |
// |  16 |  4 | flags = 0 (reserved; any other value is rejected) |
// |  20 |  1 | metric: 0 cosine, 1 dot, 2 l2 |
// |  21 |  3 | reserved (written as zero) |
// |  24 |  4 | dimension d, 1...65,536 |
// |  28 |  4 | M, 2...255 (links per node on upper layers) |
// |  32 |  4 | M0 = 2 * M (links per node on layer 0) |
// |  36 |  4 | efConstruction, 1...2^20 |
// |  40 |  4 | efSearch (default of searches), 1...2^20 |
// |  44 |  4 | maxLevel: top layer of the graph, 0...64 |
// |  48 |  8 | count: number of nodes, 0...2^32-2 |
// |  56 |  4 | entryPoint: slot of the top-layer entry node; 0xFFFFFFFF iff count == 0 |
// |  60 |  4 | reserved (written as zero) |
// |  64 |  8 | upperWords: UInt32 words in the upper-link pool |
// |  72 |  8 | deletedCount: number of tombstoned nodes |
// |  80 |  8 | rngState: the level generator's state (a reopened index continues the sequence) |
// |  88 |  8 | seed: HNSWParameters.seed the index was created with |
// |  96 | 144 | section table: 6 entries of 24 bytes, in the order below: offset u64, length u64, CRC32C u32 of the section's bytes, reserved u32 (zero) |
// | 240 | 12 | reserved (written as zero) |
// | 252 |  4 | CRC32C of header bytes 0..<252 |
//
// ## Sections, in this order; section i starts at the first multiple of 64 at or after the end of
// section i-1 (the first at 256); padding bytes are zero; the input ends exactly at the end of section 5.
// 0. level0: count elements of E = 4 + 4*M0 + 4*d bytes; element s = linkCount u32 (<= M0), M0 link
//    slots u32 (the first linkCount are valid; each < count), d floats (the vector, L2-normalized for cosine).
// 1. ids: count Int64, the caller's id of each slot; all distinct.
// 2. levels: count u8, the top layer of each slot (<= maxLevel; entryPoint's level == maxLevel).
// 3. upperOffsets: count u32: 0xFFFFFFFF for a node of level 0; else the word offset in the pool of its
//    L = level blocks, with offset + L*(M+1) <= upperWords.
// 4. upperPool: upperWords u32. Block l (1...L) of node s is at upperOffsets[s] + (l-1)*(M+1):
//    linkCount u32 (<= M), then M link slots; each valid link is a slot whose level >= l.
// 5. tombstones: ceil(count/64) u64; bit (s mod 64) of word s/64 set = slot s deleted; bits >= count are
//    zero; the number of set bits equals deletedCount.
//
// Reserved bytes are covered by the header CRC but not otherwise checked by version-1 readers.
//
// ## Validity
// Input is accepted only if: it is at least 256 bytes; magic, version, header size, header CRC and
// every field range above hold; the section table equals the layout computed from the header (offsets,
// lengths) and the input length equals the end of section 5; each section's CRC32C matches (with
// `Verification.full`); and every structural rule above holds (checked always, in O(count * M0), so that
// hostile but checksummed input cannot make a search read out of bounds). Sizes are computed with
// overflow checks and compared with the input length before anything is allocated, so no count or
// offset in the input can cause an allocation larger than the input itself.

/// Serializes an `HNSWIndex` to the byte layout documented in this file and loads it back without
/// rebuilding the graph, in place over a mapped buffer or by one bulk copy.
///
/// Thread-safety: `encode` reads the index and may run concurrently with searches (not with `add` or
/// `markDeleted`); `decode` is a pure function of its input.
public enum HNSWCodec {
    /// "QVHNSW01".
    public static let magic: [UInt8] = Array("QVHNSW01".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 256
    static let tableOffset = 96

    /// How much of the input `decode` checks before trusting it.
    public enum Verification: Sendable {
        /// Header CRC, every section's CRC32C, and the graph's structure (the default).
        case full
        /// Header CRC and structure, but not the sections' CRCs: faster open of a file whose bytes were
        /// verified another way. Damaged vectors then go unnoticed; damaged links are still rejected.
        case structure
    }

    /// The section layout of an index with these sizes, or nil if it would overflow Int.
    static func layout(count: Int, elementSize: Int, upperWords: Int) -> SectionLayout? {
        SectionLayout(headerSize: headerSize, sections: [
            (count, elementSize), (count, 8), (count, 1), (count, 4), (upperWords, 4),
            (count / 64 + (count % 64 == 0 ? 0 : 1), 8),
        ])
    }

    /// The number of bytes `encode` writes for `index`.
    public static func encodedSize(_ index: HNSWIndex) -> Int {
        layout(count: index.count, elementSize: index.elementSize, upperWords: index.upperWords)?.total ?? 0
    }

    /// Writes the encoding of `index` through `write`, in file order, in a few large chunks (the
    /// sections are written straight from the index's memory). Not concurrent with `add`/`markDeleted`.
    public static func encode(_ index: HNSWIndex, to write: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        CodecCalls.encoded()
        let count = index.count
        // Layout cannot overflow: the index holds these bytes in memory already.
        let l = layout(count: count, elementSize: index.elementSize, upperWords: index.upperWords)!
        // upperOffsets of level-0 nodes are already 0xFFFFFFFF; tombstone bits >= count are zero.
        let sections: [UnsafeRawBufferPointer] = [
            UnsafeRawBufferPointer(start: index.level0, count: l.lengths[0]),
            UnsafeRawBufferPointer(start: index.labels, count: l.lengths[1]),
            UnsafeRawBufferPointer(start: index.levels, count: l.lengths[2]),
            UnsafeRawBufferPointer(start: index.upperOffsets, count: l.lengths[3]),
            UnsafeRawBufferPointer(start: index.upperPool, count: l.lengths[4]),
            UnsafeRawBufferPointer(start: index.tombstones, count: l.lengths[5]),
        ]
        var h = ByteWriter(capacity: headerSize)
        h.write(raw: magic)
        h.write(version)
        h.write(UInt32(headerSize))
        GraphFields.write(&h, metric: index.metric, byte21: 0, dimension: index.dimension, parameters: index.parameters,
                          efSearch: index.efSearch, maxLevel: index.maxLevel, count: count, entryPoint: index.entryPoint,
                          upperWords: index.upperWords, deletedCount: index.deletedCount, rngState: index.rng.state)
        try l.emit(header: &h, reserved: 12, sections: sections, to: write)
    }

    /// The encoding of `index` as one byte array.
    public static func encode(_ index: HNSWIndex) -> [UInt8] {
        SectionLayout.bytes(reserving: encodedSize(index)) { encode(index, to: $0) }
    }

    /// Loads an index from `bytes`, copying them (one bulk copy per section).
    public static func decode(_ bytes: [UInt8], verify: Verification = .full) throws -> HNSWIndex {
        try bytes.withUnsafeBytes { try decode($0, inPlace: nil, verify: verify) }
    }

    /// Loads an index from `bytes`. With an `owner` (the object that keeps the bytes alive and
    /// unchanged, typically a read-only file mapping), the index uses the vectors and links in place
    /// and holds `owner` for its lifetime; only the tombstones are copied. Without one, it copies.
    /// In-place use needs a 64-byte aligned buffer (any page-aligned mapping is); otherwise it copies.
    /// Throws `IndexError` (`.corrupt`, `.unsupportedVersion`) on any input that breaks the rules of
    /// this file's format description.
    public static func decode(_ bytes: UnsafeRawBufferPointer, inPlace owner: AnyObject?, verify: Verification = .full) throws -> HNSWIndex {
        let header = try CodecHeader(bytes, size: headerSize, magic: magic, version: Self.version, what: "an HNSW graph")
        guard header.u32(16) == 0 else { throw IndexError(.corrupt, "unknown flags \(header.u32(16))", offset: 16) }
        let f = try GraphFields(header, bytes)
        let elementSize = 4 + 4 * f.m0 + 4 * f.dimension
        guard let l = layout(count: f.count, elementSize: elementSize, upperWords: f.upperWords) else {
            throw IndexError(.corrupt, "section sizes overflow", offset: 48)
        }
        try l.check(bytes, header: header, tableOffset: tableOffset, reservedZero: false, checksums: verify == .full)
        let g = try f.checkGraph(bytes, l, elementSize: elementSize)
        let inPlace = owner != nil && Int(bitPattern: header.base) % 64 == 0
        return HNSWIndex(
            decodedDimension: f.dimension, metric: f.metric, parameters: f.parameters, count: f.count,
            level0: UnsafeMutableRawPointer(l.adopt(0, of: bytes, UInt8.self, inPlace: inPlace)), labels: l.adopt(1, of: bytes, Int64.self, inPlace: inPlace),
            levels: l.adopt(2, of: bytes, UInt8.self, inPlace: inPlace), upperOffsets: l.adopt(3, of: bytes, UInt32.self, inPlace: inPlace),
            upperPool: l.adopt(4, of: bytes, UInt32.self, inPlace: inPlace), upperWords: f.upperWords,
            tombstones: g.tombstones, tombstoneWords: g.tombstoneWords, deletedCount: g.deleted, entryPoint: f.entryPoint,
            maxLevel: f.maxLevel, rngState: f.rngState, slotOf: g.slotOf, backing: inPlace ? owner : nil)
    }

    static func metricCode(_ m: Metric) -> UInt8 {
        switch m {
        case .cosine: return 0
        case .dot: return 1
        case .l2: return 2
        }
    }

    static func metric(fromCode c: UInt8) -> Metric? {
        switch c {
        case 0: return .cosine
        case 1: return .dot
        case 2: return .l2
        default: return nil
        }
    }
}
