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
    static let sectionCount = 6
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
        h.write(UInt32(0))
        h.write(metricCode(index.metric))
        h.write(raw: [UInt8](repeating: 0, count: 3))
        h.write(UInt32(index.dimension))
        h.write(UInt32(index.m))
        h.write(UInt32(index.m0))
        h.write(UInt32(index.parameters.efConstruction))
        h.write(UInt32(index.efSearch))
        h.write(UInt32(index.maxLevel))
        h.write(UInt64(count))
        h.write(index.entryPoint)
        h.write(UInt32(0))
        h.write(UInt64(index.upperWords))
        h.write(UInt64(index.deletedCount))
        h.write(index.rng.state)
        h.write(index.parameters.seed)
        for i in 0..<sectionCount {
            h.write(UInt64(l.offsets[i]))
            h.write(UInt64(l.lengths[i]))
            h.write(CRC32C.checksum(sections[i]))
            h.write(UInt32(0))
        }
        h.write(raw: [UInt8](repeating: 0, count: 12))
        h.write(CRC32C.checksum(h.bytes))
        try h.bytes.withUnsafeBytes { try write($0) }
        let zeros = [UInt8](repeating: 0, count: 64)
        var at = headerSize
        for i in 0..<sectionCount {
            if l.offsets[i] > at { try zeros.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0 ..< l.offsets[i] - at])) } }
            if l.lengths[i] > 0 { try write(sections[i]) }
            at = l.offsets[i] + l.lengths[i]
        }
    }

    /// The encoding of `index` as one byte array.
    public static func encode(_ index: HNSWIndex) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(encodedSize(index))
        encode(index) { out.append(contentsOf: $0) }
        return out
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
        let base = header.base
        func u32(_ o: Int) -> UInt32 { header.u32(o) }
        func u64(_ o: Int) -> UInt64 { header.u64(o) }
        func corrupt(_ message: String, _ offset: Int) -> IndexError { IndexError(.corrupt, message, offset: offset) }

        guard u32(16) == 0 else { throw corrupt("unknown flags \(u32(16))", 16) }
        guard let metric = metric(fromCode: bytes[20]) else { throw corrupt("unknown metric code \(bytes[20])", 20) }
        let dimension = Int(u32(24)), m = Int(u32(28)), m0 = Int(u32(32))
        let efC = Int(u32(36)), efS = Int(u32(40)), maxLevel = Int(u32(44))
        guard (1...65_536).contains(dimension) else { throw corrupt("dimension \(dimension) outside 1...65536", 24) }
        guard (2...255).contains(m) else { throw corrupt("M \(m) outside 2...255", 28) }
        guard m0 == 2 * m else { throw corrupt("M0 \(m0) is not 2 * M", 32) }
        guard (1...(1 << 20)).contains(efC) else { throw corrupt("efConstruction \(efC) outside 1...2^20", 36) }
        guard (1...(1 << 20)).contains(efS) else { throw corrupt("efSearch \(efS) outside 1...2^20", 40) }
        guard maxLevel <= HNSWIndex.maxLevelAllowed else { throw corrupt("maxLevel \(maxLevel) above \(HNSWIndex.maxLevelAllowed)", 44) }
        let count64 = u64(48)
        guard count64 <= UInt64(HNSWIndex.maxCount) else { throw corrupt("count \(count64) above \(HNSWIndex.maxCount)", 48) }
        let count = Int(count64)
        let entryPoint = u32(56)
        guard count == 0 ? entryPoint == HNSWIndex.noSlot : Int(entryPoint) < count else {
            throw corrupt("entry point \(entryPoint) invalid for \(count) nodes", 56)
        }
        guard count > 0 || maxLevel == 0 else { throw corrupt("an empty graph with maxLevel \(maxLevel)", 44) }
        let upper64 = u64(64)
        // A node has at most maxLevelAllowed blocks: anything larger cannot be a valid pool.
        guard upper64 <= UInt64(count) * UInt64(HNSWIndex.maxLevelAllowed) * UInt64(m + 1) else {
            throw corrupt("upper-link pool of \(upper64) words is larger than \(count) nodes can use", 64)
        }
        let upperWords = Int(upper64)
        let deleted64 = u64(72)
        guard deleted64 <= count64 else { throw corrupt("deletedCount \(deleted64) above count \(count)", 72) }
        let rngState = u64(80), seed = u64(88)

        let elementSize = 4 + 4 * m0 + 4 * dimension
        guard let l = layout(count: count, elementSize: elementSize, upperWords: upperWords) else {
            throw corrupt("section sizes overflow", 48)
        }
        try l.check(bytes, header: header, tableOffset: tableOffset, reservedZero: false, checksums: verify == .full)
        func section(_ i: Int) -> UnsafeRawBufferPointer { l.section(i, of: bytes) }

        // Structure. Read through unaligned loads: the input buffer may have any alignment.
        let l0 = base + l.offsets[0]
        let levelsBase = base + l.offsets[2]
        let offsetsBase = base + l.offsets[3]
        let poolBase = base + l.offsets[4]
        func level(_ s: Int) -> Int { Int(levelsBase.load(fromByteOffset: s, as: UInt8.self)) }
        for s in 0..<count {
            let lv = level(s)
            guard lv <= maxLevel else { throw corrupt("node \(s) has level \(lv) above maxLevel \(maxLevel)", l.offsets[2] + s) }
            let e = s * elementSize
            let n = Int(l0.loadUnaligned(fromByteOffset: e, as: UInt32.self).littleEndian)
            guard n <= m0 else { throw corrupt("node \(s) has \(n) layer-0 links, more than M0 \(m0)", l.offsets[0] + e) }
            for j in 0..<n {
                let link = l0.loadUnaligned(fromByteOffset: e + 4 + 4 * j, as: UInt32.self).littleEndian
                guard Int(link) < count else { throw corrupt("node \(s) links to \(link), beyond \(count) nodes", l.offsets[0] + e + 4 + 4 * j) }
            }
            let off = offsetsBase.loadUnaligned(fromByteOffset: 4 * s, as: UInt32.self).littleEndian
            if lv == 0 {
                guard off == HNSWIndex.noSlot else { throw corrupt("level-0 node \(s) has an upper-link offset", l.offsets[3] + 4 * s) }
                continue
            }
            guard Int(off) + lv * (m + 1) <= upperWords else {
                throw corrupt("node \(s)'s upper links overrun the pool", l.offsets[3] + 4 * s)
            }
            for lc in 1...lv {
                let b = 4 * (Int(off) + (lc - 1) * (m + 1))
                let n = Int(poolBase.loadUnaligned(fromByteOffset: b, as: UInt32.self).littleEndian)
                guard n <= m else { throw corrupt("node \(s) has \(n) links on layer \(lc), more than M \(m)", l.offsets[4] + b) }
                for j in 0..<n {
                    let link = Int(poolBase.loadUnaligned(fromByteOffset: b + 4 + 4 * j, as: UInt32.self).littleEndian)
                    guard link < count, level(link) >= lc else {
                        throw corrupt("node \(s) links on layer \(lc) to \(link), which is not on that layer", l.offsets[4] + b + 4 + 4 * j)
                    }
                }
            }
        }
        if count > 0 && level(Int(entryPoint)) != maxLevel {
            throw corrupt("entry point \(entryPoint) is not on the top layer \(maxLevel)", 56)
        }
        let tombWords = l.lengths[5] / 8
        var deleted = 0
        for w in 0..<tombWords {
            let word = (base + l.offsets[5]).loadUnaligned(fromByteOffset: 8 * w, as: UInt64.self).littleEndian
            if w == tombWords - 1 && count % 64 != 0 {
                guard word >> UInt64(count % 64) == 0 else { throw corrupt("tombstone bits beyond the last node", l.offsets[5] + 8 * w) }
            }
            deleted += word.nonzeroBitCount
        }
        guard deleted == Int(deleted64) else { throw corrupt("\(deleted) tombstone bits for deletedCount \(deleted64)", 72) }
        // Ids: dense (id == slot everywhere) needs no map; otherwise build it, rejecting duplicates.
        let idsBase = base + l.offsets[1]
        func id(_ s: Int) -> Int64 { idsBase.loadUnaligned(fromByteOffset: 8 * s, as: Int64.self).littleEndian }
        var dense = true
        for s in 0..<count where id(s) != Int64(s) {
            dense = false
            break
        }
        var slotOf: [Int64: UInt32]? = nil
        if !dense {
            var map = [Int64: UInt32](minimumCapacity: count)
            for s in 0..<count {
                guard map.updateValue(UInt32(s), forKey: id(s)) == nil else {
                    throw corrupt("id \(id(s)) appears twice", l.offsets[1] + 8 * s)
                }
            }
            slotOf = map
        }

        // Adopt the bytes. Tombstones are always owned (they change after loading).
        let tomb = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, tombWords))
        UnsafeMutableRawPointer(tomb).copyMemory(from: base + l.offsets[5], byteCount: l.lengths[5])
        let params = HNSWParameters(m: m, efConstruction: efC, efSearch: efS, seed: seed)
        let inPlace = owner != nil && Int(bitPattern: base) % 64 == 0
        func adopt<T>(_ i: Int, _: T.Type) -> UnsafeMutablePointer<T> {
            if inPlace {
                // Never written through while `backing` is set: `add` copies everything first.
                return UnsafeMutableRawPointer(mutating: base + l.offsets[i]).assumingMemoryBound(to: T.self)
            }
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, l.lengths[i]), alignment: 64)
            p.copyMemory(from: base + l.offsets[i], byteCount: l.lengths[i])
            return p.assumingMemoryBound(to: T.self)
        }
        return HNSWIndex(
            decodedDimension: dimension, metric: metric, parameters: params, count: count,
            level0: UnsafeMutableRawPointer(adopt(0, UInt8.self)), labels: adopt(1, Int64.self), levels: adopt(2, UInt8.self),
            upperOffsets: adopt(3, UInt32.self), upperPool: adopt(4, UInt32.self), upperWords: upperWords,
            tombstones: tomb, tombstoneWords: tombWords, deletedCount: deleted, entryPoint: entryPoint,
            maxLevel: maxLevel, rngState: rngState, slotOf: slotOf, backing: inPlace ? owner : nil)
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
