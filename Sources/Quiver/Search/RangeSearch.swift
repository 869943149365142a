import QuiverCore
import QuiverIndex

// Range search: every document within a bound, best first (`SearchOptions.minScore` for cosine and
// dot collections, `SearchOptions.maxDistance` for l2 ones), with k as an optional cap.
//
// How the bound maps onto the indexes' internal distance (see `Metric`):
//   cosine  score = cos(q, x)       distance = 1 - score    score >= s  <=>  distance <= 1 - s
//   dot     score = q . x           distance = -score       score >= s  <=>  distance <= -s
//   l2      score = |q - x|         distance = score^2      score <= r  <=>  distance <= r^2
// Every segment answers with its range primitive (`VectorIndex.rangeSearch`: an exact scan for the
// mutable segment and exact stand-ins, a widening top-k search for HNSW and IVF-PQ), and the exact
// scan (`SearchOptions.exact`) is the oracle. The distance bound handed to the indexes is one float
// step looser than the exact conversion, and every hit is checked against the score itself, so
// rounding in the conversion never drops or adds a document.

/// A range search's bound, validated against the collection's metric.
struct RangeBound {
    let metric: Metric
    /// The user's bound: the least score (cosine, dot) or the greatest Euclidean distance (l2).
    let score: Float
    /// The bound on the internal distance given to the indexes (a hair loose, see above).
    let maxDistance: Float
    /// Whether the caller gave k; without it, more than `Limits.maxK` documents in the bound is an error.
    let capped: Bool
    let collection: String

    /// Whether a hit at internal `distance` is inside the bound.
    func admits(distance: Float) -> Bool {
        let s = metric.score(fromDistance: distance)
        return metric.higherScoreIsCloser ? s >= score : s <= score
    }

    /// The bound in words, for messages.
    var phrase: String { metric.higherScoreIsCloser ? "score at least \(score)" : "lie within distance \(score)" }

    /// The hits inside the bound, the best `k`; when the bound held more than k (`overflow`) and
    /// the caller gave no k, the error that says so.
    func capped(_ hits: [Neighbor], k: Int, overflow: Bool) throws -> [Neighbor] {
        if overflow && !capped {
            throw QuiverError.invalidArgument("more than \(k) documents of '\(collection)' \(phrase) (a range search returns at most \(Limits.maxK)); "
                + "tighten the bound, or give k (-k) to take the best k of them")
        }
        return Array(hits.lazy.filter { admits(distance: $0.distance) }.prefix(k))
    }
}

extension Collection {
    /// Every document within the bound of `options` (`minScore` or `maxDistance`, one of which is
    /// required), best first. At most `Limits.maxK` of them: a bound holding more is an error that
    /// says so (`search(vector:k:options:)` with a bound takes the best k instead).
    public func search(vector: [Float], options: SearchOptions) throws -> [SearchResult] {
        try run(try plan(vector: vector, k: Limits.maxK, options: try requiringBound(options), capped: false), vector, options: options)
    }

    /// `search(vector:options:)` for a text query, embedded as `search(text:k:options:)` does.
    public func search(text: String, options: SearchOptions) throws -> [SearchResult] {
        let (vector, _, options) = try queryVector(text, options: try requiringBound(options))
        return try search(vector: vector, options: options)
    }

    /// `search(vector:options:)` with the plan (`explain(vector:k:options:)`).
    public func explain(vector: [Float], options: SearchOptions) throws -> (results: [SearchResult], plan: SearchPlan) {
        let plan = try plan(vector: vector, k: Limits.maxK, options: try requiringBound(options), capped: false)
        let results = try run(plan, vector, options: options)
        return (results, report(plan, returned: results.count))
    }

    /// `search(text:options:)` with the plan; `mode` must be dense (a bound on BM25 or fused
    /// scores is refused, as `search(text:k:mode:)` refuses it).
    public func explain(text: String, mode: SearchMode = .dense, options: SearchOptions) throws -> (results: [SearchResult], plan: SearchPlan) {
        let options = try requiringBound(options)
        guard mode == .dense else { return try explain(text: text, k: Limits.maxK, mode: mode, options: options) }
        let (vector, adapter, adapted) = try queryVector(text, options: options)
        var out = try explain(vector: vector, options: adapted)
        out.plan.adapter = adapter
        return out
    }

    private func requiringBound(_ options: SearchOptions) throws -> SearchOptions {
        guard options.minScore != nil || options.maxDistance != nil else {
            throw QuiverError.invalidArgument("a search without k needs a bound: minScore (cosine, dot) or maxDistance (l2)")
        }
        return options
    }

