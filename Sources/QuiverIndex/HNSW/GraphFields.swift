import QuiverCore

/// The fields at bytes 16..<96 of a graph segment's header, which both graph codecs (`HNSWCodec`,
/// `SQ8HNSWCodec`) write alike (see HNSWCodec.swift's table), read and range-checked; and the
/// structural check of the five graph sections (elements, ids, levels, upper offsets, upper pool)
/// and the tombstones, which the two codecs also share: sections 0...5 of either layout.
struct GraphFields {
    let metric: Metric
    let dimension: Int
    let m: Int
    let m0: Int
    let maxLevel: Int
    let count: Int
    let entryPoint: UInt32
    let upperWords: Int
    let deletedCount: Int
    let rngState: UInt64
    let parameters: HNSWParameters

    /// Reads the fields; throws `IndexError(.corrupt)` at the offset of a value outside its range.
    init(_ header: CodecHeader, _ bytes: UnsafeRawBufferPointer) throws {
        func u32(_ o: Int) -> UInt32 { header.u32(o) }
        func u64(_ o: Int) -> UInt64 { header.u64(o) }
        func corrupt(_ message: String, _ offset: Int) -> IndexError { IndexError(.corrupt, message, offset: offset) }

        guard let metric = HNSWCodec.metric(fromCode: bytes[20]) else { throw corrupt("unknown metric code \(bytes[20])", 20) }
        self.metric = metric
        dimension = Int(u32(24)); m = Int(u32(28)); m0 = Int(u32(32))
        let efC = Int(u32(36)), efS = Int(u32(40))
        maxLevel = Int(u32(44))
        guard (1...65_536).contains(dimension) else { throw corrupt("dimension \(dimension) outside 1...65536", 24) }
        guard (2...255).contains(m) else { throw corrupt("M \(m) outside 2...255", 28) }
        guard m0 == 2 * m else { throw corrupt("M0 \(m0) is not 2 * M", 32) }
        guard (1...(1 << 20)).contains(efC) else { throw corrupt("efConstruction \(efC) outside 1...2^20", 36) }
        guard (1...(1 << 20)).contains(efS) else { throw corrupt("efSearch \(efS) outside 1...2^20", 40) }
        guard maxLevel <= HNSWIndex.maxLevelAllowed else { throw corrupt("maxLevel \(maxLevel) above \(HNSWIndex.maxLevelAllowed)", 44) }
        let count64 = u64(48)
        guard count64 <= UInt64(HNSWIndex.maxCount) else { throw corrupt("count \(count64) above \(HNSWIndex.maxCount)", 48) }
        count = Int(count64)
        entryPoint = u32(56)
        guard count == 0 ? entryPoint == HNSWIndex.noSlot : Int(entryPoint) < count else {
            throw corrupt("entry point \(entryPoint) invalid for \(count) nodes", 56)
        }
        guard count > 0 || maxLevel == 0 else { throw corrupt("an empty graph with maxLevel \(maxLevel)", 44) }
        let upper64 = u64(64)
        // A node has at most maxLevelAllowed blocks: anything larger cannot be a valid pool.
        guard upper64 <= UInt64(count) * UInt64(HNSWIndex.maxLevelAllowed) * UInt64(m + 1) else {
            throw corrupt("upper-link pool of \(upper64) words is larger than \(count) nodes can use", 64)
        }
        upperWords = Int(upper64)
        let deleted64 = u64(72)
        guard deleted64 <= count64 else { throw corrupt("deletedCount \(deleted64) above count \(count)", 72) }
        rngState = u64(80)
        parameters = HNSWParameters(m: m, efConstruction: efC, efSearch: efS, seed: u64(88))
        deletedCount = Int(deleted64)
    }

    /// Writes bytes 16..<96 of a graph header (flags 0; `byte21` and `byte22`: reserved 0 for
    /// HNSWCodec, the training code and the link width for SQ8HNSWCodec).
    static func write(_ h: inout ByteWriter, metric: Metric, byte21: UInt8, byte22: UInt8 = 0, dimension: Int, parameters: HNSWParameters,
                      efSearch: Int, maxLevel: Int, count: Int, entryPoint: UInt32, upperWords: Int, deletedCount: Int, rngState: UInt64) {
        h.write(UInt32(0))
        h.write(HNSWCodec.metricCode(metric))
        h.write(raw: [byte21, byte22, 0])
        h.write(UInt32(dimension))
        h.write(UInt32(parameters.m))
        h.write(UInt32(parameters.m0))
        h.write(UInt32(parameters.efConstruction))
        h.write(UInt32(efSearch))
        h.write(UInt32(maxLevel))
        h.write(UInt64(count))
        h.write(entryPoint)
        h.write(UInt32(0))
        h.write(UInt64(upperWords))
        h.write(UInt64(deletedCount))
        h.write(rngState)
        h.write(parameters.seed)
    }

