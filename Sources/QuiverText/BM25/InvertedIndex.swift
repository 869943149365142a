/// An in-memory inverted index: per term, the documents that contain it with their term
/// frequencies, plus every document's length. It stores analyzed terms, not text (see `TextIndex`
/// for the pairing with an `Analyzer`).
///
/// Data model (the one a persistent store mirrors; see `BM25Statistics`):
/// - `postings[term]`: `(documentID, termFrequency, documentLength)` sorted by document id, no
///   duplicates (a document's length is the same in each of its postings);
/// - `documentLengths[id]`: the number of terms the document was added with (repeats counted);
/// - `totalTermCount`: the sum of those lengths.
/// A document with no terms is still counted (N includes it, with length 0), as in bm25s.
/// For removal the index also keeps each document's distinct terms.
///
/// Thread safety: a value type; mutate from one thread at a time, read concurrently.
public struct InvertedIndex: BM25Statistics, Sendable {
    /// One entry of a term's posting list.
    public struct Posting: Sendable, Hashable {
        /// The document's id.
        public var documentID: Int64
        /// How many times the term occurs in the document (>= 1).
        public var termFrequency: UInt32
        /// The document's length in terms (kept here so that scoring reads no other table).
        public var documentLength: UInt32
    }

    /// Posting lists by term, each sorted by document id.
    public private(set) var postings: [String: [Posting]] = [:]
    /// Document lengths in terms, by document id.
    public private(set) var documentLengths: [Int64: UInt32] = [:]
    /// Sum of `documentLengths`.
    public private(set) var totalTermCount = 0
    /// Each document's distinct terms, so that `remove` knows which posting lists to edit.
    private var documentTerms: [Int64: [String]] = [:]

    /// An empty index.
    public init() {}

    /// The number of documents.
    public var documentCount: Int { documentLengths.count }

    /// Whether a document with this id is indexed.
    public func contains(_ id: Int64) -> Bool { documentLengths[id] != nil }

    /// Indexes a document's terms (repeats count toward the term frequency). A document already
    /// stored under `id` is replaced.
    public mutating func add(_ id: Int64, terms: [String]) {
        remove(id)
        var counts: [String: UInt32] = [:]
        for t in terms { counts[t, default: 0] += 1 }
        for (term, tf) in counts {
            let posting = Posting(documentID: id, termFrequency: tf, documentLength: UInt32(terms.count))
            postings[term, default: []].insertSorted(posting)
        }
        documentLengths[id] = UInt32(terms.count)
        documentTerms[id] = Array(counts.keys)
        totalTermCount += terms.count
    }

    /// Removes a document; returns whether it was indexed. Terms left with no posting disappear.
    @discardableResult
    public mutating func remove(_ id: Int64) -> Bool {
        guard let length = documentLengths.removeValue(forKey: id) else { return false }
        for term in documentTerms.removeValue(forKey: id) ?? [] {
            guard var list = postings[term] else { continue }
            if let i = list.indexOf(documentID: id) { list.remove(at: i) }
            postings[term] = list.isEmpty ? nil : list
        }
        totalTermCount -= Int(length)
        return true
    }

    /// The number of distinct terms.
    public var termCount: Int { postings.count }

    public func documentFrequency(of term: String) -> Int { postings[term]?.count ?? 0 }

    public func documentIDBounds(of term: String) -> ClosedRange<Int64>? {
        guard let list = postings[term], let first = list.first, let last = list.last else { return nil }
        return first.documentID...last.documentID
    }

    public func forEachPosting(of term: String, _ body: (Int64, Int, Int) -> Void) {
        guard let list = postings[term] else { return }
        for p in list { body(p.documentID, Int(p.termFrequency), Int(p.documentLength)) }
    }
}

extension Array where Element == InvertedIndex.Posting {
    /// The index of the posting for `id`, by binary search (the list is sorted by id).
    func indexOf(documentID id: Int64) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid].documentID < id { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && self[lo].documentID == id ? lo : nil
    }

    /// Inserts keeping the order by id; appending is the common case (ids usually grow).
    mutating func insertSorted(_ p: Element) {
        if let last = self.last, last.documentID > p.documentID {
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                if self[mid].documentID < p.documentID { lo = mid + 1 } else { hi = mid }
            }
            insert(p, at: lo)
        } else {
            append(p)
        }
    }
}
