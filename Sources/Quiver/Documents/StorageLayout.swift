import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage

/*
 LMDB layout of a Quiver database (format 2; docs/file-formats.md has the same text, byte by byte).
 Integers in keys are big-endian, so that LMDB's bytewise order is numeric order; integers in values
 are little-endian. `C` is a collection's number (u32, never reused), `R` a row id (u64, assigned
 from 1 per collection, a fresh one for every stored vector, never reused).

 table        key                         value (payload; see "checked values" below)
 meta         "format"                    u32 LE: 2 (not checked: any version must read it)
              "applied_seq"               u64 LE: sequence number of the last WAL record applied
              "next_collection"           u32 LE: the number the next collection gets
 catalog      collection name (UTF-8)     JSON object of CollectionInfo (see CollectionInfo)
 counters     C                           u64 LE live documents, u64 LE next row id
 documents    C ++ document id (UTF-8)    DocumentRecord (below)
 vectors      C ++ R [++ u8 piece]        dimension x f32 LE, as written (not normalized), in
                                          CollectionInfo.vectorPieces values (VectorTable.swift)
 rows         C ++ R                      document id (UTF-8)
 imports      C ++ input path (UTF-8)     JSON object of ImportCheckpoint: the resume point of an import
              (a path over 400 bytes: its first 400 bytes ++ 0x00 ++ its SHA-256)
 fields       FieldCatalog.swift
 segments, segment_state                  SegmentManifest.swift
 terms, postings, text_stats              TextIndexStore.swift
 adapters     C ++ adapter name (UTF-8)   query adapter (Tuning/AdapterStore.swift)
 payload      PayloadIndex.swift          empty (not checked: the key is the entry; verify
                                          recomputes every entry from the documents)

 Checked values (format 2): every value of catalog, counters, documents, vectors, rows, imports,
 segments, segment_state, terms, postings, text_stats, fields and adapters is its payload followed by a u32 LE
 CRC-32C of the key's bytes followed by the payload's bytes (StoredValue). A value whose trailer
 does not match (a flipped bit in the key or the value, a value under another key) is an error
 where it is read, naming the collection and the document or row, and a finding of verify. Format
 1 stored the payloads alone; `FormatUpgrade` appends the trailers at the first writable open.

 DocumentRecord: u8 version (1), u64 LE row id, u8 flags (bit 0: has text; bit 1: text is a zstd
 frame), if has text: varint length + bytes (UTF-8, or a zstd frame of UTF-8), then the metadata
 encoding of MetadataCodec.
*/

/// The LMDB tables of a database, with the in-memory lookup of catalog entries by collection number
/// that serves reads of them (`CatalogCache`, checked against every snapshot it serves).
struct Tables: Sendable {
    let catalogByNumber = CatalogCache()
    let meta: LMDBTable
    let catalog: LMDBTable
    let counters: LMDBTable
    let documents: LMDBTable
    let vectors: LMDBTable
    let rows: LMDBTable
    let segments: LMDBTable
    let segmentState: LMDBTable
    let imports: LMDBTable
    let payload: LMDBTable
    let terms: LMDBTable
    let postings: LMDBTable
    let textStats: LMDBTable
    let fields: LMDBTable
    let adapters: LMDBTable

    init(_ env: LMDBEnvironment) throws {
        meta = try env.table("meta")
        catalog = try env.table("catalog")
        counters = try env.table("counters")
        documents = try env.table("documents")
        vectors = try env.table("vectors")
        rows = try env.table("rows")
        segments = try env.table("segments")
        segmentState = try env.table("segment_state")
        imports = try env.table("imports")
        payload = try env.table("payload")
        terms = try env.table("terms")
        postings = try env.table("postings")
        textStats = try env.table("text_stats")
        fields = try env.table("fields")
        adapters = try env.table("adapters")
    }
}

/// The `meta` table's entries (the layout above): their keys, and their reads and writes.
enum Meta {
    static let formatKey = Array("format".utf8)
    static let appliedSequenceKey = Array("applied_seq".utf8)
    static let nextCollectionKey = Array("next_collection".utf8)

    /// The format marker (nil: none), read from the `meta` table alone: an older format may lack
    /// tables of this one.
    static func format(txn: LMDBTransaction, meta: LMDBTable) throws -> UInt32? {
        try txn.get(meta, formatKey).map { try ByteReader($0).readUInt32Value() }
    }

    static func setFormat(_ format: UInt32, txn: LMDBTransaction, tables: Tables) throws {
        try txn.put(tables.meta, formatKey, withUnsafeBytes(of: format.littleEndian) { Array($0) })
    }

