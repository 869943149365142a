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
        let n = statistics.documentCount
        let avgdl = statistics.averageDocumentLength
        var scores: [Int64: Double] = [:]
        guard n > 0, avgdl > 0 else { return scores }
        for term in queryTerms {
            let df = statistics.documentFrequency(of: term)
            if df == 0 { continue }
            let idf = inverseDocumentFrequency(documentFrequency: df, documentCount: n)
            let lengthWeight = k1 * b / avgdl
            let baseWeight = k1 * (1 - b)
            statistics.forEachPosting(of: term) { id, tf, length in
                let f = Double(tf)
                scores[id, default: 0] += idf * f / (f + baseWeight + lengthWeight * Double(length))
            }
        }
        return scores
    }

    /// The `k` best documents for the query terms, best first; ties go to the smaller id so that
    /// results are deterministic. Documents with no query term are never returned.
    public func search(_ queryTerms: [String], in statistics: some BM25Statistics, k: Int) -> [Hit] {
        Self.best(scores(for: queryTerms, in: statistics), k: k)
    }

    /// The `k` highest of `scores`, best first, ties to the smaller id: a bounded heap whose root is
    /// the worst hit kept, so that m candidates cost O(m log k).
    public static func best(_ scores: [Int64: Double], k: Int) -> [Hit] {
        guard k > 0 else { return [] }
        // `worse(a, b)`: a ranks below b.
        func worse(_ a: Hit, _ b: Hit) -> Bool { a.score < b.score || (a.score == b.score && a.documentID > b.documentID) }
        var heap: [Hit] = []
        heap.reserveCapacity(min(k, scores.count))
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && worse(heap[l], heap[m]) { m = l }
                if r < heap.count && worse(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for (id, score) in scores {
            let hit = Hit(documentID: id, score: score)
            if heap.count < k {
                heap.append(hit)
                var i = heap.count - 1
                while i > 0 {
                    let parent = (i - 1) / 2
                    if !worse(heap[i], heap[parent]) { break }
                    heap.swapAt(i, parent)
                    i = parent
                }
            } else if worse(heap[0], hit) {
                heap[0] = hit
                siftDown(0)
            }
        }
        return heap.sorted { worse($1, $0) }
    }
}
