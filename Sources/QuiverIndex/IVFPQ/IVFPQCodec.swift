import QuiverCore

// # IVF-PQ index codec (segment payload), format version 1
//
// The bytes of one trained `IVFPQIndex`: coarse centroids, PQ centroids, the inverted lists (codes and
// ids, concatenated in list order) and the tombstones. The codec knows nothing of files: it writes to a
// sink and reads from a buffer (a byte array or a read-only file mapping); decoding copies into the
// index's own arrays (one bulk copy per list: the lists are small, owned arrays so that `add` can grow
// them), so the buffer may be unmapped afterwards. Derived data is not stored: the L2/cosine ADC terms
// of the entries (one float each) are recomputed at load (count * d multiply-adds, milliseconds), and so
// are the rotated coarse centroids of an OPQ index.
//
// All integers are little-endian; floats are IEEE-754 binary32, little-endian. CRC32C is Castagnoli
// (`QuiverCore.CRC32C`).
//
// ## Header: 256 bytes at offset 0
// | off | size | field |
// |-----|------|-------|
// |   0 |  8 | magic: ASCII "QVIVFPQ1" |
// |   8 |  4 | format version = 1 |
// |  12 |  4 | header size = 256 |
// |  16 |  4 | flags: bit 0 = the index has an OPQ rotation (section 6 present); other bits zero (rejected otherwise) |
// |  20 |  1 | metric: 0 cosine, 1 dot, 2 l2 |
// |  21 |  1 | bits per PQ code byte = 8 |
// |  22 |  2 | zero |
// |  24 |  4 | dimension d, 1...65,536 |
// |  28 |  4 | nlist, 1...2^20 |
// |  32 |  4 | m (PQ subspaces = bytes per code), 1...4,096, divides d |
// |  36 |  4 | nprobe (default of searches), 1...nlist |
// |  40 |  4 | rerank (default re-ranking depth), 0...2^24 |
// |  44 |  4 | zero |
// |  48 |  8 | count: vectors stored, tombstoned ones included |
// |  56 |  8 | deletedCount: tombstoned vectors, <= count |
// |  64 | 144 | section table: 6 entries of 24 bytes, in the order below: offset u64, length u64, CRC32C u32 of the section's bytes, zero u32 |
// | 208 | 24 | entry of section 6 (rotation), same shape, when flag bit 0 is set; else zero |
// | 232 | 20 | zero |
// | 252 |  4 | CRC32C of header bytes 0..<252 |
//
// ## Sections, in this order; section i starts at the first multiple of 64 at or after the end of
// section i-1 (the first at 256); padding bytes are zero; the input ends exactly at the end of the last
// section (5, or 6 with a rotation).
// 0. coarse: nlist * d floats, centroid l at l * d. Finite.
// 1. pqCentroids: m * 256 * (d/m) floats, centroid c of subspace j at (j * 256 + c) * (d/m). Finite.
// 2. listSizes: nlist u64, the entries of each list; they sum to count.
// 3. codes: count * m bytes: list 0's codes, then list 1's, ...; entry i of a list = m bytes, byte j =
//    the centroid of subspace j for the residual (vector - coarse centroid; normalized vector for cosine).
// 4. ids: count Int64, in the order of the codes; all distinct.
// 5. tombstones: deletedCount Int64, strictly increasing, each one of the ids.
// 6. rotation (only with flag bit 0): d * d floats, the OPQ matrix R row-major (entry (i, j) at i * d + j;
//    a residual r is quantized as r R, and section 3's codes are of r R). Finite and orthogonal: every
//    entry of R^T R - I within 1e-3.
//
// Files without a rotation are byte for byte those of the first release of format 1 (whose readers
// reject the flag, so they refuse a rotated index rather than misread it).
//
// ## Validity
// Input is accepted only if: it is at least 256 bytes; magic, version, header size, header CRC and every
// field range above hold; the section table equals the layout computed from the header and the input
// length equals the end of the last section; each section's CRC32C matches (with `Verification.full`);
// the centroids and the rotation are finite and the rotation orthogonal; the list sizes sum to count;
// ids are distinct; tombstones are increasing ids of the index. Sizes are computed with overflow checks
// and compared with the input length before anything is allocated, so no field can cause an
// allocation larger than a small multiple of the input.

