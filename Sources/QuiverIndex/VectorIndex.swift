import QuiverCore

/// The interface every vector index of Quiver implements (FAISS's `Index` in Swift): batched over
/// row-major `Matrix` values, with ids chosen by the caller, and one `SearchParameters` value per call
/// (FAISS's `SearchParameters`, with the allow-filter as its `IDSelector`) of which each kind reads its
/// own fields. So a caller holding indexes of several kinds (the segments of a collection: HNSW, IVF-PQ,
/// flat) calls every one the same way.
///
/// ## Ids
/// An index stores each vector under an `Int64` id given by the caller (the facade's row id inside a
/// segment). Ids are unique within one index. Results, tombstones and allow-filters all speak in these ids.
///
/// ## Distances
/// `Neighbor.distance` is the metric's internal distance (smaller is closer; see `Metric`). For
/// `.cosine` the index normalizes stored vectors and queries itself.
///
/// ## Thread-safety (every conforming type)
/// - Any number of `search` calls, `contains`, `forEachID`, `copy` and the counts may run at the same
///   time on one index.
/// - `add` and `markDeleted` are exclusive: the caller must not run them concurrently with each other
///   or with any other call (the facade guards a mutable segment with a readers-writer lock; sealed
///   segments only take `markDeleted`, under the same rule).
public protocol VectorIndex: AnyObject, Sendable {
    /// Components per vector.
    var dimension: Int { get }
    /// How vectors are compared.
    var metric: Metric { get }
    /// Number of vectors stored, tombstoned ones included.
    var count: Int { get }
    /// Number of vectors stored and not tombstoned.
    var liveCount: Int { get }
    /// Number of tombstoned vectors (`count - liveCount`).
    var deletedCount: Int { get }
    /// Bytes of memory the index holds (for an index used in place over a mapped file, the mapped
    /// bytes it reads): what `stats` reports as resident.
    var memoryBytes: Int { get }

    /// Adds `vectors.rows` vectors; row `i` gets `ids[i]`. Throws `IndexError` (and adds nothing) on a
    /// dimension mismatch, `ids.count != vectors.rows`, or an id already present or repeated in `ids`.
    /// Exclusive: see the protocol's thread-safety rules.
    func add(_ vectors: Matrix, ids: [Int64]) throws

    /// The `k` nearest live vectors to each row of `queries` (closest first), restricted to ids that
    /// `parameters.allow` admits, tuned by the fields of `parameters` this kind reads. Returns
    /// `queries.rows` lists; a list is shorter than `k` only when fewer than `k` live vectors are
    /// allowed. Throws `IndexError` on a dimension mismatch, a negative `k` or a parameter outside its
    /// range. Safe to call concurrently with other searches.
    func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]]

    /// The single-query form of `search`, for the hot path (no batch to set up): `query` must hold
    /// `dimension` floats. Returns what the batched form returns for that row.
    /// Safe to call concurrently with other searches.
    func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor]

    /// Every live vector within `maxDistance` (the metric's internal distance, see `Metric`) of
    /// `query`, closest first, restricted to ids `parameters.allow` admits, at most `limit` of them
    /// (`truncated` says whether there were more). Exact kinds scan; approximate ones widen a top-k
    /// search until the bound is passed (the default, see `RangeSearch`). Throws `IndexError` on a
    /// dimension mismatch, a negative limit, a NaN bound or a parameter outside its range.
    /// Safe to call concurrently with other searches.
    func rangeSearch(_ query: UnsafeBufferPointer<Float>, maxDistance: Float, limit: Int,
                     parameters: SearchParameters) throws -> RangeSearchResult

    /// Tombstones `id`: search never returns it again, while graph indexes keep traversing its node.
    /// Returns false when `id` is not in the index or already tombstoned. Exclusive.
    @discardableResult
    func markDeleted(_ id: Int64) -> Bool

    /// Whether `id` is stored and not tombstoned. Safe to call concurrently with searches.
    func contains(_ id: Int64) -> Bool

    /// Calls `body` with every stored id and whether it is tombstoned (in an order of the kind's
    /// choosing). Safe concurrently with searches, not with `add` or `markDeleted`.
    func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows

    /// An independent index holding the same vectors, ids, tombstones and search defaults, in memory
    /// of its own (an index used in place over a mapped file is copied out of it): a bulk copy of
    /// the stored arrays, no encoding, no re-training, no re-linking. What a merge adds to. Safe
    /// concurrently with searches, not with `add` or `markDeleted`.
    func copy() -> Self
}

extension VectorIndex {
    /// Searches with no parameter but an allow-filter (every kind's defaults).
    public func search(_ queries: Matrix, k: Int, allow: AllowFilter?) throws -> [[Neighbor]] {
        try search(queries, k: k, parameters: SearchParameters(allow: allow))
    }

    /// The single-query form of `search(_:k:allow:)`.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, allow: AllowFilter?) throws -> [Neighbor] {
        try search(query, k: k, parameters: SearchParameters(allow: allow))
    }

    /// Convenience for one query held in an array.
    public func search(_ query: [Float], k: Int, allow: AllowFilter? = nil) throws -> [Neighbor] {
        try query.withUnsafeBufferPointer { try search($0, k: k, parameters: SearchParameters(allow: allow)) }
    }

    /// The ids stored and not tombstoned, in `forEachID`'s order.
    public var liveIDs: [Int64] {
        var out: [Int64] = []
        out.reserveCapacity(liveCount)
        forEachID { id, deleted in if !deleted { out.append(id) } }
        return out
    }
}

