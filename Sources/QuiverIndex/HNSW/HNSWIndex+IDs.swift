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
