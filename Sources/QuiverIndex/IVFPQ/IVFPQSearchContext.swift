import QuiverCore

/// Per-thread scratch memory of IVF-PQ searches: the normalized query, coarse scores and probe order,
/// the query's distance tables, the candidate heap and the re-ranking buffers. A search takes it by
/// reference and allocates nothing in its scan once the buffers have grown to the index's sizes.
///
/// Thread-safety: one context must be used by one thread at a time; it may move between threads and
/// between indexes (it grows to the largest index it has served).
public final class IVFPQSearchContext: @unchecked Sendable {
    /// The query (d floats), normalized for cosine; `residual` (d) is q - centroid (L2 without
    /// precomputed tables).
    var query: UnsafeMutablePointer<Float>
    var residual: UnsafeMutablePointer<Float>
    /// With an OPQ rotation: the query rotated (q R), from which the PQ tables are built.
    var rotatedQuery: UnsafeMutablePointer<Float>
    var dimensionCapacity = 0
    /// Per list: the probing key (smaller = probe first) and the ADC base term; `probes`: lists in
    /// probing order (the first entries sorted, see `IVFPQIndex.selectProbes`).
    var coarseKey: UnsafeMutablePointer<Float>
    var coarseBase: UnsafeMutablePointer<Float>
    var probes: UnsafeMutablePointer<Int32>
    var listCapacity = 0
    /// Query table (m * 256): <q_j, c> (L2 and cosine with precomputed tables) or -<q_j, c> (dot);
    /// `listTable` (m * 256): the table of the list being scanned (L2 only).
    var queryTable: UnsafeMutablePointer<Float>
    var listTable: UnsafeMutablePointer<Float>
    var tableCapacity = 0
    var heap = CandidateHeap()
    var exact = CandidateHeap()
    /// Re-ranking batch: ids, their vectors (batch * d floats) and whether the source found each.
    var rerankIds: [Int64] = []
    var rerankVectors: [Float] = []
    var rerankFound: [Bool] = []
    /// Re-ranking batch on a zero-copy source: a pointer per id (nil = unknown id).
    var rerankRows: UnsafeMutablePointer<UnsafePointer<Float>?>
    var rerankRowsCapacity = 0
    /// Norms of the re-ranking batch (cosine, zero-copy source).
    var rerankNorms: UnsafeMutablePointer<Float>

    /// An empty context; it grows on first use.
    public init() {
        query = .allocate(capacity: 1)
        residual = .allocate(capacity: 1)
        rotatedQuery = .allocate(capacity: 1)
        coarseKey = .allocate(capacity: 1)
        coarseBase = .allocate(capacity: 1)
        probes = .allocate(capacity: 1)
        queryTable = .allocate(capacity: 1)
        listTable = .allocate(capacity: 1)
        rerankRows = .allocate(capacity: 1)
        rerankNorms = .allocate(capacity: 1)
    }

    deinit {
        query.deallocate(); residual.deallocate(); rotatedQuery.deallocate()
        coarseKey.deallocate(); coarseBase.deallocate(); probes.deallocate()
        queryTable.deallocate(); listTable.deallocate()
        heap.deallocate(); exact.deallocate()
        rerankRows.deallocate(); rerankNorms.deallocate()
    }

    /// Grows the buffers for an index of these sizes; allocates only when a size grows.
    func prepare(dimension d: Int, nlist: Int, subspaces m: Int, candidates: Int, k: Int, rerankBatch: Int) {
        if dimensionCapacity < d {
            reallocate(&query, capacity: d)
            reallocate(&residual, capacity: d)
            reallocate(&rotatedQuery, capacity: d)
            dimensionCapacity = d
        }
        if listCapacity < nlist {
            reallocate(&coarseKey, capacity: nlist)
            reallocate(&coarseBase, capacity: nlist)
            reallocate(&probes, capacity: nlist)
            listCapacity = nlist
        }
        if tableCapacity < m * 256 {
            reallocate(&queryTable, capacity: m * 256)
            reallocate(&listTable, capacity: m * 256)
            tableCapacity = m * 256
        }
        heap.reset(capacity: candidates)
        exact.reset(capacity: k)
        if rerankIds.count < rerankBatch {
            rerankIds = [Int64](repeating: 0, count: rerankBatch)
            rerankFound = [Bool](repeating: false, count: rerankBatch)
        }
        if rerankRowsCapacity < rerankBatch {
            reallocate(&rerankRows, capacity: rerankBatch)
            reallocate(&rerankNorms, capacity: rerankBatch)
            rerankRowsCapacity = rerankBatch
        }
        if rerankVectors.count < rerankBatch * d { rerankVectors = [Float](repeating: 0, count: rerankBatch * d) }
    }
}

