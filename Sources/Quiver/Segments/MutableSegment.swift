import QuiverCore
import QuiverIndex

/// The mutable segment of a collection (and, while a seal runs, the frozen one): the rows written
/// since the last seal, held exactly in a `FlatIndex` (`rows`: what the exact search, a thaw and the
/// `flat` kind read), and, under every kind that seals (hnsw, ivfpq, auto), an HNSW graph over the
/// same rows once they number `graphThreshold`, so that a collection with a full mutable segment
/// (the normal state after writes) searches about as fast as a compacted one.
///
/// The graph is derived, like the rows: built from them when the segment reaches `graphThreshold`
/// rows (at once, on both cores, also when the segment is rebuilt at open from LMDB), then extended
/// by every committed write under the segment's write lock (read-your-writes as before), with
/// deletes tombstoned in it. Nothing of it is written to disk; a seal still builds the sealed
/// segment from the rows' vectors in LMDB.
///
/// A search walks the graph (with the caller's `efSearch`) unless the list it would keep is as long
/// as the segment's live rows; then, and below `graphThreshold`, it scans the rows exactly. So a
/// search asked for every candidate (the oracle tests' huge efSearch) stays exact.
///
/// Thread-safety: as `VectorIndex` (searches concurrent; `add`, `markDeleted` exclusive, which the
/// owning `CollectionSegments`' lock enforces).
final class MutableSegment: VectorIndex, @unchecked Sendable {
    /// Rows from which a segment keeps a graph: below this a scan costs about what a graph walk does.
    static let graphThreshold = 1_024

    /// The rows, exactly (normalized for cosine).
    let rows: FlatIndex
    /// The graph over `rows` (nil below `graphThreshold` rows, and under the `flat` kind).
    private(set) var graph: HNSWIndex?
    /// The graph's build parameters; nil: this segment never keeps a graph.
    private let graphParameters: HNSWParameters?
    /// The capacity reserved when the graph is first built (the seal size).
    private let expectedRows: Int

    var dimension: Int { rows.dimension }
    var metric: Metric { rows.metric }
    var count: Int { rows.count }
    var liveCount: Int { rows.liveCount }
    var deletedCount: Int { rows.deletedCount }
    var memoryBytes: Int { rows.memoryBytes + (graph?.memoryBytes ?? 0) }

    /// An empty segment for a collection of `settings`.
    convenience init(dimension: Int, metric: Metric, settings: IndexSettings) throws {
        let indexed = settings.kind != .flat
        self.init(rows: try FlatIndex(dimension: dimension, metric: metric), graph: nil,
                  graphParameters: indexed ? HNSWParameters(m: settings.m, efConstruction: settings.efConstruction, efSearch: settings.efSearch) : nil,
                  expectedRows: settings.segmentSize)
    }

    private init(rows: FlatIndex, graph: HNSWIndex?, graphParameters: HNSWParameters?, expectedRows: Int) {
        self.rows = rows
        self.graph = graph
        self.graphParameters = graphParameters
        self.expectedRows = expectedRows
    }

    /// An empty segment of the same shape and graph parameters.
    private func empty() throws -> MutableSegment {
        MutableSegment(rows: try FlatIndex(dimension: dimension, metric: metric), graph: nil, graphParameters: graphParameters, expectedRows: expectedRows)
    }

    func add(_ vectors: Matrix, ids: [Int64]) throws {
        try rows.add(vectors, ids: ids)
        // The rows took the batch, so the graph (same checks) takes it too.
        if let graph { try graph.add(vectors, ids: ids) } else { try buildGraphIfDue() }
    }

    /// Builds the graph over the live rows once there are enough of them.
    private func buildGraphIfDue() throws {
        guard graph == nil, let p = graphParameters, rows.liveCount >= Self.graphThreshold else { return }
        let (vectors, ids) = live()
        let g = try HNSWIndex(dimension: dimension, metric: metric, parameters: p)
        g.reserveCapacity(max(expectedRows, ids.count))
        try g.add(vectors, ids: ids)
        graph = g
    }

    /// The live rows' stored vectors and ids, in insertion order.
    private func live() -> (Matrix, [Int64]) {
        var storage: [Float] = []
        storage.reserveCapacity(rows.liveCount * dimension)
        var ids: [Int64] = []
        ids.reserveCapacity(rows.liveCount)
        rows.forEachStoredVector { id, deleted, v in
            guard !deleted else { return }
            ids.append(id)
            storage.append(contentsOf: v)
        }
        return (Matrix(dimension: dimension, storage: storage), ids)
    }

    /// Whether a search with list size `ef` for `k` walks the graph rather than scanning the rows.
    private func walks(ef: Int?, k: Int) -> HNSWIndex? {
        guard let graph, max(ef ?? graph.efSearch, k) < rows.liveCount else { return nil }
        return graph
    }

    func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        if let g = walks(ef: parameters.efSearch, k: k) { return try g.search(query, k: k, parameters: parameters) }
        return try rows.search(query, k: k, parameters: parameters)
    }

    func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]] {
        if let g = walks(ef: parameters.efSearch, k: k) { return try g.search(queries, k: k, parameters: parameters) }
        return try rows.search(queries, k: k, parameters: parameters)
    }

    @discardableResult
    func markDeleted(_ id: Int64) -> Bool {
        guard rows.markDeleted(id) else { return false }
        graph?.markDeleted(id)
        return true
    }

    func contains(_ id: Int64) -> Bool { rows.contains(id) }

    func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows { try rows.forEachID(body) }

    func copy() -> MutableSegment {
        MutableSegment(rows: rows.copy(), graph: graph?.copy(), graphParameters: graphParameters, expectedRows: expectedRows)
    }

    /// A segment of this one's live rows only (their graph rebuilt when due): what the `flat`
    /// kind's compaction keeps.
    func withoutDeleted() throws -> MutableSegment {
        let out = try empty()
        try out.addLive(of: self)
        return out
    }

    /// Adds the live rows of `other` (a thaw puts the rows written since a freeze back after the
    /// frozen ones). Throws `IndexError` (and adds nothing) for an id already here.
    func addLive(of other: MutableSegment) throws {
        let (vectors, ids) = other.live()
        if !ids.isEmpty { try add(vectors, ids: ids) }
    }
}
