import QuiverCore
import QuiverStorage

/// How a logged mutation reaches LMDB: checked before it is logged (`checkStoredValues`), then
/// applied in one LMDB transaction (`apply`), by the write path and by replay alike.
extension Database {
    /// Before a mutation is logged: decodes (so checks the checksum of) every stored value that
    /// applying it reads, so that a damaged value refuses the write before the log holds a record
    /// that cannot apply: the catalog, the counters, the documents it replaces or deletes (their
    /// text and metadata too), and for a full-text collection the BM25 totals and the document
    /// frequencies of the old and new texts' terms; every document for a new payload index.
    static func checkStoredValues(read mutation: LogRecord, txn: LMDBTransaction, tables: Tables) throws {
        func documents(_ number: UInt32, _ ids: [String], newTexts: [String]) throws {
            let info = try info(number: number, txn: txn, tables: tables)
            _ = try Counters.read(number, collection: info.name, txn: txn, tables: tables)
            var texts = newTexts
            for id in ids {
                let key = Keys.document(number, id)
                guard let old = try txn.get(tables.documents, key) else { continue }
                let record = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
                if let text = record.text { texts.append(text) }
            }
            guard let ft = info.fullText, !texts.isEmpty else { return }
            _ = try TextIndexStore.stats(number, name: info.name, txn: txn, tables: tables)
            var terms = Set<String>()
            for text in texts { terms.formUnion(ft.analyzerValue.terms(text).filter { $0.utf8.count <= 256 }) }
            for term in terms {
                _ = try TextIndexStore.documentFrequency(Keys.collection(number) + Array(term.utf8), collection: info.name, txn: txn, tables: tables)
            }
        }
        switch mutation {
        case .createCollection, .dropCollection, .tuning:
            return
        case .write(let number, _, let docs, _):
            try documents(number, docs.map(\.id), newTexts: docs.compactMap(\.text))
        case .delete(let number, let ids):
            try documents(number, ids, newTexts: [])
        case .createPayloadIndex(let number, _):
            let info = try info(number: number, txn: txn, tables: tables)
            try txn.forEach(tables.documents, prefix: Keys.collection(number)) { k, v in
                _ = try DocumentRecord(stored: v, key: k, collection: info.name, withText: false)
                return true
            }
        }
    }

    /// Applies one logged mutation in `txn` and records `sequence` as applied. Deterministic: the
    /// same record applied to the same state gives the same state, which replay relies on.
    /// Returns what changed, for the in-memory segments (updated after the transaction commits).
    @discardableResult
    static func apply(_ mutation: LogRecord, sequence: UInt64, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        let change: AppliedChange
        switch mutation {
        case .createCollection(let info):
            change = try applyCreateCollection(info, txn: txn, tables: tables)
        case .dropCollection(let number, let name):
            change = try applyDropCollection(number, name: name, txn: txn, tables: tables)
        case .write(let number, _, let documents, let checkpoint):
            change = try applyWrite(documents, to: number, checkpoint: checkpoint, sequence: sequence, txn: txn, tables: tables)
        case .delete(let number, let ids):
            change = try applyDelete(ids, from: number, sequence: sequence, txn: txn, tables: tables)
        case .createPayloadIndex(let number, let spec):
            change = try applyCreatePayloadIndex(spec, on: number, txn: txn, tables: tables)
        case .tuning(let number, let tuningChange, let settings):
            try TuningApply.apply(number: number, change: tuningChange, settings: settings, txn: txn, tables: tables)
            change = .rows(number: number, added: [], vectors: nil, removed: [])
        }
        try Meta.setAppliedSequence(sequence, txn: txn, tables: tables)
        return change
    }

    /// A new collection: its catalog entry, zero counters, an empty (complete) field catalog, and
    /// the next collection number.
    private static func applyCreateCollection(_ info: CollectionInfo, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        try txn.put(tables.catalog, Array(info.name.utf8), try info.stored())
        try txn.put(tables.counters, Keys.collection(info.number), Counters().stored(info.number))
        try FieldCatalog.markComplete(info.number, txn: txn, tables: tables)
        try Meta.setNextCollection(info.number + 1, txn: txn, tables: tables)
        return .created(info)
    }

    /// Everything of collection `number` goes: its catalog entry and every key under its number.
    private static func applyDropCollection(_ number: UInt32, name: String, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        try txn.delete(tables.catalog, Array(name.utf8))
        try txn.delete(tables.segmentState, Keys.collection(number))
        try txn.delete(tables.textStats, Keys.collection(number))
        try txn.delete(tables.counters, Keys.collection(number))
        for table in [tables.documents, tables.vectors, tables.rows, tables.segments, tables.imports, tables.payload, tables.terms, tables.postings, tables.fields, tables.adapters] {
            try txn.deleteAll(table, prefix: Keys.collection(number))
        }
        return .dropped(number)
    }