    /// The sequence number of the last log record applied to LMDB (0: none).
    static func appliedSequence(txn: LMDBTransaction, tables: Tables) throws -> UInt64 {
        try txn.get(tables.meta, appliedSequenceKey).map { try ByteReader($0).readUInt64Value() } ?? 0
    }

    static func setAppliedSequence(_ sequence: UInt64, txn: LMDBTransaction, tables: Tables) throws {
        try txn.put(tables.meta, appliedSequenceKey, withUnsafeBytes(of: sequence.littleEndian) { Array($0) })
    }

    /// The number the next collection gets (1 in a new database).
    static func nextCollection(txn: LMDBTransaction, tables: Tables) throws -> UInt32 {
        try txn.get(tables.meta, nextCollectionKey).map { try ByteReader($0).readUInt32Value() } ?? 1
    }

    static func setNextCollection(_ number: UInt32, txn: LMDBTransaction, tables: Tables) throws {
        try txn.put(tables.meta, nextCollectionKey, withUnsafeBytes(of: number.littleEndian) { Array($0) })
    }
}

/// Key builders for the layout above.
enum Keys {
    static func collection(_ c: UInt32) -> [UInt8] { withUnsafeBytes(of: c.bigEndian) { Array($0) } }

    /// The collection number a key starts with (0 for a key shorter than 4 bytes).
    static func collectionNumber(_ key: [UInt8]) -> UInt32 {
        key.count < 4 ? 0 : key[..<4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func document(_ c: UInt32, _ id: String) -> [UInt8] { collection(c) + Array(id.utf8) }

    static func row(_ c: UInt32, _ r: UInt64) -> [UInt8] { collection(c) + withUnsafeBytes(of: r.bigEndian) { Array($0) } }

    /// Input paths up to this many UTF-8 bytes key the `imports` table as they are.
    static let maxInlineImportPathBytes = 400

    /// The `imports` key of an input path: C ++ the path, or for a longer path C ++ its first 400
    /// bytes ++ 0x00 ++ its SHA-256 (32 bytes; a path holds no NUL), at most 437 bytes in all. The
    /// value names the whole path, which a resume compares.
    static func importKey(_ c: UInt32, path: String) -> [UInt8] {
        let p = Array(path.utf8)
        if p.count <= maxInlineImportPathBytes { return collection(c) + p }
        return collection(c) + p[..<maxInlineImportPathBytes] + [0] + SHA256.digest(p)
    }

    /// The row id of a `vectors`/`rows` key.
    static func rowID(of key: UnsafeRawBufferPointer) -> UInt64 {
        var r: UInt64 = 0
        for i in 4..<12 { r = r << 8 | UInt64(key[i]) }
        return r
    }
}

/// A per-collection value of two u64 LE under the key C, sealed as every stored value (`StoredValue`):
/// `Counters` (table `counters`) and `SegmentState` (table `segment_state`).
protocol CollectionValuePair {
    init(_ first: UInt64, _ second: UInt64)
    var pair: (UInt64, UInt64) { get }
}

extension CollectionValuePair {
    /// The stored value of collection `c`.
    func stored(_ c: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 20)
        w.write(pair.0)
        w.write(pair.1)
        return StoredValue.seal(w.bytes, key: Keys.collection(c))
    }

    /// Decodes collection `c`'s stored value of `table` (`collection` names it in errors).
    init(stored value: [UInt8], _ c: UInt32, table: LMDBTable, collection: String) throws {
        var r = ByteReader(try StoredValue.open(value, key: Keys.collection(c), table: table, collection: collection))
        let first = try r.readUInt64()
        self.init(first, try r.readUInt64())
    }

    /// Collection `c`'s value in `table` of `txn`, or nil when it has none.
    static func read(_ c: UInt32, table: LMDBTable, collection: String, txn: LMDBTransaction) throws -> Self? {
        try txn.get(table, Keys.collection(c)).map { try Self(stored: $0, c, table: table, collection: collection) }
    }
}

/// Per-collection counters.
struct Counters: Equatable, CollectionValuePair {
    var liveDocuments: UInt64
    var nextRow: UInt64

    /// A new collection's counters: no documents, row ids from 1.
    init(_ liveDocuments: UInt64 = 0, _ nextRow: UInt64 = 1) { (self.liveDocuments, self.nextRow) = (liveDocuments, nextRow) }

    var pair: (UInt64, UInt64) { (liveDocuments, nextRow) }