    /// The bound of `options` checked against the collection's metric (nil: a top-k search).
    func rangeBound(_ options: SearchOptions, capped: Bool) throws -> RangeBound? {
        let metric = info.metric
        switch (options.minScore, options.maxDistance) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw QuiverError.invalidArgument("give minScore or maxDistance, not both ('\(name)' uses the \(metric.rawValue) metric)")
        case (let s?, nil):
            guard metric.higherScoreIsCloser else {
                throw QuiverError.invalidArgument("'\(name)' uses the l2 metric, whose scores are distances (lower is closer): bound it with maxDistance (--max-distance), not minScore")
            }
            guard s.isFinite else { throw QuiverError.invalidArgument("minScore must be a finite number, not \(s)") }
            return RangeBound(metric: metric, score: s, maxDistance: metric.distance(fromScore: s).nextUp, capped: capped, collection: name)
        case (nil, let r?):
            guard !metric.higherScoreIsCloser else {
                throw QuiverError.invalidArgument("'\(name)' uses the \(metric.rawValue) metric, whose scores are similarities (higher is closer): bound it with minScore (--min-score), not maxDistance")
            }
            guard r.isFinite && r >= 0 else { throw QuiverError.invalidArgument("maxDistance must be a finite number at least 0, not \(r)") }
            return RangeBound(metric: metric, score: r, maxDistance: metric.distance(fromScore: r).nextUp, capped: capped, collection: name)
        }
    }

    /// A range search over the collection's segments: each answers with its range primitive.
    func runRange(_ plan: VectorSearchPlan, _ range: RangeBound, _ segments: CollectionSegments, _ parameters: SearchParameters,
                  _ vector: [Float], options: SearchOptions) throws -> [SearchResult] {
        let found = try wrapIndex { try segments.rangeSearch(vector, maxDistance: range.maxDistance, limit: plan.segmentK, parameters: parameters) }
        return try database.readTransaction { txn in
            try checkExists(txn)
            var out: [SearchResult] = []
            for hit in found.neighbors where range.admits(distance: hit.distance) {
                if let r = try result(hit, txn: txn, options: options, skipMissing: true) { out.append(r) }
            }
            _ = try range.capped([], k: plan.k, overflow: found.truncated || out.count > plan.k)
            return Array(out.prefix(plan.k))
        }
    }
}

extension CollectionSegments {
    /// Every live row within `maxDistance` (internal distance) of `query` over every segment,
    /// closest first, at most `limit` (`truncated`: a segment held more, or together they do).
    /// Each segment runs its own range primitive with the same parameters.
    func rangeSearch(_ query: [Float], maxDistance: Float, limit: Int, parameters: SearchParameters) throws -> RangeSearchResult {
        try lock.read {
            try query.withUnsafeBufferPointer { q in
                try rangeSearch(q, maxDistance: maxDistance, limit: limit, parameters: parameters)
            }
        }
    }

    /// `rangeSearch` for a query in place, with the lock already held for reading (the
    /// near-duplicate join takes it once per batch of queries).
    func rangeSearch(_ q: UnsafeBufferPointer<Float>, maxDistance: Float, limit: Int, parameters: SearchParameters) throws -> RangeSearchResult {
        var indexes: [any VectorIndex] = [mutable]
        if let f = frozen { indexes.append(f) }
        for s in sealed { indexes.append(s.index.any) }
        var all: [Neighbor] = []
        var truncated = false
        var rounds = 0
        for index in indexes where index.liveCount > 0 {
            let r = try index.rangeSearch(q, maxDistance: maxDistance, limit: limit, parameters: parameters)
            all += r.neighbors
            truncated = truncated || r.truncated
            rounds += r.rounds
        }
        all.sort { ($0.distance, $0.id) < ($1.distance, $1.id) }
        return RangeSearchResult(neighbors: Array(all.prefix(limit)), truncated: truncated || all.count > limit, rounds: rounds)
    }
}

extension SearchOptions {
    /// A range bound asks for every document inside it; diversity and grouping choose among a
    /// ranked list instead, so a search asking for both is refused rather than half applied.
    func refuseRangeBound(with shape: String) throws {
        guard minScore != nil || maxDistance != nil else { return }
        throw QuiverError.invalidArgument("a range bound (minScore / maxDistance) cannot be combined with \(shape): search the range, then diversify or group its results in the application")
    }
}
