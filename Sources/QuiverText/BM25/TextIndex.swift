/// Full-text search over documents' text in memory: an `Analyzer` in front of an `InvertedIndex`,
/// ranked by `BM25`. The analyzer is fixed for the index's life, since documents and queries must
/// be analyzed alike.
///
/// Thread safety: a value type; mutate from one thread at a time, search concurrently.
public struct TextIndex: Sendable {
    /// How text becomes terms, for documents and queries alike.
    public let analyzer: Analyzer
    /// The ranking parameters (may be changed at any time; nothing stored depends on them).
    public var bm25: BM25
    /// The postings and lengths.
    public private(set) var index = InvertedIndex()

    /// An empty index.
    public init(analyzer: Analyzer = .default, bm25: BM25 = BM25()) {
        self.analyzer = analyzer
        self.bm25 = bm25
    }

    /// The number of documents.
    public var documentCount: Int { index.documentCount }

    /// Indexes (or re-indexes) a document's text.
    public mutating func add(_ id: Int64, text: String) {
        index.add(id, terms: analyzer.terms(text))
    }

    /// Removes a document; returns whether it was indexed.
    @discardableResult
    public mutating func remove(_ id: Int64) -> Bool { index.remove(id) }

    /// The `k` best documents for a query, best first (see `BM25.search`).
    public func search(_ query: String, k: Int) -> [BM25.Hit] {
        bm25.search(analyzer.terms(query), in: index, k: k)
    }
}
