import Foundation  // log

/// Okapi BM25 ranking, in the "Lucene" variant that bm25s uses by default (Kamphuis et al., ECIR 2020):
///
///     score(q, d) = sum over query terms t of  idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))
///     idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
///
/// where tf is the term's frequency in d, |d| the document's length in terms, avgdl the mean length,
/// N the number of documents and df the number that contain t. This idf is never negative, so a
/// term in more than half the documents still counts a little. The classic `(k1 + 1)` factor in the
/// numerator is left out, as bm25s and Lucene 8+ do: it scales every score by the same constant and
/// changes no ranking. A term repeated in the query counts once per occurrence (bm25s, and Lucene's
/// query of one clause per term, do the same); query terms absent from the collection add nothing.
///
/// Thread safety: a value type; `search` only reads the statistics it is given.
public struct BM25: Sendable, Hashable {
    /// Term-frequency saturation: how quickly repeats of a term stop adding score.
    public var k1: Double
    /// Length normalization: 0 ignores document length, 1 normalizes fully.
    public var b: Double

    /// k1 = 1.5 and b = 0.75: the defaults of bm25s (and close to Lucene's 1.2 / 0.75).
    public init(k1: Double = 1.5, b: Double = 0.75) {
        self.k1 = k1
        self.b = b
    }

    /// One ranked document.
    public struct Hit: Sendable, Hashable {
        /// The document's id.
        public var documentID: Int64
        /// Its BM25 score (> 0).
        public var score: Double
    }

    /// idf(t) for a term in `df` of `n` documents.
    @inlinable
    public func inverseDocumentFrequency(documentFrequency df: Int, documentCount n: Int) -> Double {
        log(1 + (Double(n) - Double(df) + 0.5) / (Double(df) + 0.5))
    }

    /// The scores of every document that contains at least one query term, by document id.
    public func scores(for queryTerms: [String], in statistics: some BM25Statistics) -> [Int64: Double] {
        withScoreTable(for: queryTerms, in: statistics) { table in
            var scores: [Int64: Double] = [:]
            scores.reserveCapacity(table.count)
            table.forEach { id, score in scores[id] = score }
            return scores
        } ?? [:]
    }

    /// The `k` best documents for the query terms, best first; ties go to the smaller id so that
    /// results are deterministic. Documents with no query term are never returned, nor those that
    /// `isAllowed` rejects (asked once per document that scores).
    public func search(_ queryTerms: [String], in statistics: some BM25Statistics, k: Int,
                       where isAllowed: (Int64) -> Bool = { _ in true }) -> [Hit] {
        withScoreTable(for: queryTerms, in: statistics) { table in
            var top = TopHits(k: k)
            table.forEach { id, score in if isAllowed(id) { top.offer(id, score) } }
            return top.best()
        } ?? []
    }

    /// `body` applied to the sums of the query's terms by document (nil when nothing can score),
    /// each sum added in query-term order, so that the figures do not depend on the table.
    func withScoreTable<R>(for queryTerms: [String], in statistics: some BM25Statistics, _ body: (ScoreTable) -> R) -> R? {
        let n = statistics.documentCount
        let avgdl = statistics.averageDocumentLength
        guard n > 0, avgdl > 0 else { return nil }
        var terms: [(term: String, df: Int)] = []
        for term in queryTerms {
            let df = statistics.documentFrequency(of: term)
            if df > 0 { terms.append((term, df)) }
        }
        guard !terms.isEmpty else { return nil }
        let postings = terms.reduce(0) { $0 + $1.df }
        let span = Self.directSpan(terms.map { statistics.documentIDBounds(of: $0.term) }, postings: postings)
        var table = span.map { ScoreTable(first: $0.first, span: $0.count) } ?? ScoreTable(expected: postings)
        defer { table.deallocate() }
        let lengthWeight = k1 * b / avgdl
        let baseWeight = k1 * (1 - b)
        for (term, df) in terms {
            let idf = inverseDocumentFrequency(documentFrequency: df, documentCount: n)
            statistics.forEachPosting(of: term) { id, tf, length in
                let f = Double(tf)
                table.add(id, idf * f / (f + baseWeight + lengthWeight * Double(length)))
            }
        }
        return body(table)
    }

    /// The ids a direct score table covers for terms with these bounds: all of them, when known and
    /// no wider than twice the postings summed (nor than 2^26 ids); else nil (a hashed table).
    static func directSpan(_ bounds: [ClosedRange<Int64>?], postings: Int) -> (first: Int64, count: Int)? {
        var lo = Int64.max, hi = Int64.min
        for b in bounds {
            guard let b else { return nil }
            lo = min(lo, b.lowerBound)
            hi = max(hi, b.upperBound)
        }
        let (width, overflow) = hi.subtractingReportingOverflow(lo)
        guard lo <= hi, !overflow, width < min(2 * Int64(postings), 1 << 26) else { return nil }
        return (lo, Int(width) + 1)
    }

    /// The `k` highest of `scores`, best first, ties to the smaller id.
    public static func best(_ scores: [Int64: Double], k: Int) -> [Hit] {
        var top = TopHits(k: k)
        for (id, score) in scores { top.offer(id, score) }
        return top.best()
    }
}

/// The `k` best hits offered so far: a bounded heap whose root is the worst hit kept, so that m
/// candidates cost O(m log k), and most cost one comparison with the root.
struct TopHits {
    let k: Int
    private var heap: [BM25.Hit] = []

    init(k: Int) {
        self.k = max(k, 0)
        heap.reserveCapacity(min(self.k, 1024))
    }

    /// `a` ranks below `b`: a lower score, or the same score and a greater id.
    @inline(__always)
    private static func worse(_ a: BM25.Hit, _ b: BM25.Hit) -> Bool {
        a.score < b.score || (a.score == b.score && a.documentID > b.documentID)
    }

    @inline(__always)
    mutating func offer(_ id: Int64, _ score: Double) {
        let hit = BM25.Hit(documentID: id, score: score)
        if heap.count < k {
            heap.append(hit)
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                if !Self.worse(heap[i], heap[parent]) { break }
                heap.swapAt(i, parent)
                i = parent
            }
        } else if k > 0 && Self.worse(heap[0], hit) {
            heap[0] = hit
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && Self.worse(heap[l], heap[m]) { m = l }
                if r < heap.count && Self.worse(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
    }

    /// The hits kept, best first.
    func best() -> [BM25.Hit] { heap.sorted { Self.worse($1, $0) } }
}
