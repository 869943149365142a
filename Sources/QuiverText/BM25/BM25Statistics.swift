/// What BM25 needs to know about a collection of documents, and nothing more: the seam between the
/// scorer and where postings live. `InvertedIndex` keeps them in memory; a store backed by LMDB
/// (postings per term: document id and term frequency; a table of document lengths; two counters)
/// conforms by reading its tables inside one read transaction, so that all figures come from the
/// same snapshot.
///
/// The figures must be consistent: `documentCount` documents whose lengths sum to
/// `totalTermCount`; `documentFrequency(of:)` equals the number of postings `forEachPosting` visits
/// for that term, and each posting's length is that document's length.
public protocol BM25Statistics {
    /// N: the number of documents.
    var documentCount: Int { get }
    /// The sum of all document lengths, in terms (avgdl = totalTermCount / documentCount).
    var totalTermCount: Int { get }
    /// df: how many documents contain `term` at least once (0 for an unknown term).
    func documentFrequency(of term: String) -> Int
    /// Calls `body` once per document that contains `term`: its id, how often the term occurs in it
    /// (>= 1) and the document's length in terms. Order is unspecified.
    func forEachPosting(of term: String, _ body: (_ documentID: Int64, _ termFrequency: Int, _ documentLength: Int) -> Void)
    /// The least and the greatest id among `term`'s postings, when the source knows them without
    /// visiting them (nil: unknown, the default). With every query term's bounds, scoring sums into
    /// an array over the ids between them when that is narrow enough. Call after
    /// `documentFrequency(of:)` for the same term.
    func documentIDBounds(of term: String) -> ClosedRange<Int64>?
}

extension BM25Statistics {
    public func documentIDBounds(of term: String) -> ClosedRange<Int64>? { nil }

    /// avgdl: the mean document length in terms (0 for an empty collection).
    public var averageDocumentLength: Double {
        documentCount == 0 ? 0 : Double(totalTermCount) / Double(documentCount)
    }
}