    /// Reads collection `c`'s counters from `txn` (nil when it has none).
    static func read(_ c: UInt32, collection: String, txn: LMDBTransaction, tables: Tables) throws -> Counters? {
        try read(c, table: tables.counters, collection: collection, txn: txn)
    }
}

/// A stored document without its vector.
struct DocumentRecord {
    var row: UInt64
    var text: String?
    var metadata: Metadata

    static let hasText: UInt8 = 1
    static let compressed: UInt8 = 2

    /// The stored value of this record under document key `key`.
    func stored(key: [UInt8], compressionThreshold: Int) throws -> [UInt8] {
        StoredValue.seal(try encode(compressionThreshold: compressionThreshold), key: key)
    }

    private func encode(compressionThreshold: Int) throws -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt8(1))
        w.write(row)
        if let text = text {
            let utf8 = Array(text.utf8)
            if utf8.count > compressionThreshold {
                let frame = try Zstd.compress(utf8)
                if frame.count < utf8.count {
                    w.write(DocumentRecord.hasText | DocumentRecord.compressed)
                    w.writeBlob(frame)
                } else {
                    w.write(DocumentRecord.hasText)
                    w.writeBlob(utf8)
                }
            } else {
                w.write(DocumentRecord.hasText)
                w.writeBlob(utf8)
            }
        } else {
            w.write(UInt8(0))
        }
        MetadataCodec.encode(metadata, into: &w)
        return w.bytes
    }

    /// Decodes the stored value `value` of document key `key` of collection `collection` (its
    /// name, for errors); `withText: false` skips decompressing the text. A damaged value throws.
    init(stored value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, collection: String, withText: Bool = true) throws {
        let payload = try StoredValue.open(value, key: key, table: "documents", collection: collection)
        do {
            try self.init(payload: Array(payload), withText: withText)
        } catch {
            throw StoredValue.damaged(table: "documents", key: key, collection: collection, detail: "it does not decode: \(error)")
        }
    }

    init(stored value: [UInt8], key: [UInt8], collection: String, withText: Bool = true) throws {
        self = try value.withUnsafeBytes { v in
            try key.withUnsafeBytes { k in try DocumentRecord(stored: v, key: k, collection: collection, withText: withText) }
        }
    }

    private init(payload bytes: [UInt8], withText: Bool) throws {
        var r = ByteReader(bytes)
        let version = try r.readUInt8()
        guard version == 1 else { throw CodecError("unknown document record version \(version)", offset: 0) }
        row = try r.readUInt64()
        let flags = try r.readUInt8()
        text = nil
        if flags & DocumentRecord.hasText != 0 {
            let blob = try r.readBlob()
            if withText {
                let utf8 = flags & DocumentRecord.compressed != 0 ? try Zstd.decompress(blob, maxSize: Limits.maxTextBytes) : blob
                guard let s = String(validating: utf8, as: UTF8.self) else { throw CodecError("stored text is not UTF-8", offset: 0) }
                text = s
            }
        }
        metadata = try MetadataCodec.decode(&r)
    }

    init(row: UInt64, text: String?, metadata: Metadata) {
        self.row = row
        self.text = text
        self.metadata = metadata
    }
}

/// Vectors as stored: little-endian float32, then the checksum trailer.
enum VectorCodec {
    /// The stored value of vector `v` under row key `key`.
    static func stored(_ v: [Float], key: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: v.count * 4 + 4)
        w.write(floats: v)
        return StoredValue.seal(w.bytes, key: key)
    }

    /// Copies the stored vector `value` of row key `key` into `out` (which must hold `dimension`
    /// floats). A damaged value throws, naming `collection` and the row.
    static func decode(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, collection: String, dimension: Int,
                       into out: UnsafeMutablePointer<Float>) throws {
        let bytes = try StoredValue.open(value, key: key, table: "vectors", collection: collection)
        guard bytes.count == dimension * 4 else {
            throw StoredValue.damaged(table: "vectors", key: key, collection: collection,
                                      detail: "it has \(bytes.count) bytes, expected \(dimension * 4)")
        }
        // The host is little-endian (x86-64, arm64); a memcpy is the decode. LMDB values are not
        // necessarily 4-byte aligned, which is why this copies instead of binding memory.
        UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    static func decode(_ value: UnsafeRawBufferPointer, key: [UInt8], collection: String, dimension: Int,
                       into out: UnsafeMutablePointer<Float>) throws {
        try key.withUnsafeBytes { try decode(value, key: $0, collection: collection, dimension: dimension, into: out) }
    }

    static func decode(_ value: UnsafeRawBufferPointer, key: [UInt8], collection: String, dimension: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        try out.withUnsafeMutableBufferPointer { try decode(value, key: key, collection: collection, dimension: dimension, into: $0.baseAddress!) }
        return out
    }
}

