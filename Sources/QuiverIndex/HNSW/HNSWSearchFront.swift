import QuiverCore

/// What the float32 and sq8 HNSW indexes do alike before their walks: check the query and `k`,
/// grow the context, normalize a cosine query, and turn the metric into the distance type that the
/// rest of the search is specialized for (the one switch on the metric of a search).
protocol HNSWSearchFront: AnyObject {
    associatedtype SearchContext
    var dimension: Int { get }
    var metric: Metric { get }
    var efSearch: Int { get }
    var count: Int { get }
    var m0: Int { get }
    /// The HNSW scratch (visited set, heaps) of `context`.
    func graphScratch(_ context: SearchContext) -> HNSWSearchContext
    /// The search proper, with the query `q` checked (and normalized for cosine) and the final list size.
    func search<D: HNSWDistance>(_: D.Type, _ q: UnsafePointer<Float>, k: Int, ef: Int, allow: AllowFilter?,
                                 context: SearchContext) -> [Neighbor]
}

extension HNSWSearchFront {
    /// The `k` nearest live, allowed vectors to `query`, with a list of `max(ef ?? efSearch, k)`:
    /// nothing for `k == 0` or an empty index; `IndexError` for a query of the wrong dimension or a
    /// negative `k`.
    @inline(__always)
    func searchChecked(_ query: UnsafeBufferPointer<Float>, k: Int, ef: Int?, allow: AllowFilter?,
                       context: SearchContext) throws -> [Neighbor] {
        guard let (q, ef) = try graphScratch(context).begin(query, k: k, ef: ef, efSearch: efSearch, dimension: dimension,
                                                            metric: metric, count: count, m0: m0) else { return [] }
        switch metric {
        case .l2: return search(L2Distance.self, q, k: k, ef: ef, allow: allow, context: context)
        case .dot: return search(DotDistance.self, q, k: k, ef: ef, allow: allow, context: context)
        case .cosine: return search(CosineDistance.self, q, k: k, ef: ef, allow: allow, context: context)
        }
    }
}
