import Dispatch
import QuiverCore

/// Exact search by a full scan: the oracle that `HNSWIndex` is tested against, and the index the
/// planner uses for tiny or very selectively filtered sets.
///
/// Thread-safety: as `VectorIndex` states: concurrent searches are safe; `add` and `markDeleted`
/// are exclusive.
public final class FlatIndex: VectorIndex, @unchecked Sendable {
    public let dimension: Int
    public let metric: Metric
    // Row-major, `count * dimension` floats; normalized when the metric is cosine.
    private var vectors: [Float] = []
    private var ids: [Int64] = []
    private var deleted: [Bool] = []
    private var slotOf: [Int64: Int] = [:]
    public private(set) var deletedCount = 0

    /// An empty index of `dimension`-component vectors (`dimension > 0`).
    public convenience init(dimension: Int, metric: Metric) throws {
        guard dimension > 0 else { throw IndexError(.invalidParameter, "dimension must be positive, got \(dimension)") }
        self.init(validDimension: dimension, metric: metric)
    }

    /// An empty index of a dimension already checked (a copy's).
    private init(validDimension dimension: Int, metric: Metric) {
        self.dimension = dimension
        self.metric = metric
    }

    public var count: Int { ids.count }
    public var liveCount: Int { ids.count - deletedCount }

