import QuiverCore
import QuiverStorage

/// The checks every write passes before anything is logged. Each failure names the record.
enum Validation {
    static func collectionName(_ name: String) throws {
        if name.isEmpty { throw QuiverError.invalidCollectionName(name, reason: "it is empty") }
        if name.utf8.count > Limits.maxCollectionNameBytes {
            throw QuiverError.invalidCollectionName(name, reason: "it is longer than \(Limits.maxCollectionNameBytes) bytes")
        }
        let allowed = name.unicodeScalars.allSatisfy { s in
            (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "-" || s == "."
        }
        if !allowed || name.hasPrefix(".") {
            throw QuiverError.invalidCollectionName(name, reason: "use letters, digits, '_', '-' and '.', not starting with '.'")
        }
    }

    static func dimension(_ d: Int) throws {
        if d < 1 || d > Limits.maxDimension { throw QuiverError.invalidDimension(d) }
    }

    static func documentID(_ id: String, index: Int) throws {
        if id.isEmpty { throw QuiverError.invalidDocumentID(id: id, index: index, reason: "it is empty") }
        if id.utf8.count > Limits.maxIDBytes {
            throw QuiverError.invalidDocumentID(id: id, index: index, reason: "it is \(id.utf8.count) bytes long; the limit is \(Limits.maxIDBytes)")
        }
        if id.utf8.contains(0) { throw QuiverError.invalidDocumentID(id: id, index: index, reason: "it contains a NUL character") }
    }

    static func vector(_ v: [Float], collection: String, dimension: Int, id: String, index: Int) throws {
        if v.count != dimension {
            throw QuiverError.dimensionMismatch(collection: collection, id: id, index: index, expected: dimension, actual: v.count)
        }
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw QuiverError.nonFiniteVector(collection: collection, id: id, index: index, component: bad)
        }
    }

    static func document(_ d: Document, index: Int) throws {
        try documentID(d.id, index: index)
        if let t = d.text, t.utf8.count > Limits.maxTextBytes {
            throw QuiverError.documentTooLarge(id: d.id, index: index, reason: "its text is \(t.utf8.count) bytes; the limit is \(Limits.maxTextBytes)")
        }
        try metadata(d.metadata, id: d.id, index: index)
    }

    static func metadata(_ m: Metadata, id: String, index: Int) throws {
        if m.count > Limits.maxMetadataKeys {
            throw QuiverError.invalidMetadata(id: id, index: index, reason: "\(m.count) keys; the limit is \(Limits.maxMetadataKeys)")
        }
        var bytes = 0
        for (key, value) in m {
            if key.isEmpty { throw QuiverError.invalidMetadata(id: id, index: index, reason: "an empty key") }
            bytes += key.utf8.count
            switch value {
            case .string(let s): bytes += s.utf8.count
            case .stringList(let l):
                if l.count > Limits.maxListItems {
                    throw QuiverError.invalidMetadata(id: id, index: index, reason: "the list '\(key)' has \(l.count) items; the limit is \(Limits.maxListItems)")
                }
                bytes += l.reduce(0) { $0 + $1.utf8.count + 1 }
            case .double(let d) where !d.isFinite:
                throw QuiverError.invalidMetadata(id: id, index: index, reason: "the value of '\(key)' is NaN or infinite")
            default: bytes += 8
            }
        }
        if bytes > Limits.maxMetadataBytes {
            throw QuiverError.invalidMetadata(id: id, index: index, reason: "about \(bytes) bytes; the limit is \(Limits.maxMetadataBytes)")
        }
    }
}

/// The limits of the storage itself (LMDB's key size, the log's record size), checked for every
/// mutation before it is logged: a record that is logged must be able to apply, or every later
/// write and every open would replay it and fail the same way. Writes and imports both pass here
/// (`Collection.write` for documents, `Database.write` for the logged record as a whole).
enum StorageLimits {
    /// LMDB's largest key (MDB_MAXKEYSIZE of Debian's liblmdb).
    static let maxKeyBytes = 511

    /// Checks every LMDB key that writing `documents` into collection `info` would create.
    static func check(_ documents: [Document], info: CollectionInfo, checkpoint: LogRecord.Checkpoint?) throws {
        for (i, d) in documents.enumerated() { try check(d, index: i, info: info) }
        if let k = checkpoint?.key, k.count > maxKeyBytes {
            throw QuiverError.invalidArgument("the import's resume key is \(k.count) bytes; the storage limit is \(maxKeyBytes)")
        }
    }

    /// Checks the LMDB keys of one document, record `index` of its batch (needs no vector, so
    /// writes run it before embedding as well as under the writer lock).
    static func check(_ d: Document, index i: Int, info: CollectionInfo) throws {
        let c = info.number
        let key = Keys.document(c, d.id).count
        if key > maxKeyBytes {
            throw QuiverError.invalidDocumentID(id: d.id, index: i, reason: "its key is \(key) bytes; the storage limit is \(maxKeyBytes)")
        }
        for spec in info.payloadIndexes ?? [] where d.metadata[spec.field] != nil {
            for k in PayloadIndexing.keys([spec], number: c, row: .max, metadata: d.metadata) where k.count > maxKeyBytes {
                throw QuiverError.invalidMetadata(id: d.id, index: i, reason: "the \(spec.type.rawValue) index entry of field '\(spec.field.prefix(64))' would be a \(k.count)-byte key; the storage limit is \(maxKeyBytes)")
            }
        }
    }

    /// Checks the size of a record's log payload.
    static func check(payload: [UInt8], documents: Int) throws {
        if payload.count > WALFormat.maxPayload {
            throw QuiverError.invalidArgument("a write of \(documents) document(s) is \(payload.count) bytes as logged; the log's record limit is \(WALFormat.maxPayload) bytes: write it in smaller batches")
        }
    }
}
