extension HNSWIndex {
    /// Calls `body` with every stored id (in slot order) and whether it is tombstoned.
    /// Safe to call concurrently with searches, not with `add` or `markDeleted`.
    public func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        for s in 0..<count { try body(labels[s], isTombstoned(UInt32(s))) }
    }
}

extension HNSWIndex {
    /// Calls `body` with the id, the tombstone flag and the stored vector (L2-normalized for cosine,
    /// as searches compare it) of every `step`-th slot, from slot 0: what a check against the source
    /// of the vectors reads. Safe to call concurrently with searches, not with `add` or `markDeleted`.
    public func forEachStoredVector(every step: Int = 1,
                                    _ body: (_ id: Int64, _ deleted: Bool, _ vector: UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        var s = 0
        while s < count {
            let p = (level0 + s * elementSize + vectorOffset).assumingMemoryBound(to: Float.self)
            try body(labels[s], isTombstoned(UInt32(s)), UnsafeBufferPointer(start: UnsafePointer(p), count: dimension))
            s += max(1, step)
        }
    }
}

extension HNSWIndex {
    /// A copy in memory of its own: each array (the element block, labels, levels, upper links,
    /// tombstones) copied in one bulk copy at its used length, as decoding a segment file's bytes
    /// without a mapping would lay it out, but without writing or checking those bytes. The random
    /// state is carried over, so nodes added to the copy get the levels the original would draw.
    /// Safe concurrently with searches, not with `add` or `markDeleted`.
    public func copy() -> HNSWIndex {
        func duplicate<T>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> UnsafeMutablePointer<T> {
            let out = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * MemoryLayout<T>.stride), alignment: 64)
            out.copyMemory(from: p, byteCount: n * MemoryLayout<T>.stride)
            return out.assumingMemoryBound(to: T.self)
        }
        let words = (count + 63) / 64
        let copy = HNSWIndex(
            decodedDimension: dimension, metric: metric, parameters: parameters, count: count,
            level0: UnsafeMutableRawPointer(duplicate(level0.assumingMemoryBound(to: UInt8.self), count * elementSize)),
            labels: duplicate(labels, count), levels: duplicate(levels, count),
            upperOffsets: duplicate(upperOffsets, count), upperPool: duplicate(upperPool, upperWords), upperWords: upperWords,
            tombstones: duplicate(tombstones, words), tombstoneWords: words, deletedCount: deletedCount,
            entryPoint: entryPoint, maxLevel: maxLevel, rngState: rng.state, slotOf: slotOf, backing: nil)
        copy.efSearch = efSearch
        copy.filteredSearchOverride = filteredSearchOverride
        return copy
    }
}