    /// Checks every structural rule of sections 0...5 (links within bounds and on their layers, levels,
    /// upper offsets, tombstone bits, distinct ids) over `bytes` laid out by `l`, with elements of
    /// `elementSize` bytes whose first `w + w * M0` are the layer-0 link count and links, and an upper
    /// pool of `w`-byte words (`w` = `linkWidth`, 4 or 2); returns the owned tombstones, the deleted
    /// count and the id map (nil when every id equals its slot).
    func checkGraph(_ bytes: UnsafeRawBufferPointer, _ l: SectionLayout, elementSize: Int, linkWidth w: Int = 4) throws
        -> (tombstones: UnsafeMutablePointer<UInt64>, tombstoneWords: Int, deleted: Int, slotOf: [Int64: UInt32]?) {
        func corrupt(_ message: String, _ offset: Int) -> IndexError { IndexError(.corrupt, message, offset: offset) }
        let base = bytes.baseAddress!
        // Structure. Read through unaligned loads: the input buffer may have any alignment.
        let l0 = base + l.offsets[0]
        let levelsBase = base + l.offsets[2]
        let offsetsBase = base + l.offsets[3]
        let poolBase = base + l.offsets[4]
        func level(_ s: Int) -> Int { Int(levelsBase.load(fromByteOffset: s, as: UInt8.self)) }
        func word(_ p: UnsafeRawPointer, _ o: Int) -> Int {
            w == 2 ? Int(p.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian)
                : Int(p.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian)
        }
        for s in 0..<count {
            let lv = level(s)
            guard lv <= maxLevel else { throw corrupt("node \(s) has level \(lv) above maxLevel \(maxLevel)", l.offsets[2] + s) }
            let e = s * elementSize
            let n = word(l0, e)
            guard n <= m0 else { throw corrupt("node \(s) has \(n) layer-0 links, more than M0 \(m0)", l.offsets[0] + e) }
            for j in 0..<n {
                let link = word(l0, e + w + w * j)
                guard link < count else { throw corrupt("node \(s) links to \(link), beyond \(count) nodes", l.offsets[0] + e + w + w * j) }
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
                let b = w * (Int(off) + (lc - 1) * (m + 1))
                let n = word(poolBase, b)
                guard n <= m else { throw corrupt("node \(s) has \(n) links on layer \(lc), more than M \(m)", l.offsets[4] + b) }
                for j in 0..<n {
                    let link = word(poolBase, b + w + w * j)
                    guard link < count, level(link) >= lc else {
                        throw corrupt("node \(s) links on layer \(lc) to \(link), which is not on that layer", l.offsets[4] + b + w + w * j)
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
        guard deleted == deletedCount else { throw corrupt("\(deleted) tombstone bits for deletedCount \(deletedCount)", 72) }
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

        let tomb = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, tombWords))
        UnsafeMutableRawPointer(tomb).copyMemory(from: base + l.offsets[5], byteCount: l.lengths[5])
        return (tomb, tombWords, deleted, slotOf)
    }
}

extension SectionLayout {
    /// Completes `h` (the header's fields so far) with the section table (per section: offset u64,
    /// length u64, CRC32C u32 of its bytes, zero u32), `reserved` zero bytes and the CRC32C of the
    /// whole header; writes it, then each section at its offset with zero padding between: a file in
    /// this layout.
    func emit(header h: inout ByteWriter, reserved: Int, sections: [UnsafeRawBufferPointer],
              to write: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        for i in 0..<sections.count {
            h.write(UInt64(offsets[i]))
            h.write(UInt64(lengths[i]))
            h.write(CRC32C.checksum(sections[i]))
            h.write(UInt32(0))
        }
        h.write(raw: [UInt8](repeating: 0, count: reserved))
        h.write(CRC32C.checksum(h.bytes))
        let header = h.bytes
        try header.withUnsafeBytes { try write($0) }
        let zeros = [UInt8](repeating: 0, count: 64)
        var at = header.count
        for i in 0..<sections.count {
            if offsets[i] > at { try zeros.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0 ..< offsets[i] - at])) } }
            if lengths[i] > 0 { try write(sections[i]) }
            at = offsets[i] + lengths[i]
        }
    }

    /// Section `i` of `bytes` as an array of T: the bytes in place (`inPlace`: a mapping kept alive by
    /// the index, never written through: an index copies everything before it changes), or a 64-byte
    /// aligned copy.
    func adopt<T>(_ i: Int, of bytes: UnsafeRawBufferPointer, _: T.Type, inPlace: Bool) -> UnsafeMutablePointer<T> {
        let base = bytes.baseAddress!
        if inPlace { return UnsafeMutableRawPointer(mutating: base + offsets[i]).assumingMemoryBound(to: T.self) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, lengths[i]), alignment: 64)
        p.copyMemory(from: base + offsets[i], byteCount: lengths[i])
        return p.assumingMemoryBound(to: T.self)
    }
}
