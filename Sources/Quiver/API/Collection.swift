import QuiverCore
import QuiverStorage

/// A handle on one collection of a `Database`. Cheap to copy and `Sendable`; every call checks
/// that the collection still exists (a dropped collection gives `QuiverError.unknownCollection`).
///
/// Writes are batched: a batch is validated as a whole and then written as one log record and one
/// LMDB transaction, so a rejected batch writes nothing and an accepted one is all visible at once.
public struct Collection: Sendable {
    /// The database this collection lives in.
    public let database: Database
    /// The collection's description when this handle was made.
    public let info: CollectionInfo

    init(database: Database, info: CollectionInfo) {
        self.database = database
        self.info = info
    }

    /// The collection's name.
    public var name: String { info.name }

    /// Stores `documents`, replacing any stored under the same ids. Returns the number written.
    @discardableResult
    public func upsert(_ documents: [Document]) throws -> Int {
        try write(documents, insert: false)
    }

    /// Stores `documents`; an id that is already stored (or repeated in the batch) rejects the
    /// whole batch with `QuiverError.duplicateID`. Returns the number written.
    @discardableResult
    public func insert(_ documents: [Document]) throws -> Int {
        try write(documents, insert: true)
    }

    /// Stores one document, replacing any stored under its id.
    public func upsert(_ document: Document) throws { try write([document], insert: false) }

    /// Stores one new document.
    public func insert(_ document: Document) throws { try write([document], insert: true) }

