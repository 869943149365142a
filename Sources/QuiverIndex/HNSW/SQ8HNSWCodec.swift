import QuiverCore

// # sq8 HNSW graph codec (segment payload), format version 2 (version 1 is read too)
//
// The bytes of one `SQ8HNSWIndex`: the HNSW layout of HNSWCodec.swift with 8-bit codes in place of each
// element's float32 vector, followed by the quantizer's ranges and a cold section of the float32
// vectors (read only to re-score a search's final candidates). As there, every section starts at a
// multiple of 64 so that a mapped file is searched in place; integers and floats are little-endian.
//
// ## Header: 384 bytes at offset 0
// | off | size | field |
// |-----|------|-------|
// |   0 |  8 | magic: ASCII "QVHSQ801" |
// |   8 |  4 | format version: 2 (written); 1 (read: an earlier build's file, 32-bit links) |
// |  12 |  4 | header size = 384 |
// | 16..<96 | | as HNSWCodec's header (flags 0, metric, dimension, M, M0, efConstruction, efSearch, maxLevel, count, entryPoint, upperWords, deletedCount, rngState, seed), except bytes 21 and 22 |
// |  21 |  1 | training of the ranges: 0 min/max, 1 quantile clip |
// |  22 |  1 | link width w in bytes: version 2: 2 (16-bit links; count < 65,536) or 4; version 1: 0, meaning 4 |
// |  23 |  1 | zero |
// |  96 |  8 | clip fraction, f64 (0 for min/max; 0 <= f < 0.5 for a clip) |
// | 104 | 216 | section table: 9 entries of 24 bytes (offset u64, length u64, CRC32C u32, reserved u32 = 0) |
// | 320 | 60 | reserved (written as zero) |
// | 380 |  4 | CRC32C of header bytes 0..<380 |
//
// ## Sections (offsets as in HNSWCodec: each at the first multiple of 64 after the previous one)
// 0. level0: count elements of E = ceil((w*(1 + M0) + d)/4)*4 bytes: linkCount (w bytes, <= M0), M0 link
//    slots of w bytes, then d codes u8 (code j of node s stands for offset[j] + scale[j] * code), zero
//    padding to E. The writer chooses w = 2 when count < 65,536, else 4.
// 1. ids, 2. levels, 3. upperOffsets, 5. tombstones: exactly as HNSWCodec's sections 1, 2, 3, 5.
// 4. upperPool: upperWords words of w bytes, laid out as HNSWCodec's section 4 (count, then M links).
// 6. scales: d f32, each finite and >= 0.
// 7. offsets: d f32, each finite.
// 8. vectors: count * d f32, the full-precision vector of each slot (L2-normalized for cosine), row-major.
//
// ## Validity
// HNSWCodec's rules for the header fields and sections 0-5 (with w-byte links), plus: training code 0
// or 1; fraction 0 for min/max and in [0, 0.5) for a clip; byte 22 as above (w = 2 with count >= 65,536
// is refused), byte 23 zero; every scale finite and >= 0, every offset finite; with
// `Verification.full` every section's CRC32C matches (the vectors' included).

/// Serializes an `SQ8HNSWIndex` to the layout above and loads it back, in place over a mapped buffer
/// (codes, links and the cold vectors used where they lie) or by one bulk copy per section.
/// Thread-safety: as `HNSWCodec`.
public enum SQ8HNSWCodec {
    /// "QVHSQ801".
    public static let magic: [UInt8] = Array("QVHSQ801".utf8)
    /// The version written; version 1 (32-bit links, byte 22 zero) is read as well.
    public static let version: UInt32 = 2
    static let oldestVersion: UInt32 = 1
    public static let headerSize = 384
    static let tableOffset = 104

    static func layout(count: Int, elementSize: Int, upperWords: Int, linkWidth: Int, dimension: Int) -> SectionLayout? {
        let (vectors, overflow) = count.multipliedReportingOverflow(by: dimension)
        if overflow { return nil }
        return SectionLayout(headerSize: headerSize, sections: [
            (count, elementSize), (count, 8), (count, 1), (count, 4), (upperWords, linkWidth),
            (count / 64 + (count % 64 == 0 ? 0 : 1), 8), (dimension, 4), (dimension, 4), (vectors, 4),
        ])
    }

    /// The number of bytes `encode` writes for `index`.
    public static func encodedSize(_ index: SQ8HNSWIndex) -> Int {
        layout(count: index.count, elementSize: index.elementSize, upperWords: index.storage.upperWords, linkWidth: index.linkWidth,
               dimension: index.dimension)?.total ?? 0
    }

    /// Writes the encoding of `index` through `write`, in file order. Not concurrent with `add`/`markDeleted`.
    public static func encode(_ index: SQ8HNSWIndex, to write: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        CodecCalls.encoded()
        let s = index.storage, n = s.count, d = index.dimension
        let l = layout(count: n, elementSize: index.elementSize, upperWords: s.upperWords, linkWidth: s.linkWidth, dimension: d)!
        let pointers: [UnsafeRawPointer] = [
            UnsafeRawPointer(s.level0), UnsafeRawPointer(s.labels), UnsafeRawPointer(s.levels), UnsafeRawPointer(s.upperOffsets),
            UnsafeRawPointer(s.upperPool), UnsafeRawPointer(s.tombstones), UnsafeRawPointer(s.scales), UnsafeRawPointer(s.offsets),
            UnsafeRawPointer(s.vectors),
        ]
        let sections = pointers.enumerated().map { UnsafeRawBufferPointer(start: $0.element, count: l.lengths[$0.offset]) }
        var h = ByteWriter(capacity: headerSize)
        h.write(raw: magic)
        h.write(version)
        h.write(UInt32(headerSize))
        let (code, fraction): (UInt8, Double) = switch index.training {
        case .minMax: (0, 0)
        case .clip(let f): (1, f)
        }
        GraphFields.write(&h, metric: index.metric, byte21: code, byte22: UInt8(s.linkWidth), dimension: d, parameters: index.parameters,
                          efSearch: index.efSearch, maxLevel: s.maxLevel, count: n, entryPoint: n == 0 ? HNSWIndex.noSlot : s.entryPoint,
                          upperWords: s.upperWords, deletedCount: s.deletedCount, rngState: s.rngState)
        h.write(fraction.bitPattern)
        try l.emit(header: &h, reserved: 60, sections: sections, to: write)
    }

