import QuiverCore

/// The interface every vector index of Quiver implements (FAISS's `Index` in Swift): batched over
/// row-major `Matrix` values, with ids chosen by the caller.
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
/// - Any number of `search` calls may run at the same time on one index.
/// - `add` and `markDeleted` are exclusive: the caller must not run them concurrently with each other
///   or with a search (the facade guards a mutable segment with a readers-writer lock; sealed segments
///   only take `markDeleted`, under the same rule).
public protocol VectorIndex: AnyObject, Sendable {
    /// Components per vector.
    var dimension: Int { get }
    /// How vectors are compared.
    var metric: Metric { get }
    /// Number of vectors stored, tombstoned ones included.
    var count: Int { get }
    /// Number of vectors stored and not tombstoned.
    var liveCount: Int { get }

    /// Adds `vectors.rows` vectors; row `i` gets `ids[i]`. Throws `IndexError` (and adds nothing) on a
    /// dimension mismatch, `ids.count != vectors.rows`, or an id already present or repeated in `ids`.
    /// Exclusive: see the protocol's thread-safety rules.
    func add(_ vectors: Matrix, ids: [Int64]) throws

    /// The `k` nearest live vectors to each row of `queries` (closest first), restricted to ids that
    /// `allow` admits. Returns `queries.rows` lists; a list is shorter than `k` only when fewer than `k`
    /// live vectors are allowed. Throws `IndexError` on a dimension mismatch or a negative `k`.
    /// Safe to call concurrently with other searches.
    func search(_ queries: Matrix, k: Int, allow: AllowFilter?) throws -> [[Neighbor]]

    /// The per-query form of `search` for the hot path: `query` must hold `dimension` floats.
    /// Safe to call concurrently with other searches.
    func search(_ query: UnsafeBufferPointer<Float>, k: Int, allow: AllowFilter?) throws -> [Neighbor]

    /// Tombstones `id`: search never returns it again, while graph indexes keep traversing its node.
    /// Returns false when `id` is not in the index or already tombstoned. Exclusive.
    @discardableResult
    func markDeleted(_ id: Int64) -> Bool

    /// Whether `id` is stored and not tombstoned. Safe to call concurrently with searches.
    func contains(_ id: Int64) -> Bool
}

extension VectorIndex {
    /// Convenience for one query held in an array.
    public func search(_ query: [Float], k: Int, allow: AllowFilter? = nil) throws -> [Neighbor] {
        try query.withUnsafeBufferPointer { try search($0, k: k, allow: allow) }
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