/// The `rows` table's values: the document id of a row.
enum RowCodec {
    static func stored(_ id: String, key: [UInt8]) -> [UInt8] { StoredValue.seal(Array(id.utf8), key: key) }

    /// The document id of row `row` of collection `c`, or nil when the row is not stored.
    static func read(_ c: UInt32, _ row: UInt64, collection: String, txn: LMDBTransaction, tables: Tables) throws -> String? {
        let key = Keys.row(c, row)
        return try txn.withValue(tables.rows, key) { value in
            try value.map { v in try key.withUnsafeBytes { try decode(v, key: $0, collection: collection) } }
        }
    }

    static func decode(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, collection: String) throws -> String {
        let payload = try StoredValue.open(value, key: key, table: "rows", collection: collection)
        guard let id = String(validating: payload, as: UTF8.self) else {
            throw StoredValue.damaged(table: "rows", key: key, collection: collection, detail: "the document id is not UTF-8")
        }
        return id
    }
}

/// The checksum trailer of format-2 values: every value of the checked tables (see the layout
/// above) is its payload followed by a u32 LE CRC-32C of the key's bytes and then the payload's.
/// Every writer seals and every reader opens through here; the per-kind codecs above and in
/// SegmentManifest.swift and TextIndexStore.swift call it, so no reader can skip the check.
enum StoredValue {
    static func checksum(key: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.update(CRC32C.update(0, key), payload)
    }

    /// `payload` with its trailer, to be stored under `key`.
    static func seal(_ payload: [UInt8], key: [UInt8]) -> [UInt8] {
        let crc = key.withUnsafeBytes { k in payload.withUnsafeBytes { checksum(key: k, payload: $0) } }
        var out = payload
        out.reserveCapacity(payload.count + 4)
        withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// The payload of `value`, stored under `key` in `table` of collection `collection` (its name, or
    /// a description, for the error); throws when the trailer does not match.
    static func open(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, table: String, collection: String) throws -> UnsafeRawBufferPointer {
        if let payload = intactPayload(value, key: key) { return payload }
        throw damaged(table: table, key: key, collection: collection, detail: damage(value))
    }

    /// The payload of `value` when its trailer matches, else nil.
    static func intactPayload(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let n = value.count
        guard n >= 4 else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: value[0..<(n - 4)])
        let stored = UInt32(value[n - 4]) | UInt32(value[n - 3]) << 8 | UInt32(value[n - 2]) << 16 | UInt32(value[n - 1]) << 24
        return stored == checksum(key: key, payload: payload) ? payload : nil
    }

    /// What is wrong with a value whose trailer does not match.
    static func damage(_ value: UnsafeRawBufferPointer) -> String {
        value.count < 4 ? "it is \(value.count) bytes long, shorter than its checksum" : "its checksum does not match"
    }

    static func open(_ value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, table: LMDBTable, collection: String) throws -> UnsafeRawBufferPointer {
        try open(value, key: key, table: table.name, collection: collection)
    }

    /// The payload of `value` stored under `key`, copied.
    static func open(_ value: [UInt8], key: [UInt8], table: String, collection: String) throws -> [UInt8] {
        try value.withUnsafeBytes { v in try key.withUnsafeBytes { k in Array(try open(v, key: k, table: table, collection: collection)) } }
    }

    static func open(_ value: [UInt8], key: [UInt8], table: LMDBTable, collection: String) throws -> [UInt8] {
        try open(value, key: key, table: table.name, collection: collection)
    }

    /// The error for a damaged value: names the collection and what the key identifies.
    static func damaged(table: String, key: UnsafeRawBufferPointer, collection: String, detail: String) -> StorageError {
        StorageError(.corrupt, "collection '\(collection)': the stored \(describe(table: table, key: key)) is damaged (\(detail)); run `quiver verify` to list every damaged value")
    }

    static func damaged(table: String, key: [UInt8], collection: String, detail: String) -> StorageError {
        key.withUnsafeBytes { damaged(table: table, key: $0, collection: collection, detail: detail) }
    }