/// The id check of `add` for a kind that keeps no id map while the ids are exactly the insertion
/// order (0..<count): whether the new `ids` keep it so (`dense`: the index is dense now, its `count`
/// vectors), else throws `IndexError(.duplicateId)` for an id already `stored` or repeated in `ids`.
func continuesDenseIDs(_ ids: [Int64], dense: Bool, count: Int, stored: (Int64) -> Bool) throws -> Bool {
    if dense && ids.enumerated().allSatisfy({ $0.element == Int64(count + $0.offset) }) { return true }
    var seen = Set<Int64>(minimumCapacity: ids.count)
    for id in ids where stored(id) || !seen.insert(id).inserted {
        throw IndexError(.duplicateId, "id \(id) is already in the index or repeated in the batch")
    }
    return false
}

/// How one search runs: which ids it may return, and the knobs of each index kind (FAISS's
/// `SearchParameters` and its per-kind subclasses in one value). A kind reads its own fields and
/// ignores the others'; a field left nil takes the index's default. A Sendable value.
public struct SearchParameters: Sendable {
    /// Which ids may be returned (FAISS's `IDSelector`); nil allows every live id.
    public var allow: AllowFilter?
    /// HNSW: the candidate list size (raised to k); nil: the index's `efSearch`.
    public var efSearch: Int?
    /// IVF-PQ: lists probed (at least 1; more than the index's lists probes them all); nil: the
    /// index's `nprobe`.
    public var nprobe: Int?
    /// IVF-PQ: candidates re-ranked with full vectors (0: none; at least k when positive); nil: the
    /// index's `rerank`.
    public var rerank: Int?
    /// IVF-PQ, with an `allow` filter: the share (0...1) of the vectors it allows, which widens the
    /// probes (`probes(nlist:default:)`); nil leaves `nprobe` as it is.
    public var allowedShare: Double?

    public init(allow: AllowFilter? = nil, efSearch: Int? = nil, nprobe: Int? = nil, rerank: Int? = nil,
                allowedShare: Double? = nil) {
        self.allow = allow
        self.efSearch = efSearch
        self.nprobe = nprobe
        self.rerank = rerank
        self.allowedShare = allowedShare
    }

    /// IVF-PQ lists to probe in an index of `nlist` lists whose own default is `defaultProbes`:
    /// `nprobe`, divided by `allowedShare` when set, so that the probed lists hold about as many
    /// allowed vectors as an unfiltered search scores; at least 1, at most nlist.
    public func probes(nlist: Int, default defaultProbes: Int) -> Int {
        var p = Double(nprobe ?? defaultProbes)
        if let share = allowedShare { p /= max(share, 1 / Double(max(nlist, 1))) }
        return max(1, min(nlist, Int(p.rounded(.up))))
    }

    /// Throws `IndexError(.invalidParameter)` for a field outside its range.
    func validate() throws {
        if let e = efSearch, e < 1 { throw IndexError(.invalidParameter, "efSearch must be at least 1, got \(e)") }
        if let p = nprobe, p < 1 { throw IndexError(.invalidParameter, "nprobe must be at least 1, got \(p)") }
        if let r = rerank, r < 0 { throw IndexError(.invalidParameter, "rerank must not be negative, got \(r)") }
    }
}

/// Which ids a search may return: the planner's answer to a metadata filter.
///
/// A `bitset` is the fast form (bit `id` set = allowed; ids outside its capacity are not allowed) and
/// tells the index how many ids are allowed, which lets it pick an exact scan over the allowed set when
/// the filter is selective. A `predicate` is called once per candidate that would enter the result.
/// Tombstoned vectors are never returned, whatever the filter says.
/// Thread-safety: a Sendable value; a predicate must be safe to call from several searching threads.
public enum AllowFilter: Sendable {
    case bitset(Bitset)
    case predicate(@Sendable (Int64) -> Bool)

    /// Whether `id` passes the filter.
    @inlinable
    public func allows(_ id: Int64) -> Bool {
        switch self {
        case .bitset(let b): return b.contains(Int(truncatingIfNeeded: id))
        case .predicate(let p): return p(id)
        }
    }
}

/// The one error type of QuiverIndex: what failed, and where (a byte offset for codec input).
/// A Sendable value.
public struct IndexError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A vector or query whose length is not the index's dimension.
        case dimensionMismatch
        /// `ids.count` differs from the number of vectors.
        case idCountMismatch
        /// An id already stored, or repeated in one call.
        case duplicateId
        /// A parameter outside its documented range (k < 0, M < 2, ...).
        case invalidParameter
        /// More vectors than an index can address (2^32 - 2 per HNSW index).
        case capacityExceeded
        /// Serialized input that is damaged, truncated or inconsistent.
        case corrupt
        /// Serialized input of a format version this build does not read.
        case unsupportedVersion
    }

    public let code: Code
    public let message: String
    /// For codec errors: the byte offset where the problem was found.
    public let offset: Int?

    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String {
        offset.map { "\(code.rawValue): \(message) (at byte \($0))" } ?? "\(code.rawValue): \(message)"
    }
}
