import QuiverCore

/// Range search: every live vector within a distance bound of a query (FAISS's `range_search`),
/// closest first, for every index kind.
///
/// An exact index scans and keeps what is inside the bound. An approximate one (HNSW, IVF-PQ) has
/// no native range walk, so the primitive widens a top-k search until the bound is passed: it
/// searches with k = `RangeSearch.initialK`, and while every hit is inside the bound (and the index
/// still had k hits to give) it doubles k, raising HNSW's candidate list to `RangeSearch.efFactor`
/// times k and IVF-PQ's re-ranking depth to k and its probed lists in proportion. Once the worst hit
/// falls outside the bound, the hits inside it are the answer: what a top-k search at that depth
/// finds of the bound, so its recall is that of the index at that depth (measured by
/// `tools/bench-range`).
///
/// Thread-safety: as `search` (concurrent with other searches).
public struct RangeSearchResult: Sendable, Equatable {
    /// The vectors within the bound, closest first, at most `limit` of them.
    public var neighbors: [Neighbor]
    /// Whether more than `limit` vectors are within the bound (then `neighbors` holds the closest
    /// `limit` the search found).
    public var truncated: Bool
    /// Top-k searches run (1 for an exact scan).
    public var rounds: Int

    public init(neighbors: [Neighbor], truncated: Bool, rounds: Int) {
        self.neighbors = neighbors
        self.truncated = truncated
        self.rounds = rounds
    }
}

/// The widening schedule of `VectorIndex.rangeSearch`.
public enum RangeSearch {
    /// The k of the first top-k search: most queries of a near-duplicate join have a handful of
    /// vectors in the bound, and one search at this depth settles them.
    public static let initialK = 16
    /// HNSW's candidate list is at least this many times k in a widening round: a list as long as k
    /// returns the k-th neighbour with a recall well under the first ones'.
    public static let efFactor = 2

    /// The parameters of the round searching at depth `k` (`round` 0 at `initialK`): `base` with
    /// efSearch at least `efFactor * k`, rerank at least k, and nprobe doubled each round.
    public static func parameters(_ base: SearchParameters, k: Int, round: Int) -> SearchParameters {
        var p = base
        p.efSearch = max(base.efSearch ?? 0, efFactor * k)
        if let r = base.rerank { p.rerank = max(r, k) }
        if let n = base.nprobe, round > 0 { p.nprobe = min(n, 1 << 30) << min(round, 20) }
        return p
    }

    /// The widening loop over any top-k `search`: the answer of `VectorIndex.rangeSearch` for
    /// approximate kinds. `live` bounds k (no round asks for more than every live vector).
    public static func widening(maxDistance: Float, limit: Int, live: Int, base: SearchParameters,
                                search: (_ k: Int, _ parameters: SearchParameters) throws -> [Neighbor]) throws -> RangeSearchResult {
        guard limit >= 0 else { throw IndexError(.invalidParameter, "the range limit must not be negative, got \(limit)") }
        guard !maxDistance.isNaN else { throw IndexError(.invalidParameter, "the range bound is NaN") }
        if limit == 0 || live == 0 { return RangeSearchResult(neighbors: [], truncated: false, rounds: 0) }
        // One more than `limit` tells whether the bound holds more than `limit`.
        let cap = min(limit + 1, live)
        var k = min(initialK, cap)
        var round = 0
        while true {
            let hits = try search(k, parameters(base, k: k, round: round))
            round += 1
            let inside = hits.prefix { $0.distance <= maxDistance }
            if inside.count < hits.count || hits.count < k || k == cap {
                let truncated = inside.count > limit
                return RangeSearchResult(neighbors: Array(inside.prefix(limit)), truncated: truncated, rounds: round)
            }
            k = min(k * 2, cap)
        }
    }
}

extension VectorIndex {
    /// The default `rangeSearch` (the protocol's requirement): the widening search of `RangeSearch`.
    public func rangeSearch(_ query: UnsafeBufferPointer<Float>, maxDistance: Float, limit: Int,
                            parameters: SearchParameters) throws -> RangeSearchResult {
        try RangeSearch.widening(maxDistance: maxDistance, limit: limit, live: liveCount, base: parameters) { k, p in
            try search(query, k: k, parameters: p)
        }
    }

    /// `rangeSearch` for one query held in an array.
    public func rangeSearch(_ query: [Float], maxDistance: Float, limit: Int, parameters: SearchParameters = SearchParameters()) throws -> RangeSearchResult {
        try query.withUnsafeBufferPointer { try rangeSearch($0, maxDistance: maxDistance, limit: limit, parameters: parameters) }
    }
}
