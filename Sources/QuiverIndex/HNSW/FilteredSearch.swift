import QuiverCore

/// How an `HNSWIndex` answers a search with an allow-filter. Every strategy completes with an exact
/// scan when it yields fewer than k results while more may be allowed, so each returns
/// `min(k, allowed live vectors)` results; they differ in cost and in recall.
public enum FilteredSearch: String, Sendable, CaseIterable {
    /// Score every allowed vector: exact, and the cheapest when few are allowed.
    case scan
    /// The unfiltered graph walk that returns only allowed nodes: filtered-out nodes are still
    /// scored and expanded, so a filter admitting a fraction s of the nodes costs about 1/s times an
    /// unfiltered search. Best when most nodes are allowed.
    case graph
    /// ACORN-1 (Patel et al. 2024): the walk scores and expands allowed nodes only and reaches over
    /// filtered-out neighbours to their allowed neighbours (two hops) where a node has few allowed
    /// ones, so its cost hardly depends on s. Best in between.
    case acorn
}

extension HNSWIndex {
    /// The strategy of a search with `allowed` allowed ids and list size `ef` (nil = `efSearch`),
    /// unless `filteredSearchOverride` is set:
    /// - `scan` while `allowed <= scanFactor * ef * M0`: a scan costs `allowed` distances, about what
    ///   the ACORN walk costs there (its list grows as s falls, see `acornListSize`);
    /// - `graph` from `graphFrom` of the live vectors on: the plain walk is then as fast, and exact
    ///   where ACORN loses a little recall;
    /// - `acorn` in between.
    /// The constants were measured on 116,659 WordNet-gloss embeddings at M 16, ef 64, over
    /// independent and correlated filters of 0.1-50% (docs/benchmarks.md, `HNSWBench --filters`).
    public func filteredSearch(allowed: Int, ef: Int? = nil) -> FilteredSearch {
        let ef = Double(Swift.max(ef ?? efSearch, 1))
        let live = Double(Swift.max(liveCount, 1))
        if Double(allowed) <= Self.scanFactor * ef * Double(m0) { return .scan }
        if Double(allowed) >= Self.graphFrom * live { return .graph }
        return .acorn
    }

    /// The members of `bits` within this index's id range: the filter's allowed count as this index
    /// sees it (an upper bound on the allowed ids it holds), which picks the strategy.
    public func allowedCount(_ bits: Bitset) -> Int {
        idRange.map { bits.count(in: Int(clamping: $0.lowerBound)...Int(clamping: $0.upperBound)) } ?? 0
    }

    /// The list size of an ACORN walk with `allowed` allowed ids: `ef`, raised by up to
    /// `acornMaxListFactor` as the allowed fraction s falls below `acornFullFrom` (by acornFullFrom / s),
    /// because the sparser the allowed subgraph, the narrower the frontier a list of ef holds: at 5-7%
    /// it measured recall@10 0.945-0.95 at ef 64 and 0.97-0.98 at 128.
    func acornListSize(_ ef: Int, allowed: Int) -> Int {
        let s = Double(Swift.max(allowed, 1)) / Double(Swift.max(liveCount, 1))
        let factor = Swift.min(Self.acornMaxListFactor, Swift.max(1, Self.acornFullFrom / s))
        return Int((Double(ef) * factor).rounded(.up))
    }

    static let scanFactor = 2.0
    static let graphFrom = 0.3
    static let acornFullFrom = 0.15
    static let acornMaxListFactor = 2.0

    /// A node looks two hops away when fewer than this many of its neighbours are allowed.
    @inline(__always)
    static func acornExpandBelow(m0: Int) -> Int { m0 / 2 }
}