/// Serializes a trained `IVFPQIndex` to the byte layout documented in this file and loads it back
/// without retraining or re-encoding.
///
/// Thread-safety: `encode` reads the index and may run concurrently with searches (not with `add`,
/// `markDeleted` or `train`); `decode` is a pure function of its input.
public enum IVFPQCodec {
    /// "QVIVFPQ1".
    public static let magic: [UInt8] = Array("QVIVFPQ1".utf8)
    /// The format version this build writes and reads.
    public static let version: UInt32 = 1
    /// Bytes of the fixed header.
    public static let headerSize = 256
    static let sectionCount = 6
    /// Flag bit 0: an OPQ rotation (section 6) follows the tombstones.
    static let rotationFlag: UInt32 = 1
    static let tableOffset = 64

    /// How much of the input `decode` checks before trusting it.
    public enum Verification: Sendable {
        /// Header CRC, every section's CRC32C, and the structure (the default).
        case full
        /// Header CRC and structure only (for bytes verified another way).
        case structure
    }

    /// The layout for these sizes, or nil on Int overflow.
    static func layout(dimension d: Int, nlist: Int, m: Int, count: Int, deleted: Int, rotation: Bool) -> SectionLayout? {
        SectionLayout(headerSize: headerSize, sections: [
            (nlist * d, 4), (m * 256 * (d / m), 4), (nlist, 8), (count, m), (count, 8), (deleted, 8),
        ] + (rotation ? [(d * d, 4)] : []))
    }

