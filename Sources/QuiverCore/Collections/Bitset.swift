/// A fixed-size set of non-negative integers below `capacity`, one bit each: the allow-filter that
/// the planner hands to an index (bit i set = internal id i may be returned).
public struct Bitset: Sendable, Equatable {
    public private(set) var words: [UInt64]
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity >= 0)
        self.capacity = capacity
        words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    @inlinable
    public func contains(_ i: Int) -> Bool {
        guard i >= 0 && i < capacity else { return false }
        return words[i >> 6] & (1 << UInt64(i & 63)) != 0
    }

    public mutating func insert(_ i: Int) {
        precondition(i >= 0 && i < capacity, "bit \(i) outside a set of capacity \(capacity)")
        words[i >> 6] |= 1 << UInt64(i & 63)
    }

    public mutating func remove(_ i: Int) {
        guard i >= 0 && i < capacity else { return }
        words[i >> 6] &= ~(1 << UInt64(i & 63))
    }

    /// The number of members.
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The number of members in `range` (clamped to 0..<capacity).
    public func count(in range: ClosedRange<Int>) -> Int {
        let lo = Swift.max(range.lowerBound, 0), hi = Swift.min(range.upperBound, capacity - 1)
        guard lo <= hi else { return 0 }
        let first = lo >> 6, last = hi >> 6
        var n = 0
        for w in first...last {
            var word = words[w]
            if w == first { word &= ~0 << UInt64(lo & 63) }
            if w == last && hi & 63 != 63 { word &= (1 << UInt64((hi & 63) + 1)) - 1 }
            n += word.nonzeroBitCount
        }
        return n
    }

    /// Adds every member of `other` (of the same capacity).
    public mutating func formUnion(_ other: Bitset) {
        precondition(other.capacity == capacity, "union of bitsets of capacities \(capacity) and \(other.capacity)")
        for i in words.indices { words[i] |= other.words[i] }
    }

    /// Keeps only the members also in `other` (of the same capacity).
    public mutating func formIntersection(_ other: Bitset) {
        precondition(other.capacity == capacity, "intersection of bitsets of capacities \(capacity) and \(other.capacity)")
        for i in words.indices { words[i] &= other.words[i] }
    }

    /// Calls `body` with every member, in increasing order.
    public func forEach(_ body: (Int) throws -> Void) rethrows {
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                try body(w << 6 | bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
    }
}
