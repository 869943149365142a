extension HNSWIndex {
    /// Calls `body` with every stored id (in slot order) and whether it is tombstoned.
    /// Safe to call concurrently with searches, not with `add` or `markDeleted`.
    public func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        for s in 0..<count { try body(labels[s], isTombstoned(UInt32(s))) }
    }
}