    /// Writes the encoding of `index` through `write`, in file order. Throws
    /// `IndexError(.invalidParameter)` for an untrained index, and rethrows the sink's errors.
    public static func encode(_ index: IVFPQIndex, to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        CodecCalls.encoded()
        guard let pq = index.pq else { throw IndexError(.invalidParameter, "an untrained IVF-PQ index cannot be encoded") }
        let d = index.dimension, nl = index.nlist, m = pq.subspaces
        let tomb = index.deleted.sorted()
        // Cannot overflow: the index holds these bytes in memory.
        let rotation = index.rotation?.matrix
        let sections = sectionCount + (rotation == nil ? 0 : 1)
        let l = layout(dimension: d, nlist: nl, m: m, count: index.count, deleted: tomb.count, rotation: rotation != nil)!
        var sizes = ByteWriter(capacity: nl * 8)
        for list in index.lists { sizes.write(UInt64(list.ids.count)) }
        var crcs = [UInt32](repeating: 0, count: sections)
        crcs[0] = index.coarse.withUnsafeBytes { CRC32C.checksum($0) }
        crcs[1] = pq.centroids.withUnsafeBytes { CRC32C.checksum($0) }
        crcs[2] = sizes.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        for list in index.lists {
            crcs[3] = list.codes.withUnsafeBytes { CRC32C.update(crcs[3], $0) }
            crcs[4] = list.ids.withUnsafeBytes { CRC32C.update(crcs[4], $0) }
        }
        crcs[5] = tomb.withUnsafeBytes { CRC32C.checksum($0) }
        if let rotation { crcs[6] = rotation.withUnsafeBytes { CRC32C.checksum($0) } }

        var h = ByteWriter(capacity: headerSize)
        h.write(raw: magic)
        h.write(version)
        h.write(UInt32(headerSize))
        h.write(rotation == nil ? 0 : rotationFlag)
        h.write(metricCode(index.metric))
        h.write(UInt8(8))
        h.write(UInt16(0))
        h.write(UInt32(d))
        h.write(UInt32(nl))
        h.write(UInt32(m))
        h.write(UInt32(index.nprobe))
        h.write(UInt32(index.rerank))
        h.write(UInt32(0))
        h.write(UInt64(index.count))
        h.write(UInt64(tomb.count))
        for i in 0..<sections {
            h.write(UInt64(l.offsets[i]))
            h.write(UInt64(l.lengths[i]))
            h.write(crcs[i])
            h.write(UInt32(0))
        }
        h.write(raw: [UInt8](repeating: 0, count: 252 - h.bytes.count))
        h.write(CRC32C.checksum(h.bytes))
        try h.bytes.withUnsafeBytes { try write($0) }

        let zeros = [UInt8](repeating: 0, count: 64)
        var at = headerSize
        func pad(to offset: Int) throws {
            if offset > at { try zeros.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0 ..< offset - at])) } }
            at = offset
        }
        for i in 0..<sections {
            try pad(to: l.offsets[i])
            switch i {
            case 0: try index.coarse.withUnsafeBytes { try write($0) }
            case 1: try pq.centroids.withUnsafeBytes { try write($0) }
            case 2: try sizes.bytes.withUnsafeBytes { try write($0) }
            case 3: for list in index.lists where !list.codes.isEmpty { try list.codes.withUnsafeBytes { try write($0) } }
            case 4: for list in index.lists where !list.ids.isEmpty { try list.ids.withUnsafeBytes { try write($0) } }
            case 5: if !tomb.isEmpty { try tomb.withUnsafeBytes { try write($0) } }
            default: try rotation!.withUnsafeBytes { try write($0) }
            }
            at = l.offsets[i] + l.lengths[i]
        }
    }

    /// The encoding of `index` as one byte array.
    public static func encode(_ index: IVFPQIndex) throws -> [UInt8] {
        try SectionLayout.bytes(reserving: 0) { try encode(index, to: $0) }
    }

    /// Loads an index from `bytes` (copied).
    public static func decode(_ bytes: [UInt8], verify: Verification = .full) throws -> IVFPQIndex {
        try bytes.withUnsafeBytes { try decode($0, verify: verify) }
    }

    /// Loads an index from `bytes` (any alignment; a mapped file works), copying what it keeps: the
    /// buffer is not referenced after the call. The loaded index has no `vectorSource`. Throws
    /// `IndexError` (`.corrupt`, `.unsupportedVersion`) on any input that breaks this file's rules.
    public static func decode(_ bytes: UnsafeRawBufferPointer, verify: Verification = .full) throws -> IVFPQIndex {
        let header = try CodecHeader(bytes, size: headerSize, magic: magic, version: Self.version, what: "an IVF-PQ index")
        let base = header.base
        func u32(_ o: Int) -> UInt32 { header.u32(o) }
        func u64(_ o: Int) -> UInt64 { header.u64(o) }
        func corrupt(_ message: String, _ offset: Int) -> IndexError { IndexError(.corrupt, message, offset: offset) }

        let flags = u32(16)
        guard flags & ~rotationFlag == 0 else { throw corrupt("unknown flags \(flags)", 16) }
        let rotated = flags & rotationFlag != 0
        guard let metric = metric(fromCode: bytes[20]) else { throw corrupt("unknown metric code \(bytes[20])", 20) }
        guard bytes[21] == 8 else { throw corrupt("\(bytes[21]) bits per code byte; only 8 is supported", 21) }
        let d = Int(u32(24)), nl = Int(u32(28)), m = Int(u32(32)), nprobe = Int(u32(36)), rerank = Int(u32(40))
        guard (1...65_536).contains(d) else { throw corrupt("dimension \(d) outside 1...65536", 24) }
        guard (1...(1 << 20)).contains(nl) else { throw corrupt("nlist \(nl) outside 1...2^20", 28) }
        guard (1...4096).contains(m), m <= d, d % m == 0 else { throw corrupt("m \(m) does not divide the dimension \(d)", 32) }
        guard (1...nl).contains(nprobe) else { throw corrupt("nprobe \(nprobe) outside 1...nlist", 36) }
        guard rerank <= 1 << 24 else { throw corrupt("rerank \(rerank) above 2^24", 40) }
        let count64 = u64(48), deleted64 = u64(56)
        // Every vector takes at least m + 8 bytes of input: larger counts cannot fit any valid input.
        guard count64 <= UInt64(bytes.count) else { throw corrupt("count \(count64) larger than the input", 48) }
        guard deleted64 <= count64 else { throw corrupt("deletedCount \(deleted64) above count \(count64)", 56) }
        let count = Int(count64), deletedCount = Int(deleted64)
        guard let l = layout(dimension: d, nlist: nl, m: m, count: count, deleted: deletedCount, rotation: rotated) else {
            throw corrupt("section sizes overflow", 48)
        }
        try l.check(bytes, header: header, tableOffset: tableOffset, reservedZero: true, checksums: verify == .full)
        func section(_ i: Int) -> UnsafeRawBufferPointer { l.section(i, of: bytes) }

        func floats(_ i: Int, _ what: String = "centroid component") throws -> [Float] {
            let n = l.lengths[i] / 4
            var out = [Float](repeating: 0, count: n)
            let s = base + l.offsets[i]
            for j in 0..<n {
                let v = Float(bitPattern: s.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self).littleEndian)
                guard v.isFinite else { throw corrupt("a non-finite \(what)", l.offsets[i] + 4 * j) }
                out[j] = v
            }
            return out
        }
        let coarse = try floats(0)
        let pq: ProductQuantizer
        do {
            pq = try ProductQuantizer(dimension: d, subspaces: m, centroids: try floats(1))
        } catch let e as IndexError where e.code == .invalidParameter {
            throw corrupt(e.message, l.offsets[1])
        }
        var rotation: OPQRotation? = nil
        if rotated {
            let r = OPQRotation(dimension: d, matrix: try floats(6, "rotation entry"))
            guard r.orthogonalityError <= 1e-3 else { throw corrupt("the rotation is not orthogonal", l.offsets[6]) }
            rotation = r
        }
        var sizes = [Int](repeating: 0, count: nl)
        var total = 0
        for i in 0..<nl {
            let s = u64(l.offsets[2] + 8 * i)
            guard s <= UInt64(count - total) else { throw corrupt("list \(i) overruns the \(count) vectors", l.offsets[2] + 8 * i) }
            sizes[i] = Int(s)
            total += Int(s)
        }
        guard total == count else { throw corrupt("list sizes sum to \(total), count is \(count)", l.offsets[2]) }

        // Ids: dense (a permutation of 0..<count) needs no set; otherwise build one, rejecting duplicates.
        func id(_ i: Int) -> Int64 { Int64(bitPattern: u64(l.offsets[4] + 8 * i)) }
        var seen = [UInt64](repeating: 0, count: (count + 63) / 64)
        var dense = true
        for i in 0..<count {
            let v = id(i)
            guard v >= 0, v < Int64(count) else { dense = false; break }
            let w = Int(v >> 6), bit = UInt64(1) << UInt64(v & 63)
            guard seen[w] & bit == 0 else { throw corrupt("id \(v) appears twice", l.offsets[4] + 8 * i) }
            seen[w] |= bit
        }
        seen = []
        var idSet: Set<Int64>? = nil
        if !dense {
            var set = Set<Int64>(minimumCapacity: count)
            for i in 0..<count {
                guard set.insert(id(i)).inserted else { throw corrupt("id \(id(i)) appears twice", l.offsets[4] + 8 * i) }
            }
            idSet = set
        }
        var deleted = Set<Int64>(minimumCapacity: deletedCount)
        var previous = Int64.min
        for i in 0..<deletedCount {
            let o = l.offsets[5] + 8 * i
            let v = Int64(bitPattern: u64(o))
            guard i == 0 || v > previous else { throw corrupt("tombstones not strictly increasing", o) }
            let stored = idSet.map { $0.contains(v) } ?? (v >= 0 && v < Int64(count))
            guard stored else { throw corrupt("tombstone \(v) is not an id of the index", o) }
            deleted.insert(v)
            previous = v
        }

        var lists = [IVFPQIndex.InvertedList](repeating: IVFPQIndex.InvertedList(), count: nl)
        var at = 0
        for i in 0..<nl where sizes[i] > 0 {
            let n = sizes[i]
            lists[i].codes = Array(UnsafeRawBufferPointer(rebasing: bytes[l.offsets[3] + at * m ..< l.offsets[3] + (at + n) * m]))
            lists[i].ids = (0..<n).map { id(at + $0) }
            at += n
        }
        // The OPQ training parameters are not stored: the defaults stand for "has a rotation".
        let parameters = IVFPQParameters(nlist: nl, subspaces: m, nprobe: nprobe, rerank: rerank, opq: rotated ? OPQParameters() : nil)
        return IVFPQIndex(decoded: d, metric: metric, parameters: parameters, coarse: coarse, pq: pq, rotation: rotation,
                          lists: lists, count: count, deleted: deleted, idSet: idSet)
    }

    static func metricCode(_ m: Metric) -> UInt8 { HNSWCodec.metricCode(m) }
    static func metric(fromCode c: UInt8) -> Metric? { HNSWCodec.metric(fromCode: c) }
}
