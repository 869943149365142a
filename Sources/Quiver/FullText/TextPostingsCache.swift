import Foundation
import QuiverStorage
import QuiverText

/// Decoded BM25 postings of the terms recent queries used, per collection, each entry valid for
/// exactly one LMDB snapshot (the read transaction's id). Lexical search otherwise walks an LMDB
/// cursor and checks a checksum per posting for every query term (297 queries/s on 59k documents,
/// issue 15); with the postings decoded once, a query reads flat arrays.
///
/// Why the snapshot id and not the collection's write generation: a generation is bumped after the
/// LMDB commit, so a search between the two would file a newer snapshot's postings under the older
/// generation. An entry built from snapshot T is only ever read by transactions at T, so every
/// search scores one consistent snapshot. Any commit (to any collection) starts a new snapshot:
/// the first query after it reads its terms from LMDB again, as every query did before the cache.
///
/// Bounded: at most `capacity` postings over all collections; a term that would pass it empties
/// the cache first (its memory is then that of the postings the current queries need).
/// Thread safety: all state is guarded by `lock`; `Postings` values are immutable and shared.
final class TextPostingsCache: @unchecked Sendable {
    /// One term's postings in one snapshot: `df` as the terms table records it, and the postings'
    /// rows, term frequencies and document lengths.
    struct Postings: Sendable {
        let df: Int
        let rows: [Int64]
        let termFrequencies: [UInt32]
        let lengths: [UInt32]
    }

    private struct Entry {
        var snapshot: Int
        var documentCount: Int
        var totalTermCount: Int
        var terms: [String: Postings] = [:]
        var postings = 0
    }

    private let lock = NSLock()
    private var entries: [UInt32: Entry] = [:]
    /// The postings held over all entries.
    private var total = 0
    /// 4 Mi postings: 64 MiB at 16 bytes each, the postings of a few hundred thousand documents'
    /// queried terms.
    let capacity: Int

    init(capacity: Int = 4 << 20) { self.capacity = capacity }

    /// Collection `c`'s totals (documents, terms) at `snapshot`, if cached.
    func totals(_ c: UInt32, snapshot: Int) -> (Int, Int)? {
        lock.lock(); defer { lock.unlock() }
        guard let e = entries[c], e.snapshot == snapshot else { return nil }
        return (e.documentCount, e.totalTermCount)
    }

    /// Starts collection `c`'s entry for `snapshot` unless one for it (or a newer one) is there.
    func start(_ c: UInt32, snapshot: Int, documentCount: Int, totalTermCount: Int) {
        lock.lock(); defer { lock.unlock() }
        if let e = entries[c] {
            if e.snapshot >= snapshot { return }
            total -= e.postings
        }
        entries[c] = Entry(snapshot: snapshot, documentCount: documentCount, totalTermCount: totalTermCount)
    }

    func postings(_ c: UInt32, snapshot: Int, term: String) -> Postings? {
        lock.lock(); defer { lock.unlock() }
        guard let e = entries[c], e.snapshot == snapshot else { return nil }
        return e.terms[term]
    }

    /// Keeps `p` for `term` if collection `c`'s entry is still the one of `snapshot`.
    func put(_ c: UInt32, snapshot: Int, term: String, _ p: Postings) {
        lock.lock(); defer { lock.unlock() }
        guard var e = entries[c], e.snapshot == snapshot, e.terms[term] == nil, p.rows.count <= capacity else { return }
        entries[c] = nil  // no second reference while `e` changes
        if total + p.rows.count > capacity {
            for key in entries.keys { entries[key]!.terms = [:]; entries[key]!.postings = 0 }
            e.terms = [:]
            e.postings = 0
            total = 0
        }
        e.terms[term] = p
        e.postings += p.rows.count
        total += p.rows.count
        entries[c] = e
    }
}

/// BM25 statistics of one collection at one LMDB snapshot: from `TextPostingsCache` where it holds
/// them, else read from LMDB (and cached). The protocol's calls cannot throw; the first storage
/// error is kept and rethrown by the caller after scoring, and a term that failed is not cached.
final class CachedTextStatistics: BM25Statistics {
    let number: UInt32
    let name: String
    let txn: LMDBTransaction
    let tables: Tables
    let cache: TextPostingsCache
    let snapshot: Int
    let documentCount: Int
    let totalTermCount: Int
    var failure: Error?
    /// This query's terms, so that `forEachPosting` does not look them up again.
    private var terms: [String: TextPostingsCache.Postings] = [:]

    init(number: UInt32, name: String, txn: LMDBTransaction, tables: Tables, cache: TextPostingsCache) throws {
        self.number = number
        self.name = name
        self.txn = txn
        self.tables = tables
        self.cache = cache
        snapshot = txn.id
        if let (n, total) = cache.totals(number, snapshot: snapshot) {
            (documentCount, totalTermCount) = (n, total)
        } else {
            let (n, total) = try TextIndexStore.stats(number, name: name, txn: txn, tables: tables)
            (documentCount, totalTermCount) = (Int(n), Int(total))
            cache.start(number, snapshot: snapshot, documentCount: documentCount, totalTermCount: totalTermCount)
        }
    }

    func documentFrequency(of term: String) -> Int {
        if let p = terms[term] { return p.df }
        if let p = cache.postings(number, snapshot: snapshot, term: term) {
            terms[term] = p
            return p.df
        }
        do {
            let p = try read(term)
            terms[term] = p
            cache.put(number, snapshot: snapshot, term: term, p)
            return p.df
        } catch {
            failure = failure ?? error
            return 0
        }
    }

    /// The rows are in LMDB's key order: ascending.
    func documentIDBounds(of term: String) -> ClosedRange<Int64>? {
        guard let p = terms[term], let first = p.rows.first, let last = p.rows.last else { return nil }
        return first...last
    }

    func forEachPosting(of term: String, _ body: (Int64, Int, Int) -> Void) {
        guard let p = terms[term] else { return }
        for i in p.rows.indices { body(p.rows[i], Int(p.termFrequencies[i]), Int(p.lengths[i])) }
    }

    /// `term`'s document frequency and postings from LMDB, checksums checked.
    private func read(_ term: String) throws -> TextPostingsCache.Postings {
        let df = Int(try TextIndexStore.documentFrequency(Keys.collection(number) + Array(term.utf8), collection: name, txn: txn, tables: tables))
        var rows: [Int64] = [], tfs: [UInt32] = [], lengths: [UInt32] = []
        if df > 0 {
            rows.reserveCapacity(df)
            tfs.reserveCapacity(df)
            lengths.reserveCapacity(df)
            let prefix = TextIndexStore.postingPrefix(number, term)
            try txn.forEach(tables.postings, prefix: prefix) { k, v in
                guard k.count == prefix.count + 8 else { return true }
                var row: UInt64 = 0
                for i in prefix.count..<k.count { row = row << 8 | UInt64(k[i]) }
                let (tf, length) = try TextIndexStore.posting(v, key: k, collection: name)
                rows.append(Int64(row))
                tfs.append(tf)
                lengths.append(length)
                return true
            }
        }
        return TextPostingsCache.Postings(df: df, rows: rows, termFrequencies: tfs, lengths: lengths)
    }
}
