import QuiverCore
import QuiverStorage
import QuiverText

/// Which lists a text search uses.
public enum SearchMode: String, Sendable, Codable, CaseIterable {
    /// Nearest vectors to the query's embedding (the collection's encoder).
    case dense
    /// BM25 over the documents' text (the collection's full-text index).
    case lexical
    /// Both lists, fused.
    case hybrid
}

/// How hybrid search merges the dense and lexical lists.
public enum Fusion: Sendable, Equatable {
    /// Reciprocal rank fusion: a document scores the sum over the lists of 1 / (k + rank), rank
    /// from 1 (Cormack et al.; k = 60 by default).
    case reciprocalRank(k: Int)
    /// Weighted score fusion: each list's scores are scaled to 0...1 (min-max over the list) and
    /// summed with weight `dense` for the dense list and 1 - `dense` for the lexical one.
    case weighted(dense: Double)
    /// Distribution-based score fusion: each list's scores are scaled by its own distribution, from
    /// mean - 3 standard deviations (0) to mean + 3 (1), and summed with weights as `weighted`.
    case distribution(dense: Double)
}

extension Collection {
    /// A text search in `mode`: dense (embedding), lexical (BM25) or hybrid (both, fused with
    /// `fusion` over the best `depth` of each list; nil: the collection's tuned default, else
    /// reciprocal rank with k 60). The filter of `options` applies to every list.
    /// Scores: similarity or distance (dense), BM25 score (lexical), fused score (hybrid).
    public func search(text: String, k: Int, mode: SearchMode, fusion: Fusion? = nil, depth: Int = 100,
                       options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        try textSearch(text, k: k, mode: mode, fusion: fusion, depth: depth, options: options).results
    }

    /// `search(text:k:mode:...)` with the plan.
    public func explain(text: String, k: Int, mode: SearchMode, fusion: Fusion? = nil, depth: Int = 100,
                        options: SearchOptions = SearchOptions()) throws -> (results: [SearchResult], plan: SearchPlan) {
        let (results, report) = try textSearch(text, k: k, mode: mode, fusion: fusion, depth: depth, options: options)
        return (results, try report())
    }

    /// Runs a text search in `mode` (with `options.diversity`, diversified); the report (what
    /// `explain` returns) is made only when called.
    private func textSearch(_ text: String, k: Int, mode: SearchMode, fusion: Fusion?, depth: Int,
                            options: SearchOptions) throws -> (results: [SearchResult], report: () throws -> SearchPlan) {
        guard k >= 1 && k <= Limits.maxK else { throw QuiverError.invalidArgument("k must be between 1 and \(Limits.maxK), not \(k)") }
        if mode != .dense && (options.minScore != nil || options.maxDistance != nil) {
            throw QuiverError.invalidArgument("a range bound (minScore / maxDistance) applies to dense search, not to \(mode.rawValue) search, whose scores are not similarities")
        }
        return try shapedSearch(k: k, options: options, relevance: mode == .dense ? .dense(info.metric) : .higherIsBetter,
                                try rankedTextSearch(text, mode: mode, fusion: fusion, depth: depth, options: options))
    }

    /// The plain text search in `mode` at any depth, the query embedded once (dense and hybrid).
    func rankedTextSearch(_ text: String, mode: SearchMode, fusion: Fusion?, depth: Int, options: SearchOptions) throws -> RankedSearch {
        switch mode {
        case .dense:
            let (vector, adapter, adapted) = try queryVector(text, options: options)
            return searching(with: adapted, rankedDenseSearch(vector, adapter: adapter))
        case .lexical:
            return { k, options in
                let allowed = try self.allowedSet(options.filter, allowUnknownFields: options.allowUnknownFields)
                let results = try self.resolve(try self.lexical(text, k: k, allowed: allowed?.set), options: options)
                return (results, {
                    let documents = try self.count()
                    return SearchPlan(strategy: "bm25", documents: documents, allowed: allowed?.count ?? documents,
                                      reason: "lexical mode", returned: results.count, estimate: allowed?.candidates ?? 0,
                                      indexesUsed: allowed?.indexes ?? [], fields: self.reportedFields(options.filter, allowed))
                })
            }
        case .hybrid:
            let (vector, adapter, adapted) = try queryVector(text, options: options)
            return searching(with: adapted, { k, options in
                try self.hybrid(vector: vector, adapter: adapter, text: text, k: k, fusion: fusion, depth: depth, options: options)
            })
        }
    }

    /// `ranked` with the efSearch that `queryVector` chose for the query (wider through an
    /// adapter), whatever options the diversity or grouping rounds hand it.
    private func searching(with adapted: SearchOptions, _ ranked: @escaping RankedSearch) -> RankedSearch {
        { depth, options in
            var options = options
            options.efSearch = adapted.efSearch
            return try ranked(depth, options)
        }
    }