    /// Validates, encodes and writes a batch; with a checkpoint, an import's resume point is stored
    /// in the same log record and LMDB transaction (and the batch may be empty).
    ///
    /// Everything that can be checked without a vector is checked before anything is embedded, so a
    /// batch that will be refused costs no encoding; the checks under the writer lock stay the
    /// authoritative ones. A document with both text and a vector is written as given.
    @discardableResult
    func write(_ given: [Document], insert: Bool, checkpoint: LogRecord.Checkpoint? = nil) throws -> Int {
        if given.isEmpty && checkpoint == nil { return 0 }
        // Validation of the documents themselves, and encoding, need no storage: both happen before
        // the writer lock is taken, so a slow encoder does not hold up other writers.
        var seen = Set<String>(minimumCapacity: given.count)
        var needText: [Int] = []
        for (i, d) in given.enumerated() {
            try Validation.document(d, index: i)
            if d.vector == nil {
                guard info.encoder != nil else { throw QuiverError.missingVector(collection: name, id: d.id, index: i) }
                guard d.text != nil else { throw QuiverError.missingVectorAndText(collection: name, id: d.id, index: i) }
                needText.append(i)
            }
            if !seen.insert(d.id).inserted { throw QuiverError.duplicateID(collection: name, id: d.id, index: i) }
        }
        var documents = given
        if !needText.isEmpty {
            // The same checks, in the same order, as below, on what can be known before embedding:
            // the first refusal is the one the write would report (unless the encoder itself makes a
            // bad vector, which the checks after encoding still catch).
            if let first = try screen(given, insert: insert).min(by: { ($0.stage, $0.index) < ($1.stage, $1.index) }) {
                throw first.error
            }
            try embed(&documents, needText)
        }
        for (i, d) in documents.enumerated() {
            try Validation.vector(d.vector!, collection: name, dimension: info.dimension, id: d.id, index: i)
        }
        return try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            try StorageLimits.check(documents, info: current, checkpoint: checkpoint)
            if insert {
                for (i, d) in documents.enumerated() where try txn.contains(database.tables.documents, Keys.document(info.number, d.id)) {
                    throw QuiverError.duplicateID(collection: name, id: d.id, index: i)
                }
            }
            return (.write(number: info.number, insert: insert, documents: documents, checkpoint: checkpoint), documents.count)
        }
    }

    /// A document `write` would refuse, with the first check it fails. `stage` orders the checks as
    /// `write` runs them: 0 the document itself (id, text, metadata, a vector or text to embed, an id
    /// repeated in the batch), 1 a given vector, 2 the storage's key limits, 3 an id already stored
    /// (insert only).
    struct Refusal {
        var index: Int
        var stage: Int
        var error: QuiverError
    }

    /// Every document of `documents` that a write would refuse, found without embedding: each with
    /// the first check it fails, in batch order. Reads the stored state in a snapshot without the
    /// writer lock (so a concurrent write can still make `write` refuse a document this passed, never
    /// the reverse for the document checks; the write's own checks under the lock decide).
    /// Like `write`, an id repeated in the batch is refused at its second (passing) occurrence.
    func screen(_ documents: [Document], insert: Bool) throws -> [Refusal] {
        var refused: [Refusal] = []
        var seen = Set<String>(minimumCapacity: documents.count)
        var survivors: [Int] = []
        for (i, d) in documents.enumerated() {
            do {
                try Validation.document(d, index: i)
                if d.vector == nil && (info.encoder == nil || d.text == nil) {
                    throw QuiverError.missingVector(collection: name, id: d.id, index: i)
                }
                if !seen.insert(d.id).inserted { throw QuiverError.duplicateID(collection: name, id: d.id, index: i) }
                survivors.append(i)
            } catch let e as QuiverError {
                refused.append(Refusal(index: i, stage: 0, error: e))
            }
        }
        var later: [Int] = []
        for i in survivors {
            let d = documents[i]
            if let v = d.vector {
                do { try Validation.vector(v, collection: name, dimension: info.dimension, id: d.id, index: i) } catch let e as QuiverError {
                    refused.append(Refusal(index: i, stage: 1, error: e))
                    continue
                }
            }
            later.append(i)
        }
        if !later.isEmpty {
            try database.readTransaction { txn in
                let current = try database.info(name, txn: txn)
                guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
                for i in later {
                    let d = documents[i]
                    do { try StorageLimits.check(d, index: i, info: current) } catch let e as QuiverError {
                        refused.append(Refusal(index: i, stage: 2, error: e))
                        continue
                    }
                    if insert, try txn.contains(database.tables.documents, Keys.document(info.number, d.id)) {
                        refused.append(Refusal(index: i, stage: 3, error: QuiverError.duplicateID(collection: name, id: d.id, index: i)))
                    }
                }
            }
        }
        return refused.sorted { $0.index < $1.index }
    }

    /// Embeds the texts of `documents[indices]` (documents without a vector) with the collection's
    /// encoder, in one call, and stores the vectors on the documents.
    func embed(_ documents: inout [Document], _ indices: [Int]) throws {
        if indices.isEmpty { return }
        let encoder = try database.encoder(for: info)
        let t = monotonicSeconds()
        let vectors = try encode(indices.map { documents[$0].text! }, with: encoder, queries: false)
        let spent = monotonicSeconds() - t
        database.timingsRecorder.add { $0.encodingSeconds += spent }
        guard vectors.rows == indices.count else {
            throw QuiverError.encoder("the text encoder returned \(vectors.rows) vectors for \(indices.count) texts")
        }
        for (row, i) in indices.enumerated() { documents[i].vector = vectors[row: row] }
    }

    /// Deletes the documents with these ids; ids that are not stored are ignored. Returns the number deleted.
    @discardableResult
    public func delete(ids: [String]) throws -> Int {
        if ids.isEmpty { return 0 }
        for (i, id) in ids.enumerated() { try Validation.documentID(id, index: i) }
        return try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            var unique: [String] = []
            var seen = Set<String>()
            for id in ids where seen.insert(id).inserted {
                if try txn.contains(database.tables.documents, Keys.document(info.number, id)) { unique.append(id) }
            }
            return (.delete(number: info.number, ids: unique), unique.count)
        }
    }

    /// The ids of the documents whose metadata matches `filter` (payload indexes bound the search
    /// where they can), in byte order. A filter naming a field no document has, or comparing a
    /// field with a type it never holds, is an error unless `allowUnknownFields`.
    public func ids(matching filter: Filter, allowUnknownFields: Bool = false) throws -> [String] {
        guard let rows = try allowedSet(filter, allowUnknownFields: allowUnknownFields)?.set else { return try ids() }
        return try database.readTransaction { txn in
            var out: [String] = []
            try rows.forEach { row in
                if let id = try RowCodec.read(info.number, UInt64(row), collection: name, txn: txn, tables: database.tables) {
                    out.append(id)
                }
            }
            return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
    }

    /// Deletes the documents whose metadata matches `filter`, in batches of 10,000 (each atomic).
    /// Returns the number deleted.
    @discardableResult
    public func delete(matching filter: Filter, allowUnknownFields: Bool = false) throws -> Int {
        let ids = try ids(matching: filter, allowUnknownFields: allowUnknownFields)
        var deleted = 0
        var start = 0
        while start < ids.count {
            deleted += try delete(ids: Array(ids[start..<min(start + 10_000, ids.count)]))
            start += 10_000
        }
        return deleted
    }

    /// Deletes one document; returns whether it was stored.
    @discardableResult
    public func delete(id: String) throws -> Bool { try delete(ids: [id]) == 1 }

    /// The document stored under `id`, with its text, metadata and vector, or nil.
    public func get(_ id: String) throws -> Document? {
        try get(ids: [id])[0]
    }

    /// The documents stored under `ids`, in order (nil where none is stored), from one snapshot.
    public func get(ids: [String]) throws -> [Document?] {
        try database.readTransaction { txn in
            try checkExists(txn)
            return try ids.map { id in
                let key = Keys.document(info.number, id)
                guard let bytes = try txn.get(database.tables.documents, key) else { return nil }
                let record = try DocumentRecord(stored: bytes, key: key, collection: name)
                guard let vector = try vectorTable.read(record.row, txn: txn) else {
                    throw StorageError(.corrupt, "collection '\(name)': document '\(id)' has no stored vector; run `quiver verify`")
                }
                return Document(id: id, text: record.text, metadata: record.metadata, vector: vector)
            }
        }
    }

    /// The number of documents.
    public func count() throws -> Int {
        try database.readTransaction { txn in
            try checkExists(txn)
            return Int(try Counters.read(info.number, collection: name, txn: txn, tables: database.tables)?.liveDocuments ?? 0)
        }
    }

    /// Every document id, in byte order (for export and verification).
    public func ids() throws -> [String] {
        try database.readTransaction { txn in
            try checkExists(txn)
            var out: [String] = []
            try txn.forEach(database.tables.documents, prefix: Keys.collection(info.number)) { k, v in
                // The key's bytes are covered by the value's checksum: a damaged id is not listed as real.
                _ = try StoredValue.open(v, key: k, table: "documents", collection: name)
                out.append(String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self))
                return true
            }
            return out
        }
    }

    /// Declares a payload index on metadata `field`, built now over the stored documents and kept
    /// current by every write. Filtered searches use it to find the matching documents without
    /// reading every document. Declaring an existing index again is a no-op; another type for the
    /// same field is an error.
    public func createPayloadIndex(_ field: String, type: PayloadIndexType) throws {
        guard !field.isEmpty, field.utf8.count <= 1_024 else { throw QuiverError.invalidArgument("a payload index needs a field name of 1 to 1024 bytes") }
        try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            if let existing = current.payloadIndexes?.first(where: { $0.field == field }), existing.type != type {
                throw QuiverError.invalidArgument("field '\(field)' of '\(name)' already has a \(existing.type.rawValue) index")
            }
            return (.createPayloadIndex(number: info.number, spec: PayloadIndexSpec(field: field, type: type)), ())
        }
    }

    func checkExists(_ txn: LMDBTransaction) throws {
        guard try database.info(name, txn: txn).number == info.number else { throw QuiverError.unknownCollection(name) }
    }
}