    public func add(_ batch: Matrix, ids newIds: [Int64]) throws {
        guard batch.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "vectors of \(batch.dimension) components in a \(dimension)-d index")
        }
        guard newIds.count == batch.rows else {
            throw IndexError(.idCountMismatch, "\(newIds.count) ids for \(batch.rows) vectors")
        }
        var seen = Set<Int64>(minimumCapacity: newIds.count)
        for id in newIds where slotOf[id] != nil || !seen.insert(id).inserted {
            throw IndexError(.duplicateId, "id \(id) is already in the index or repeated in the batch")
        }
        let start = vectors.count
        vectors.append(contentsOf: batch.storage)
        if metric.normalizes {
            let d = dimension
            vectors.withUnsafeMutableBufferPointer { p in
                for r in 0..<batch.rows { DistanceKernels.normalize(p.baseAddress! + start + r * d, d) }
            }
        }
        for id in newIds {
            slotOf[id] = ids.count
            ids.append(id)
            deleted.append(false)
        }
    }

    @discardableResult
    public func markDeleted(_ id: Int64) -> Bool {
        guard let s = slotOf[id], !deleted[s] else { return false }
        deleted[s] = true
        deletedCount += 1
        return true
    }

    public func contains(_ id: Int64) -> Bool {
        guard let s = slotOf[id] else { return false }
        return !deleted[s]
    }

    /// Resident bytes: the vectors, ids, tombstones and the id map.
    public var memoryBytes: Int { vectors.count * 4 + ids.count * 25 }

    /// An index holding the same rows (the arrays are shared until either side changes).
    public func copy() -> FlatIndex {
        let c = FlatIndex(validDimension: dimension, metric: metric)
        c.vectors = vectors
        c.ids = ids
        c.deleted = deleted
        c.slotOf = slotOf
        c.deletedCount = deletedCount
        return c
    }

    /// An index of this one's live rows only, in insertion order, their stored vectors copied as
    /// they are (no re-normalization): what a rewrite without the deleted rows keeps.
    public func withoutDeleted() -> FlatIndex {
        let c = FlatIndex(validDimension: dimension, metric: metric)
        c.vectors.reserveCapacity(liveCount * dimension)
        c.ids.reserveCapacity(liveCount)
        for (slot, id) in ids.enumerated() where !deleted[slot] {
            c.slotOf[id] = c.ids.count
            c.ids.append(id)
            c.vectors.append(contentsOf: vectors[slot * dimension ..< (slot + 1) * dimension])
        }
        c.deleted = [Bool](repeating: false, count: c.ids.count)
        return c
    }

    /// Adds the live rows of `other` (of this index's dimension and metric), their stored vectors
    /// copied as they are. Throws `IndexError` (and adds nothing) on another shape or an id already
    /// here. Exclusive.
    public func addLive(of other: FlatIndex) throws {
        guard other.dimension == dimension, other.metric == metric else {
            throw IndexError(.dimensionMismatch, "a \(other.dimension)-d \(other.metric.rawValue) index added to a \(dimension)-d \(metric.rawValue) one")
        }
        let rows = other.withoutDeleted()
        if let id = rows.ids.first(where: { slotOf[$0] != nil }) {
            throw IndexError(.duplicateId, "id \(id) is already in the index")
        }
        for id in rows.ids { slotOf[id] = ids.count; ids.append(id) }
        vectors.append(contentsOf: rows.vectors)
        deleted.append(contentsOf: rows.deleted)
    }

    /// Calls `body` with every id, whether it is tombstoned and its stored vector (L2-normalized for
    /// cosine, as searches compare it), in insertion order: what an index built over the same rows
    /// reads. Safe concurrently with searches, not with `add` or `markDeleted`.
    public func forEachStoredVector(_ body: (_ id: Int64, _ deleted: Bool, _ vector: UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        try vectors.withUnsafeBufferPointer { v in
            for (slot, id) in ids.enumerated() {
                try body(id, deleted[slot], UnsafeBufferPointer(start: v.baseAddress! + slot * dimension, count: dimension))
            }
        }
    }

    /// Calls `body` with every id and whether it is tombstoned, in insertion order.
    public func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        for (slot, id) in ids.enumerated() { try body(id, deleted[slot]) }
    }

    /// An exact scan; of `parameters` only `allow` applies (the other fields are validated, then ignored).
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        guard query.count == dimension else {
            throw IndexError(.dimensionMismatch, "a query of \(query.count) components in a \(dimension)-d index")
        }
        guard k >= 0 else { throw IndexError(.invalidParameter, "k must not be negative, got \(k)") }
        try parameters.validate()
        return scan(query.baseAddress!, k: k, allow: parameters.allow)
    }

    public func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]] {
        try parameters.validate()
        return try searchEachRow(queries, k: k) { scan($0.baseAddress!, k: k, allow: parameters.allow) }
    }

    private func scan(_ rawQuery: UnsafePointer<Float>, k: Int, allow: AllowFilter?) -> [Neighbor] {
        var top = TopK(k: k)
        forEachDistance(rawQuery, allow: allow) { top.push(id: $0, distance: $1) }
        return top.sorted()
    }

    /// The exact range search: a scan keeping every live allowed vector within the bound.
    public func rangeSearch(_ query: UnsafeBufferPointer<Float>, maxDistance: Float, limit: Int,
                            parameters: SearchParameters) throws -> RangeSearchResult {
        guard query.count == dimension else {
            throw IndexError(.dimensionMismatch, "a query of \(query.count) components in a \(dimension)-d index")
        }
        guard limit >= 0 else { throw IndexError(.invalidParameter, "the range limit must not be negative, got \(limit)") }
        guard !maxDistance.isNaN else { throw IndexError(.invalidParameter, "the range bound is NaN") }
        try parameters.validate()
        var inside: [Neighbor] = []
        forEachDistance(query.baseAddress!, allow: parameters.allow) { id, distance in
            if distance <= maxDistance { inside.append(Neighbor(id: id, distance: distance)) }
        }
        inside.sort { ($0.distance, $0.id) < ($1.distance, $1.id) }
        return RangeSearchResult(neighbors: Array(inside.prefix(limit)), truncated: inside.count > limit, rounds: 1)
    }

    /// Calls `body` with the id and distance to `rawQuery` of every live vector `allow` admits.
    private func forEachDistance(_ rawQuery: UnsafePointer<Float>, allow: AllowFilter?, _ body: (Int64, Float) -> Void) {
        let d = dimension
        var normalized = [Float]()
        var query = rawQuery
        if metric.normalizes {
            normalized = Array(UnsafeBufferPointer(start: rawQuery, count: d)).normalized()
        }
        normalized.withUnsafeBufferPointer { nq in
            if metric.normalizes { query = nq.baseAddress! }
            vectors.withUnsafeBufferPointer { v in
                for s in 0..<ids.count where !deleted[s] {
                    if let allow, !allow.allows(ids[s]) { continue }
                    body(ids[s], metric.distance(query, v.baseAddress! + s * d, dimension: d))
                }
            }
        }
    }
}