    /// Inserts or replaces documents: each gets a fresh row (a replaced document's old row is
    /// unindexed), its vector, its row map entry, its payload and BM25 entries; then the counters,
    /// the field catalog and, for an import batch, its checkpoint.
    private static func applyWrite(_ documents: [Document], to number: UInt32, checkpoint: LogRecord.Checkpoint?, sequence: UInt64,
                                   txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        #if DEBUG
        if let bad = DebugHooks.unappliableID, documents.contains(where: { $0.id == bad }) {
            throw StorageError(.invalidArgument, "document '\(bad)' cannot be applied (the debug hook QUIVER_DEBUG_UNAPPLIABLE_ID)")
        }
        #endif
        if let c = checkpoint { try txn.put(tables.imports, c.key, StoredValue.seal(c.value, key: c.key)) }
        let info = try info(number: number, txn: txn, tables: tables)
        var counters = try counters(of: info, sequence: sequence, what: "writes to", txn: txn, tables: tables)
        var added: [UInt64] = [], removed: [UInt64] = []
        var removedMetadata: [Metadata] = []
        var vectors = [Float]()
        vectors.reserveCapacity(documents.count * info.dimension)
        let vectorTable = VectorTable(info, tables: tables)
        for d in documents {
            let key = Keys.document(number, d.id)
            if let old = try txn.get(tables.documents, key) {
                let oldRecord = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
                try unindex(oldRecord, of: info, txn: txn, tables: tables)
                removed.append(oldRecord.row)
                removedMetadata.append(oldRecord.metadata)
            } else {
                counters.liveDocuments += 1
            }
            let row = counters.nextRow
            counters.nextRow += 1
            added.append(row)
            vectors.append(contentsOf: d.vector ?? [])
            let record = DocumentRecord(row: row, text: d.text, metadata: d.metadata)
            let rowKey = Keys.row(number, row)
            try txn.put(tables.documents, key, try record.stored(key: key, compressionThreshold: info.textCompressionThreshold))
            // Row ids only grow, so a collection's new rows sort last in its range (and in the
            // table, for the newest collection): appended, LMDB's leaf pages stay full.
            try vectorTable.put(d.vector ?? [], row: row, txn: txn)
            try txn.putAppending(tables.rows, rowKey, RowCodec.stored(d.id, key: rowKey))
            try PayloadIndexing.update(info.payloadIndexes ?? [], number: number, row: row, metadata: d.metadata, remove: false, txn: txn, tables: tables)
            if let ft = info.fullText, let text = d.text {
                try TextIndexStore.update(ft, number: number, name: info.name, row: row, text: text, remove: false, txn: txn, tables: tables)
            }
        }
        try finishRows(counters, of: info, removed: removedMetadata, added: documents.map(\.metadata), txn: txn, tables: tables)
        return .rows(number: number, added: added, vectors: added.isEmpty ? nil : Matrix(dimension: info.dimension, storage: vectors), removed: removed)
    }

    /// Deletes the documents of `ids` that are stored (the others are passed over).
    private static func applyDelete(_ ids: [String], from number: UInt32, sequence: UInt64, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        let info = try info(number: number, txn: txn, tables: tables)
        var counters = try counters(of: info, sequence: sequence, what: "deletes from", txn: txn, tables: tables)
        var removed: [UInt64] = []
        var removedMetadata: [Metadata] = []
        for id in ids {
            let key = Keys.document(number, id)
            guard let old = try txn.get(tables.documents, key) else { continue }
            let oldRecord = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
            try unindex(oldRecord, of: info, txn: txn, tables: tables)
            try txn.delete(tables.documents, key)
            removed.append(oldRecord.row)
            removedMetadata.append(oldRecord.metadata)
            counters.liveDocuments -= 1
        }
        try finishRows(counters, of: info, removed: removedMetadata, added: [], txn: txn, tables: tables)
        return .rows(number: number, added: [], vectors: nil, removed: removed)
    }

    /// Declares a payload index (once: declaring it again changes nothing) and fills it from the
    /// stored documents.
    private static func applyCreatePayloadIndex(_ spec: PayloadIndexSpec, on number: UInt32, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        var info = try info(number: number, txn: txn, tables: tables)
        var specs = info.payloadIndexes ?? []
        if !specs.contains(spec) {
            specs.append(spec)
            info.payloadIndexes = specs
            try txn.put(tables.catalog, Array(info.name.utf8), try info.stored())
            try PayloadIndexing.backfill(spec, number: number, name: info.name, txn: txn, tables: tables)
        }
        return .rows(number: number, added: [], vectors: nil, removed: [])
    }

    /// The counters of collection `info`, which a record that `what` (writes to, deletes from) it needs.
    private static func counters(of info: CollectionInfo, sequence: UInt64, what: String, txn: LMDBTransaction, tables: Tables) throws -> Counters {
        guard let counters = try Counters.read(info.number, collection: info.name, txn: txn, tables: tables) else {
            throw StorageError(.corrupt, "log record \(sequence) \(what) collection number \(info.number), which has no counters")
        }
        return counters
    }

    /// Removes what a stored document's row adds besides the document: its vector, its row map
    /// entry, its payload entries and its BM25 postings.
    private static func unindex(_ record: DocumentRecord, of info: CollectionInfo, txn: LMDBTransaction, tables: Tables) throws {
        try VectorTable(info, tables: tables).delete(record.row, txn: txn)
        try txn.delete(tables.rows, Keys.row(info.number, record.row))
        try PayloadIndexing.update(info.payloadIndexes ?? [], number: info.number, row: record.row, metadata: record.metadata, remove: true, txn: txn, tables: tables)
        if let ft = info.fullText, let text = record.text {
            try TextIndexStore.update(ft, number: info.number, name: info.name, row: record.row, text: text, remove: true, txn: txn, tables: tables)
        }
    }

    /// After a write or delete: the counters, and the field catalog's figures (when it is complete).
    private static func finishRows(_ counters: Counters, of info: CollectionInfo, removed: [Metadata], added: [Metadata],
                                   txn: LMDBTransaction, tables: Tables) throws {
        try txn.put(tables.counters, Keys.collection(info.number), counters.stored(info.number))
        if try FieldCatalog.isComplete(info.number, txn: txn, tables: tables) {
            try FieldCatalog.update(info.number, removed: removed, added: added, txn: txn, tables: tables)
        }
    }
}