    /// Hybrid search with the query's dense vector already made (`adapter`: the adapter it went
    /// through, for the report): both lists over the rows of one run of the filter (the dense
    /// plan's), fused with `given` or, when nil, the collection's tuned fusion. The lexical list
    /// is fused by document id (read from the row map) and only its documents that make the fused
    /// top k and are not in the dense list are read: `depth` documents are not read to keep k.
    func hybrid(vector: [Float], adapter: String?, text: String, k: Int, fusion given: Fusion?, depth: Int,
                options: SearchOptions) throws -> (results: [SearchResult], report: () throws -> SearchPlan) {
        let (fusion, fusionSource) = resolvedFusion(given)
        let densePlan = try plan(vector: vector, k: max(depth, k), options: options)
        let dense = try run(densePlan, vector, options: options)
        let lexicalHits = try lexical(text, k: densePlan.k, allowed: densePlan.allowed?.set)
        let fused = try database.readTransaction { txn -> [SearchResult] in
            var lexicalRows: [String: UInt64] = [:]
            var lexicalList: [SearchResult] = []
            for hit in lexicalHits {
                guard let id = try RowCodec.read(info.number, hit.row, collection: name, txn: txn, tables: database.tables) else { continue }
                lexicalRows[id] = hit.row
                lexicalList.append(SearchResult(id: id, score: hit.score, metadata: [:], text: nil, vector: nil))
            }
            let inDense = Set(dense.map(\.id))
            var out: [SearchResult] = []
            for r in Self.fuse(dense: dense, lexical: lexicalList, fusion: fusion, metric: info.metric) where out.count < k {
                if inDense.contains(r.id) {
                    out.append(r)
                } else if let full = try result(row: lexicalRows[r.id]!, score: r.score, txn: txn, options: options, skipMissing: true) {
                    out.append(full)
                }
            }
            return out
        }
        return (fused, {
            var plan = report(densePlan, returned: dense.count)
            plan.strategy = "hybrid: \(plan.strategy) + bm25, \(fusion)"
            plan.returned = fused.count
            plan.adapter = adapter
            plan.fusion = "\(fusion) (\(fusionSource))"
            return plan
        })
    }

    /// The best `k` rows by BM25 for `text` (restricted to `allowed`), best first, ties to the older row.
    func lexical(_ text: String, k: Int, allowed: Bitset?) throws -> [(row: UInt64, score: Float)] {
        guard let settings = info.fullText else {
            throw QuiverError.invalidArgument("'\(name)' has no full-text index; create it with full-text indexing for lexical or hybrid search")
        }
        let terms = settings.analyzerValue.terms(text)
        return try database.readTransaction { txn in
            try checkExists(txn)
            let stats = try CachedTextStatistics(number: info.number, name: info.name, txn: txn, tables: database.tables,
                                                 cache: database.textPostingsCache)
            let hits = BM25(k1: settings.k1, b: settings.b).search(terms, in: stats, k: k, where: { allowed?.contains(Int($0)) ?? true })
            if let f = stats.failure { throw f }
            return hits.map { (UInt64($0.documentID), Float($0.score)) }
        }
    }

    /// Search results for rows in order, from one snapshot (rows deleted meanwhile are skipped).
    func resolve(_ hits: [(row: UInt64, score: Float)], options: SearchOptions) throws -> [SearchResult] {
        try database.readTransaction { txn in
            try hits.compactMap { try result(row: $0.row, score: $0.score, txn: txn, options: options, skipMissing: true) }
        }
    }

    /// Fuses two ranked lists (best first) into one, best first; ties go to the dense list's order.
    static func fuse(dense: [SearchResult], lexical: [SearchResult], fusion: Fusion, metric: Metric) -> [SearchResult] {
        var scores: [String: Double] = [:]
        var byID: [String: SearchResult] = [:]
        var order: [String: Int] = [:]
        for (i, r) in (dense + lexical).enumerated() where byID[r.id] == nil {
            byID[r.id] = r
            order[r.id] = i
        }
        switch fusion {
        case .reciprocalRank(let k):
            for list in [dense, lexical] {
                for (rank, r) in list.enumerated() { scores[r.id, default: 0] += 1 / Double(k + rank + 1) }
            }
        case .weighted(let w), .distribution(let w):
            let byDistribution: Bool
            if case .distribution = fusion { byDistribution = true } else { byDistribution = false }
            func scaled(_ list: [SearchResult], higherIsBetter: Bool) -> [(String, Double)] {
                let values = list.map { higherIsBetter ? Double($0.score) : -Double($0.score) }
                guard var lo = values.min(), var hi = values.max() else { return [] }
                if byDistribution {
                    let mean = values.reduce(0, +) / Double(values.count)
                    let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
                    (lo, hi) = (mean - 3 * sd, mean + 3 * sd)
                }
                return zip(list, values).map { r, v in (r.id, hi > lo ? (v - lo) / (hi - lo) : 1) }
            }
            for (id, x) in scaled(dense, higherIsBetter: metric.higherScoreIsCloser) { scores[id, default: 0] += w * x }
            for (id, x) in scaled(lexical, higherIsBetter: true) { scores[id, default: 0] += (1 - w) * x }
        }
        return scores.sorted { a, b in a.value != b.value ? a.value > b.value : order[a.key]! < order[b.key]! }.map { id, score in
            var r = byID[id]!
            r.score = Float(score)
            return r
        }
    }
}
