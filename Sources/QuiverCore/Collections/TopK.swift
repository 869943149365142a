/// One candidate of a nearest-neighbour search: an internal row id and its distance (smaller is closer).
public struct Neighbor: Sendable, Equatable {
    public var id: Int64
    public var distance: Float

    public init(id: Int64, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// Keeps the `k` candidates of smallest distance seen so far: a bounded max-heap on distance, so
/// the worst kept candidate is at the root and a new one costs O(log k). Ties are broken by id
/// (smaller id is closer) so that results are deterministic across index kinds.
public struct TopK: Sendable {
    public let k: Int
    @usableFromInline var heap: [Neighbor] = []

    public init(k: Int) {
        precondition(k >= 0, "k must not be negative")
        self.k = k
        heap.reserveCapacity(Swift.min(k, 1 << 16))
    }

    @inlinable
    static func worse(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.distance > b.distance || (a.distance == b.distance && a.id > b.id)
    }

    /// The number of candidates kept.
    public var count: Int { heap.count }

    /// The distance a new candidate must beat to enter, or +infinity while fewer than `k` are kept.
    @inlinable
    public var threshold: Float { heap.count < k ? .infinity : heap[0].distance }

    /// Offers a candidate; it is kept if it is among the `k` closest so far.
    @inlinable
    public mutating func push(id: Int64, distance: Float) {
        let item = Neighbor(id: id, distance: distance)
        if heap.count < k {
            heap.append(item)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if Self.worse(heap[child], heap[parent]) {
                    heap.swapAt(child, parent)
                    child = parent
                } else { break }
            }
        } else if k > 0 && Self.worse(heap[0], item) {
            heap[0] = item
            siftDown(0)
        }
    }

    @usableFromInline
    mutating func siftDown(_ start: Int) {
        var parent = start
        let n = heap.count
        while true {
            let l = 2 * parent + 1
            if l >= n { return }
            var worst = l
            if l + 1 < n && Self.worse(heap[l + 1], heap[l]) { worst = l + 1 }
            if Self.worse(heap[worst], heap[parent]) {
                heap.swapAt(worst, parent)
                parent = worst
            } else { return }
        }
    }

    /// The kept candidates, closest first.
    public func sorted() -> [Neighbor] {
        heap.sorted { Self.worse($1, $0) }
    }
}
