import QuiverCore

/// Per-thread scratch memory of HNSW searches and inserts (usearch's "context"): the visited set, the
/// two heaps of best-first search and the small buffers of neighbour selection. A search takes it by
/// reference and allocates nothing once the buffers have grown to the index's size and `ef`.
///
/// Thread-safety: one context must be used by one thread at a time; it may move between threads and
/// between indexes (it grows to the largest index it has served).
public final class HNSWSearchContext: @unchecked Sendable {
    // Visited set: slot s is visited in the current search iff visited[s] == generation. Bumping the
    // generation clears the set in O(1); on wrap-around the array is zeroed once per 65,535 searches.
    var visited: UnsafeMutablePointer<UInt16>
    var visitedCapacity: Int
    var generation: UInt16 = 0
    // Best-first search heaps over packed keys (see `HNSWKey`): `candidates` is a min-heap of keys,
    // `results` a min-heap of complemented keys, i.e. a max-heap of the results.
    var candidates: KeyHeap
    var results: KeyHeap
    // Ascending keys extracted from `results` (the W of the paper), capacity >= max(ef, M0 + 1).
    var sorted: UnsafeMutablePointer<UInt64>
    var sortedCapacity: Int
    // Neighbour selection: candidate keys of a pruned list, and the selected slots (in a filtered
    // search: the filtered-out neighbours of the node being expanded, see `searchLayerFiltered`).
    var prune: UnsafeMutablePointer<UInt64>
    var selected: UnsafeMutablePointer<UInt32>
    // A copy of one link list, taken under the node's lock during a parallel build.
    var linkCopy: UnsafeMutablePointer<UInt32>
    // The not-yet-visited neighbours of the node being expanded (see `HNSWGraph.searchLayer`).
    var pending: UnsafeMutablePointer<UInt32>
    // The distances of `pending` (or of one link list) to the query (see `HNSWWalkable`).
    var scores: UnsafeMutablePointer<Float>
    var linkCapacity: Int
    // The normalized query (cosine).
    var query: UnsafeMutablePointer<Float>
    var queryCapacity: Int

    /// An empty context; it grows on first use.
    public init() {
        visitedCapacity = 0
        visited = .allocate(capacity: 1)
        candidates = KeyHeap(capacity: 64)
        results = KeyHeap(capacity: 64)
        sortedCapacity = 64
        sorted = .allocate(capacity: 64)
        linkCapacity = 0
        prune = .allocate(capacity: 1)
        selected = .allocate(capacity: 1)
        linkCopy = .allocate(capacity: 1)
        pending = .allocate(capacity: 1)
        scores = .allocate(capacity: 1)
        queryCapacity = 0
        query = .allocate(capacity: 1)
    }

    deinit {
        visited.deallocate()
        candidates.deallocate()
        results.deallocate()
        sorted.deallocate()
        prune.deallocate()
        selected.deallocate()
        linkCopy.deallocate()
        pending.deallocate()
        scores.deallocate()
        query.deallocate()
    }

    /// Grows the buffers for an index of `nodes` slots, `dimension`, `m0` and a search list of `ef`.
    /// Allocates only when a size grows.
    func prepare(nodes: Int, dimension: Int, m0: Int, ef: Int) {
        if nodes > visitedCapacity {
            let cap = max(nodes, visitedCapacity + visitedCapacity / 2)
            visited.deallocate()
            visited = .allocate(capacity: cap)
            visited.initialize(repeating: 0, count: cap)
            visitedCapacity = cap
            generation = 0
        }
        let need = max(ef, m0 + 1) + 1
        if need > sortedCapacity {
            reallocate(&sorted, capacity: need)
            sortedCapacity = need
        }
        candidates.reserve(need)
        results.reserve(need + 1)
        if m0 + 1 > linkCapacity {
            linkCapacity = m0 + 1
            reallocate(&prune, capacity: linkCapacity + 1)
            reallocate(&selected, capacity: linkCapacity + 1)
            reallocate(&linkCopy, capacity: linkCapacity + 1)
            reallocate(&pending, capacity: linkCapacity + 1)
            reallocate(&scores, capacity: linkCapacity + 1)
        }
        if dimension > queryCapacity {
            reallocate(&query, capacity: dimension)
            queryCapacity = dimension
        }
    }