/// A bounded max-heap of (distance, id) keeping the `capacity` smallest; ties are broken by id (smaller
/// id is closer), as `TopK` does, so results are deterministic across index kinds.
///
/// Storage is two raw buffers owned by the enclosing `IVFPQSearchContext` (which calls `deallocate`), so
/// copying the struct costs no reference counting in the scan loop, where it is read per candidate.
struct CandidateHeap {
    private(set) var distances: UnsafeMutablePointer<Float>
    private(set) var ids: UnsafeMutablePointer<Int64>
    private(set) var count = 0
    private(set) var capacity = 0
    private var allocated = 0

    init() {
        distances = .allocate(capacity: 1)
        ids = .allocate(capacity: 1)
    }

    func deallocate() {
        distances.deallocate()
        ids.deallocate()
    }

    mutating func reset(capacity c: Int) {
        if allocated < c {
            deallocate()
            distances = .allocate(capacity: c)
            ids = .allocate(capacity: c)
            allocated = c
        }
        capacity = c
        count = 0
    }

    /// A candidate must be at most this far to enter (ties then compare ids in `admits`).
    @inline(__always)
    var threshold: Float { count < capacity ? .infinity : distances[0] }

    @inline(__always)
    static func worse(_ da: Float, _ ia: Int64, _ db: Float, _ ib: Int64) -> Bool {
        da > db || (da == db && ia > ib)
    }

    /// Whether (d, id) would enter: the heap is not full or it beats the worst kept.
    @inline(__always)
    func admits(_ d: Float, _ id: Int64) -> Bool {
        count < capacity || (capacity > 0 && Self.worse(distances[0], ids[0], d, id))
    }

    @inline(__always)
    mutating func push(_ d: Float, _ id: Int64) {
        if count < capacity {
            var child = count
            count += 1
            while child > 0 {
                let parent = (child - 1) >> 1
                if Self.worse(d, id, distances[parent], ids[parent]) {
                    distances[child] = distances[parent]; ids[child] = ids[parent]
                    child = parent
                } else { break }
            }
            distances[child] = d; ids[child] = id
        } else if admits(d, id) {
            siftDownFromRoot(d, id)
        }
    }

    /// Replaces the root by (d, id) and restores the heap over `count` entries.
    private func siftDownFromRoot(_ d: Float, _ id: Int64) {
        let n = count
        var parent = 0
        while true {
            let l = 2 * parent + 1
            if l >= n { break }
            var w = l
            if l + 1 < n && Self.worse(distances[l + 1], ids[l + 1], distances[l], ids[l]) { w = l + 1 }
            if Self.worse(distances[w], ids[w], d, id) {
                distances[parent] = distances[w]; ids[parent] = ids[w]
                parent = w
            } else { break }
        }
        distances[parent] = d; ids[parent] = id
    }

    /// Empties the heap as it stands (heap order): afterwards `distances[0..<n]`, `ids[0..<n]` hold the
    /// entries unsorted, where n is the returned former count; the heap is then empty.
    mutating func drainUnsorted() -> Int {
        defer { count = 0 }
        return count
    }

    /// Empties the heap into ascending order in place: afterwards `distances[0..<n]`, `ids[0..<n]` are
    /// sorted closest first, where n is the returned former count; the heap is then empty.
    mutating func drainSorted() -> Int {
        let n = count
        var end = n
        while end > 1 {
            let d = distances[0], id = ids[0]
            end -= 1
            let ld = distances[end], lid = ids[end]
            count = end
            siftDownFromRoot(ld, lid)
            distances[end] = d
            ids[end] = id
        }
        count = 0
        return n
    }
}
