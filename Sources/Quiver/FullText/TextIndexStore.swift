import QuiverCore
import QuiverStorage
import QuiverText

/*
 BM25 postings in LMDB (format 2; docs/file-formats.md has the same text), kept current in the same
 transaction as every write and delete of a document with text. Each value is the payload below
 followed by its checksum trailer (StoredValue, StorageLayout.swift).

 table       key                                        value (payload)
 terms       C ++ term (UTF-8)                          u64 LE document frequency
 postings    C ++ u16 BE term length ++ term ++ R       u32 LE term frequency, u32 LE document length
 text_stats  C                                          u64 LE documents with text, u64 LE total terms

 Terms come from the collection's analyzer (recorded in the catalog as `fullText.analyzer`).
*/

/// Full-text settings of a collection.
public struct FullTextSettings: Sendable, Codable, Equatable {
    /// The analyzer, by its identity string (`Analyzer.default.identity`).
    public var analyzer: String
    /// BM25 term-frequency saturation.
    public var k1: Double
    /// BM25 length normalization.
    public var b: Double

    /// English stop words, Porter2 stemming, k1 1.5, b 0.75: the best of the settings measured on
    /// SciFact (docs/benchmarks.md).
    public static let standard = FullTextSettings(analyzer: Analyzer.default.identity, k1: 1.5, b: 0.75)

    var analyzerValue: Analyzer {
        analyzer == Analyzer.plain.identity ? .plain : .default
    }
}

enum TextIndexStore {
    /// Drops collection `info`'s BM25 terms, postings and totals and builds them again from the
    /// stored documents' text (`repair`).
    static func rebuild(_ info: CollectionInfo, txn: LMDBTransaction, tables: Tables) throws {
        let c = info.number
        for table in [tables.terms, tables.postings] { try txn.deleteAll(table, prefix: Keys.collection(c)) }
        try txn.delete(tables.textStats, Keys.collection(c))
        guard let ft = info.fullText else { return }
        var texts: [(UInt64, String)] = []
        try txn.forEach(tables.documents, prefix: Keys.collection(c)) { k, v in
            let record = try DocumentRecord(stored: v, key: k, collection: info.name)
            if let t = record.text { texts.append((record.row, t)) }
            return true
        }
        for (row, text) in texts { try update(ft, number: c, name: info.name, row: row, text: text, remove: false, txn: txn, tables: tables) }
    }

    static func postingPrefix(_ c: UInt32, _ term: String) -> [UInt8] {
        let t = Array(term.utf8)
        return Keys.collection(c) + [UInt8(t.count >> 8), UInt8(t.count & 0xFF)] + t
    }

    /// The document frequency of `termKey` (C ++ term), 0 when not stored.
    static func documentFrequency(_ termKey: [UInt8], collection: String, txn: LMDBTransaction, tables: Tables) throws -> UInt64 {
        try txn.get(tables.terms, termKey).map { v in
            try ByteReader(try StoredValue.open(v, key: termKey, table: tables.terms, collection: collection)).readUInt64Value()
        } ?? 0
    }

    /// The term frequency and document length of a stored posting.
    static func posting(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, collection: String) throws -> (tf: UInt32, length: UInt32) {
        let v = try StoredValue.open(value, key: key, table: "postings", collection: collection)
        guard v.count == 8 else {
            throw StoredValue.damaged(table: "postings", key: key, collection: collection, detail: "it has \(v.count) bytes, expected 8")
        }
        let tf = UInt32(v[0]) | UInt32(v[1]) << 8 | UInt32(v[2]) << 16 | UInt32(v[3]) << 24
        let length = UInt32(v[4]) | UInt32(v[5]) << 8 | UInt32(v[6]) << 16 | UInt32(v[7]) << 24
        return (tf, length)
    }

    /// Adds (or removes) the postings of one document's text (`name`: the collection's, for errors).
    static func update(_ settings: FullTextSettings, number c: UInt32, name: String, row: UInt64, text: String, remove: Bool,
                       txn: LMDBTransaction, tables: Tables) throws {
        let terms = settings.analyzerValue.terms(text).filter { $0.utf8.count <= 256 }
        var frequencies: [String: Int] = [:]
        for t in terms { frequencies[t, default: 0] += 1 }
        let length = terms.count
        for (term, tf) in frequencies {
            let termKey = Keys.collection(c) + Array(term.utf8)
            var df = try documentFrequency(termKey, collection: name, txn: txn, tables: tables)
            let postingKey = postingPrefix(c, term) + Keys.row(c, row)[4...]
            if remove {
                guard try txn.delete(tables.postings, Array(postingKey)) else { continue }
                df -= 1
            } else {
                var w = ByteWriter(capacity: 8)
                w.write(UInt32(tf))
                w.write(UInt32(length))
                try txn.put(tables.postings, Array(postingKey), StoredValue.seal(w.bytes, key: Array(postingKey)))
                df += 1
            }
            if df == 0 { try txn.delete(tables.terms, termKey) } else {
                var w = ByteWriter(capacity: 8)
                w.write(df)
                try txn.put(tables.terms, termKey, StoredValue.seal(w.bytes, key: termKey))
            }
        }
        var (documents, total) = try stats(c, name: name, txn: txn, tables: tables)
        if remove {
            documents -= 1
            total -= UInt64(length)
        } else {
            documents += 1
            total += UInt64(length)
        }
        var w = ByteWriter(capacity: 16)
        w.write(documents)
        w.write(total)
        try txn.put(tables.textStats, Keys.collection(c), StoredValue.seal(w.bytes, key: Keys.collection(c)))
    }

    /// Collection `c`'s BM25 totals: documents with text, terms.
    static func stats(_ c: UInt32, name: String, txn: LMDBTransaction, tables: Tables) throws -> (UInt64, UInt64) {
        guard let bytes = try txn.get(tables.textStats, Keys.collection(c)) else { return (0, 0) }
        var r = ByteReader(try StoredValue.open(bytes, key: Keys.collection(c), table: tables.textStats, collection: name))
        return (try r.readUInt64(), try r.readUInt64())
    }
}