    /// The encoding of `index` as one byte array.
    public static func encode(_ index: SQ8HNSWIndex) -> [UInt8] {
        SectionLayout.bytes(reserving: encodedSize(index)) { encode(index, to: $0) }
    }

    /// Loads an index from `bytes`, copying them.
    public static func decode(_ bytes: [UInt8], verify: HNSWCodec.Verification = .full) throws -> SQ8HNSWIndex {
        try bytes.withUnsafeBytes { try decode($0, inPlace: nil, verify: verify) }
    }

    /// Loads an index from `bytes`: in place with an `owner` that keeps them alive and unchanged (and a
    /// 64-byte aligned buffer), else by copying. Throws `IndexError` (`.corrupt`, `.unsupportedVersion`)
    /// on input that breaks this file's rules.
    public static func decode(_ bytes: UnsafeRawBufferPointer, inPlace owner: AnyObject?,
                              verify: HNSWCodec.Verification = .full) throws -> SQ8HNSWIndex {
        let header = try CodecHeader(bytes, size: headerSize, magic: magic, version: version, oldest: oldestVersion, what: "an sq8 HNSW graph")
        guard bytes[16] == 0, bytes[17] == 0, bytes[18] == 0, bytes[19] == 0 else {
            throw IndexError(.corrupt, "unknown flags \(header.u32(16))", offset: 16)
        }
        let f = try GraphFields(header, bytes)
        let fraction = Double(bitPattern: header.u64(96))
        let training: SQ8Training
        switch bytes[21] {
        case 0:
            guard fraction == 0 else { throw IndexError(.corrupt, "clip fraction \(fraction) with min/max training", offset: 96) }
            training = .minMax
        case 1:
            guard fraction >= 0 && fraction < 0.5 else { throw IndexError(.corrupt, "clip fraction \(fraction) outside [0, 0.5)", offset: 96) }
            training = .clip(fraction)
        default:
            throw IndexError(.corrupt, "unknown training code \(bytes[21])", offset: 21)
        }
        let linkWidth: Int
        switch (header.u32(8), bytes[22]) {
        case (1, 0): linkWidth = 4
        case (2, 4): linkWidth = 4
        case (2, 2):
            guard f.count < 1 << 16 else { throw IndexError(.corrupt, "16-bit links for \(f.count) nodes (at most 65,535)", offset: 22) }
            linkWidth = 2
        default:
            throw IndexError(.corrupt, "link width \(bytes[22]) in a version \(header.u32(8)) file", offset: 22)
        }
        guard bytes[23] == 0 else { throw IndexError(.corrupt, "reserved byte 23 is \(bytes[23])", offset: 23) }
        let elementSize = SQ8HNSWIndex.elementSize(m0: f.m0, dimension: f.dimension, linkWidth: linkWidth)
        guard let l = layout(count: f.count, elementSize: elementSize, upperWords: f.upperWords, linkWidth: linkWidth, dimension: f.dimension) else {
            throw IndexError(.corrupt, "section sizes overflow", offset: 48)
        }
        try l.check(bytes, header: header, tableOffset: tableOffset, reservedZero: true, checksums: verify == .full)
        let base = bytes.baseAddress!
        for j in 0..<f.dimension {
            let s = base.loadUnaligned(fromByteOffset: l.offsets[6] + 4 * j, as: Float.self)
            let o = base.loadUnaligned(fromByteOffset: l.offsets[7] + 4 * j, as: Float.self)
            guard s.isFinite && s >= 0 else { throw IndexError(.corrupt, "scale \(s) of dimension \(j)", offset: l.offsets[6] + 4 * j) }
            guard o.isFinite else { throw IndexError(.corrupt, "offset \(o) of dimension \(j)", offset: l.offsets[7] + 4 * j) }
        }
        let g = try f.checkGraph(bytes, l, elementSize: elementSize, linkWidth: linkWidth)
        let inPlace = owner != nil && Int(bitPattern: base) % 64 == 0
        func adopt<T>(_ i: Int, _ t: T.Type) -> UnsafeMutablePointer<T> { l.adopt(i, of: bytes, t, inPlace: inPlace) }
        let storage = SQ8Storage(
            level0: UnsafeMutableRawPointer(adopt(0, UInt8.self)), labels: adopt(1, Int64.self), levels: adopt(2, UInt8.self),
            upperOffsets: adopt(3, UInt32.self), upperPool: UnsafeMutableRawPointer(adopt(4, UInt8.self)), upperWords: f.upperWords,
            tombstones: g.tombstones, scales: adopt(6, Float.self), offsets: adopt(7, Float.self), vectors: adopt(8, Float.self),
            count: f.count, deletedCount: g.deleted, entryPoint: f.entryPoint, maxLevel: f.maxLevel, rngState: f.rngState,
            slotOf: g.slotOf, linkWidth: linkWidth, m0: f.m0, dimension: f.dimension, backing: inPlace ? owner : nil)
        return SQ8HNSWIndex(storage: storage, dimension: f.dimension, metric: f.metric, parameters: f.parameters, training: training)
    }
}