    /// What the key of a value of `table` identifies, in words.
    static func describe(table: String, key: UnsafeRawBufferPointer) -> String {
        func text(from i: Int) -> String { i <= key.count ? String(decoding: UnsafeRawBufferPointer(rebasing: key[i...]), as: UTF8.self) : "" }
        func row(at i: Int) -> String {
            guard i >= 0, key.count >= i + 8 else { return "?" }
            var r: UInt64 = 0
            for j in i..<(i + 8) { r = r << 8 | UInt64(key[j]) }
            return String(r)
        }
        switch table {
        case "documents": return "document '\(text(from: 4))'"
        case "vectors": return key.count == 13 ? "piece \(key[12]) of the vector of row \(row(at: 4))" : "vector of row \(row(at: 4))"
        case "rows": return "document id of row \(row(at: 4))"
        case "catalog": return "catalog entry"
        case "counters": return "document counters"
        case "imports": return "import checkpoint of \(text(from: 4))"
        case "segments": return "manifest record of segment \(row(at: 4))"
        case "segment_state": return "segment state"
        case "terms": return "BM25 document frequency of term '\(text(from: 4))'"
        case "postings": return "BM25 posting of row \(row(at: key.count - 8))"
        case "text_stats": return "BM25 totals"
        case "adapters": return "query adapter '\(text(from: 4))'"
        default: return "value of table '\(table)'"
        }
    }

    /// The tables whose values carry the trailer.
    static func checkedTables(_ t: Tables) -> [LMDBTable] {
        [t.catalog, t.counters, t.documents, t.vectors, t.rows, t.imports, t.segments, t.segmentState, t.terms, t.postings, t.textStats, t.fields, t.adapters]
    }
}

/// The upgrade of a format-1 database to format 2, run at the first writable open in the same LMDB
/// transaction that changes `meta` `format` to 2: one transaction, so a crash leaves either the
/// format-1 database untouched or the whole upgrade, and no value is ever of an unknown format.
/// Format-1 values are format-2 payloads, so each value gets its trailer appended.
enum FormatUpgrade {
    /// Rewrites every value of the checked tables with its trailer and sets the format to 2. Returns
    /// the number of values rewritten.
    static func toFormat2(txn: LMDBTransaction, tables: Tables) throws -> Int {
        var rewritten = 0
        for table in StoredValue.checkedTables(tables) {
            var from: [UInt8]? = nil
            while true {
                // Chunks of up to 4,096 values: read, then rewritten (a cursor walk must not write).
                var chunk: [([UInt8], [UInt8])] = []
                try txn.forEach(table, from: from) { k, v in
                    chunk.append((Array(k), Array(v)))
                    return chunk.count < 4_096
                }
                for (k, v) in chunk { try txn.put(table, k, StoredValue.seal(v, key: k)) }
                rewritten += chunk.count
                guard chunk.count == 4_096, let last = chunk.last?.0 else { break }
                from = last + [0]
            }
        }
        try Meta.setFormat(2, txn: txn, tables: tables)
        return rewritten
    }
}

extension CollectionInfo {
    static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .secondsSince1970
        return e
    }()

    static let jsonDecoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .secondsSince1970
        return d
    }()

    /// The JSON of the description (the payload of the `catalog` value and of a create-collection
    /// log record).
    func encoded() throws -> [UInt8] { Array(try CollectionInfo.jsonEncoder.encode(self)) }

    init(encoded bytes: [UInt8]) throws {
        self = try CollectionInfo.jsonDecoder.decode(CollectionInfo.self, from: Data(bytes))
        if let p = vectorPieces, !(1...VectorTable.maxPieces).contains(p) || p > dimension {
            throw CodecError("vectorPieces \(p) is outside 1...\(min(VectorTable.maxPieces, dimension))", offset: 0)
        }
    }

    /// The stored `catalog` value (the key is the name).
    func stored() throws -> [UInt8] { StoredValue.seal(try encoded(), key: Array(name.utf8)) }

    /// Decodes the stored `catalog` value `value` of key `key` (the collection's name).
    init(stored value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) throws {
        let name = String(decoding: key, as: UTF8.self)
        let payload = try StoredValue.open(value, key: key, table: "catalog", collection: name)
        do {
            try self.init(encoded: Array(payload))
        } catch {
            throw StoredValue.damaged(table: "catalog", key: key, collection: name, detail: "it does not decode: \(error)")
        }
    }

    init(stored value: [UInt8], key: [UInt8]) throws {
        self = try value.withUnsafeBytes { v in try key.withUnsafeBytes { k in try CollectionInfo(stored: v, key: k) } }
    }
}
