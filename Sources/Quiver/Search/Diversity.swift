import QuiverCore

// Diversity: maximal marginal relevance (Carbonell and Goldstein, 1998) over a search's candidates.
//
// A diversified search asks the plain search (dense, lexical or hybrid, filters applying) for its
// best `candidates` hits with their vectors, then picks k of them one at a time, each time the
// candidate with the highest
//
//     (1 - diversity) * relevance(c) - diversity * max over picked p of cosine(c, p)
//
// (the redundancy term is 0 while nothing is picked, so the first pick is the most relevant one;
// ties go to the better-ranked candidate). `diversity` is Qdrant's name and direction: 0 is pure
// relevance (the plain ranking of the candidates), 1 pure diversity; Carbonell's lambda is
// 1 - diversity. The scores returned are the plain search's relevance scores (similarity,
// distance, BM25 or fused), as Qdrant returns them (qdrant/qdrant pull request 6897: the score is
// the similarity to the query), not the MMR objective, which depends on what was picked before
// and is neither ordered nor comparable across queries.

/// A ranked search at any depth: the best `depth` hits for `options`, best first, with the report
/// of how it ran (made only when called).
typealias RankedSearch = (_ depth: Int, _ options: SearchOptions) throws -> (results: [SearchResult], report: () throws -> SearchPlan)

/// What MMR takes as a candidate's relevance.
enum MMRRelevance {
    /// A dense search under `metric`: a cosine collection's scores are cosine similarities, used
    /// as they are (on the scale of the similarity between candidates); dot and l2 scores are
    /// scaled to 0...1 over the candidates (1 the best).
    case dense(Metric)
    /// Scores where higher is better, scaled to 0...1 over the candidates: BM25, fused.
    case higherIsBetter
}

enum MaximalMarginalRelevance {
    /// Candidates per result when `SearchOptions.diversityCandidates` is nil: 5 × k (LangChain's
    /// fetch_k is 20 for k 4; Qdrant's default, k, leaves MMR nothing to choose from).
    static let candidatesPerResult = 5

    /// The relevance MMR uses for candidates with `scores`, best first.
    static func relevance(_ scores: [Float], _ kind: MMRRelevance) -> [Double] {
        let higher: Bool
        switch kind {
        case .dense(let metric):
            if metric == .cosine { return scores.map(Double.init) }
            higher = metric.higherScoreIsCloser
        case .higherIsBetter:
            higher = true
        }
        let values = scores.map { higher ? Double($0) : -Double($0) }
        guard let lo = values.min(), let hi = values.max(), hi > lo else { return values.map { _ in 1 } }
        return values.map { ($0 - lo) / (hi - lo) }
    }

    /// The indices of the candidates MMR picks, in the order picked: at most k of them.
    /// `relevance`: one value per candidate; `vectors`: (n, dimension) row-major, each row of unit
    /// length or zero (a zero vector is at cosine 0 from every other).
    static func select(relevance: [Double], vectors: [Float], dimension: Int, k: Int, diversity: Double) -> [Int] {
        let n = relevance.count
        precondition(vectors.count == n * dimension)
        var picked: [Int] = []
        var taken = [Bool](repeating: false, count: n)
        // The largest cosine from each candidate to the picked ones (0 while none is picked).
        var redundancy = [Double](repeating: 0, count: n)
        vectors.withUnsafeBufferPointer { v in
            let base = v.baseAddress!
            while picked.count < min(k, n) {
                var best = -1
                var bestValue = -Double.infinity
                for i in 0..<n where !taken[i] {
                    let value = (1 - diversity) * relevance[i] - diversity * redundancy[i]
                    if value > bestValue { best = i; bestValue = value }
                }
                picked.append(best)
                taken[best] = true
                for i in 0..<n where !taken[i] {
                    let s = Double(DistanceKernels.dot(base + i * dimension, base + best * dimension, dimension))
                    redundancy[i] = picked.count == 1 ? s : max(redundancy[i], s)
                }
            }
        }
        return picked
    }
}

extension SearchOptions {
    /// A diversified search: maximal marginal relevance with `diversity` (0 pure relevance, 1 pure
    /// diversity) over `candidates` hits (nil: 5 × k).
    public init(diversity: Double, candidates: Int? = nil, filter: Filter? = nil) {
        self.init(filter: filter)
        self.diversity = diversity
        self.diversityCandidates = candidates
    }
}

extension Collection {
    /// Runs the flat (ungrouped) search `ranked` for k results: plainly, or, with
    /// `options.diversity`, by MMR over its best candidates. The checks of the diversity options
    /// come before `ranked` is made (which may embed a text).
    func shapedSearch(k: Int, options: SearchOptions, relevance: MMRRelevance,
                      _ ranked: @autoclosure () throws -> RankedSearch) throws -> (results: [SearchResult], report: () throws -> SearchPlan) {
        if options.groupBy != nil {
            throw QuiverError.invalidArgument("SearchOptions.groupBy returns groups: call searchGroups (or explainGroups) instead of search")
        }
        guard let diversity = options.diversity else { return try ranked()(k, options) }
        guard k >= 1 && k <= Limits.maxK else { throw QuiverError.invalidArgument("k must be between 1 and \(Limits.maxK), not \(k)") }
        try options.refuseRangeBound(with: "diversity")
        guard diversity.isFinite && (0...1).contains(diversity) else {
            throw QuiverError.invalidArgument("diversity must be between 0 (pure relevance) and 1 (pure diversity), not \(diversity)")
        }
        let candidates = options.diversityCandidates ?? min(Limits.maxK, max(k, MaximalMarginalRelevance.candidatesPerResult * k))
        guard candidates >= k && candidates <= Limits.maxK else {
            throw QuiverError.invalidArgument("diversity candidates must be between k (\(k)) and \(Limits.maxK), not \(candidates)")
        }
        var withVectors = options
        withVectors.includeVector = true
        let (pool, report) = try ranked()(candidates, withVectors)
        let dimension = info.dimension
        var vectors = [Float](repeating: 0, count: pool.count * dimension)
        vectors.withUnsafeMutableBufferPointer { v in
            for (i, hit) in pool.enumerated() {
                let row = v.baseAddress! + i * dimension
                guard let vector = hit.vector, vector.count == dimension else { continue }  // stays zero: cosine 0 to all
                for (j, x) in vector.enumerated() { row[j] = x }
                _ = DistanceKernels.normalize(row, dimension)
            }
        }
        let picked = MaximalMarginalRelevance.select(relevance: MaximalMarginalRelevance.relevance(pool.map(\.score), relevance),
                                                     vectors: vectors, dimension: dimension, k: k, diversity: diversity)
        let results = picked.map { i in
            var r = pool[i]
            if !options.includeVector { r.vector = nil }
            return r
        }
        let scale: String
        switch relevance {
        case .dense(.cosine): scale = "the cosine scores"
        default: scale = "the scores scaled to 0...1 over the candidates"
        }
        return (results, {
            var plan = try report()
            plan.returned = results.count
            plan.diversity = "MMR with diversity \(diversity) (0 pure relevance, 1 pure diversity) over \(pool.count) candidate(s) "
                + "(\(candidates) asked); relevance: \(scale); similarity between candidates: cosine of their vectors"
            return plan
        })
    }
}