    /// The start of every graph search: checks `query` and `k` against an index of `count` slots of
    /// `dimension` (throwing `IndexError`), grows this context for a list of `max(ef ?? efSearch, k)`,
    /// and returns the query to search (normalized into `query` when `metric` normalizes) with that
    /// list size; nil when there is nothing to find (k == 0 or an empty index).
    func begin(_ query: UnsafeBufferPointer<Float>, k: Int, ef: Int?, efSearch: Int, dimension: Int, metric: Metric,
               count: Int, m0: Int) throws -> (query: UnsafePointer<Float>, ef: Int)? {
        guard query.count == dimension else {
            throw IndexError(.dimensionMismatch, "a query of \(query.count) components in a \(dimension)-d index")
        }
        guard k >= 0 else { throw IndexError(.invalidParameter, "k must not be negative, got \(k)") }
        guard k > 0, count > 0 else { return nil }
        let ef = max(ef ?? efSearch, k)
        prepare(nodes: count, dimension: dimension, m0: m0, ef: ef)
        guard metric.normalizes else { return (query.baseAddress!, ef) }
        self.query.update(from: query.baseAddress!, count: dimension)
        DistanceKernels.normalize(self.query, dimension)
        return (UnsafePointer(self.query), ef)
    }

    /// A fresh visited-set tag.
    @inline(__always)
    func nextGeneration() -> UInt16 {
        if generation == UInt16.max {
            visited.update(repeating: 0, count: visitedCapacity)
            generation = 0
        }
        generation &+= 1
        return generation
    }
}

/// A candidate packed into one integer so that heaps compare integers: the high 32 bits are the distance
/// mapped to an order-preserving unsigned integer, the low 32 bits the slot. Comparing keys orders by
/// distance, then slot (so results are deterministic on ties).
enum HNSWKey {
    @inline(__always)
    static func make(_ distance: Float, _ slot: UInt32) -> UInt64 {
        let b = distance.bitPattern
        // Negative floats: flip all bits (larger magnitude = smaller); positive: set the sign bit.
        let ordered = (b & 0x8000_0000) != 0 ? ~b : b | 0x8000_0000
        return UInt64(ordered) << 32 | UInt64(slot)
    }

    @inline(__always)
    static func slot(_ key: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: key) }

    @inline(__always)
    static func distance(_ key: UInt64) -> Float {
        let o = UInt32(truncatingIfNeeded: key >> 32)
        return Float(bitPattern: (o & 0x8000_0000) != 0 ? o & 0x7FFF_FFFF : ~o)
    }
}

/// A binary min-heap of `UInt64` over a manually managed buffer (no Array, so no CoW or ARC in the
/// search loop). The owner copies it into a local, works on the copy and stores it back.
struct KeyHeap {
    var base: UnsafeMutablePointer<UInt64>
    var count = 0
    var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    mutating func reserve(_ n: Int) {
        if n > capacity { grow(to: n) }
    }

    @inline(never)
    mutating func grow(to n: Int) {
        let cap = max(n, capacity * 2)
        let nb = UnsafeMutablePointer<UInt64>.allocate(capacity: cap)
        nb.update(from: base, count: count)
        base.deallocate()
        base = nb
        capacity = cap
    }

    @inline(__always) var min: UInt64 { base[0] }

    @inline(__always)
    mutating func push(_ key: UInt64) {
        if count == capacity { grow(to: count + 1) }
        var i = count
        count &+= 1
        while i > 0 {
            let parent = (i &- 1) >> 1
            let p = base[parent]
            if p <= key { break }
            base[i] = p
            i = parent
        }
        base[i] = key
    }

    /// Removes and returns the minimum; the heap must not be empty.
    @inline(__always)
    mutating func popMin() -> UInt64 {
        let top = base[0]
        count &-= 1
        if count > 0 { siftDown(base[count]) }
        return top
    }

    /// Replaces the minimum by `key` (pop then push, in one pass).
    @inline(__always)
    mutating func replaceMin(_ key: UInt64) { siftDown(key) }

    @inline(__always)
    mutating func siftDown(_ key: UInt64) {
        var i = 0
        let n = count
        while true {
            var c = 2 &* i &+ 1
            if c >= n { break }
            if c &+ 1 < n && base[c &+ 1] < base[c] { c &+= 1 }
            if key <= base[c] { break }
            base[i] = base[c]
            i = c
        }
        base[i] = key
    }
}
