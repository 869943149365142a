import QuiverCore
import QuiverStorage

/// What a collection's derived LMDB indexes (payload entries, BM25 terms, postings and totals)
/// should hold, computed from its documents, and the comparison with what they hold: shared by
/// `verify` (which reports each difference) and `repair` (which rebuilds what differs).
struct DerivedIndexExpectation {
    let info: CollectionInfo
    private var payload = Set<[UInt8]>()
    private var postings: [[UInt8]: [UInt8]] = [:]
    private var documentFrequency: [String: UInt64] = [:]
    private var textDocuments: UInt64 = 0
    private var textTerms: UInt64 = 0
    private var fields: [String: FieldStats] = [:]

    init(_ info: CollectionInfo) { self.info = info }

    /// Adds what one stored document contributes.
    mutating func add(row: UInt64, record: DocumentRecord) {
        let c = info.number
        if let ft = info.fullText, let text = record.text {
            let terms = ft.analyzerValue.terms(text).filter { $0.utf8.count <= 256 }
            var tf: [String: Int] = [:]
            for t in terms { tf[t, default: 0] += 1 }
            for (t, f) in tf {
                var w = ByteWriter(capacity: 8)
                w.write(UInt32(f))
                w.write(UInt32(terms.count))
                postings[TextIndexStore.postingPrefix(c, t) + Keys.row(c, row)[4...]] = w.bytes
                documentFrequency[t, default: 0] += 1
            }
            textDocuments += 1
            textTerms += UInt64(terms.count)
        }
        payload.formUnion(PayloadIndexing.keys(info.payloadIndexes ?? [], number: c, row: row, metadata: record.metadata))
        for (field, value) in record.metadata { fields[field, default: FieldStats(field: field)].count(value, 1) }
    }

    /// The expectation of every stored document of `info` (documents that do not decode are left
    /// out: they are reported where they are read).
    static func of(_ info: CollectionInfo, txn: LMDBTransaction, tables: Tables) throws -> DerivedIndexExpectation {
        var e = DerivedIndexExpectation(info)
        try txn.forEach(tables.documents, prefix: Keys.collection(info.number)) { k, v in
            if let record = try? DocumentRecord(stored: v, key: k, collection: info.name) { e.add(row: record.row, record: record) }
            return true
        }
        return e
    }

    /// Compares the metadata field catalog (when complete) with the documents.
    func compareFields(txn: LMDBTransaction, tables: Tables, problem: (String) -> Void) throws -> Bool {
        let stored: [FieldStats]
        do {
            guard let s = try FieldCatalog.fields(info.number, txn: txn, tables: tables) else { return true }
            stored = s
        } catch {
            problem("the field catalog cannot be read: \(error)")
            return false
        }
        var ok = true
        for s in stored where fields[s.field] != s {
            ok = false
            problem("the field catalog says \(s.summary); the documents give \(fields[s.field]?.summary ?? "none")")
        }
        let named = Set(stored.map(\.field))
        for f in fields.keys.sorted() where !named.contains(f) {
            ok = false
            problem("the field catalog lacks field \(MessageText.quoted(f)) of \(fields[f]!.documents) document(s)")
        }
        return ok
    }

    /// Compares with what LMDB holds; `problem` gets one sentence per difference. Returns whether the
    /// payload entries and the BM25 index each agree. Damage already reported elsewhere is passed
    /// over rather than reported again as its consequences: entries of `skipRows` (rows whose stored
    /// document, row or vector is damaged), values under `skipKeys` (damaged themselves), and, when
    /// `incomplete` (a damaged document's contribution is unknown), every count.
    func compare(txn: LMDBTransaction, tables: Tables, skipRows: Set<UInt64> = [], skipKeys: Set<[UInt8]> = [],
                 incomplete: Bool = false, problem: (String) -> Void) throws -> (payload: Bool, text: Bool) {
        let c = info.number
        var payloadOK = true, textOK = true
        func payloadProblem(_ s: String) { payloadOK = false; problem(s) }
        func textProblem(_ s: String) { textOK = false; problem(s) }
        // Calls `check` on each entry of `table` under collection `c`; returns how many there are.
        func entries(_ table: LMDBTable, _ check: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) throws -> Int {
            var n = 0
            try txn.forEach(table, prefix: Keys.collection(c)) { k, v in n += 1; check(k, v); return true }
            return n
        }
        let payloadEntries = try entries(tables.payload) { k, _ in
            let row = FilterPlanner.row(k)
            if !payload.contains(Array(k)) && !skipRows.contains(row) {
                payloadProblem("payload index entry for row \(row) does not match its document")
            }
        }
        if payloadEntries < payload.count && !incomplete {
            payloadProblem("payload indexes lack \(payload.count - payloadEntries) entries of the documents' metadata")
        }
        let seenPostings = try entries(tables.postings) { k, v in
            let row = FilterPlanner.row(k)
            guard !skipKeys.contains(Array(k)), !skipRows.contains(row) else { return }
            if postings[Array(k)] != StoredValue.intactPayload(v, key: k).map({ Array($0) }) {
                textProblem("a BM25 posting of row \(row) does not match its document's text")
            }
        }
        if seenPostings != postings.count && !incomplete {
            textProblem("the BM25 index holds \(seenPostings) postings; the documents' text gives \(postings.count)")
        }
        let terms = try entries(tables.terms) { k, v in
            guard !incomplete, !skipKeys.contains(Array(k)) else { return }
            let term = String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)
            let df = StoredValue.intactPayload(v, key: k).flatMap { try? ByteReader(Array($0)).readUInt64Value() } ?? 0
            if documentFrequency[term] != df {
                textProblem("term '\(term)' has document frequency \(df); the documents give \(documentFrequency[term] ?? 0)")
            }
        }
        if terms != documentFrequency.count && !incomplete {
            textProblem("the BM25 index knows \(terms) terms; the documents' text has \(documentFrequency.count)")
        }
        if incomplete || skipKeys.contains(Keys.collection(c)) { return (payloadOK, textOK) }
        let stats: (UInt64, UInt64)
        do { stats = try TextIndexStore.stats(c, name: info.name, txn: txn, tables: tables) } catch {
            textProblem("the BM25 totals cannot be read: \(error)")
            return (payloadOK, textOK)
        }
        if stats.0 != textDocuments || stats.1 != textTerms {
            textProblem("BM25 totals say \(stats.0) documents of \(stats.1) terms; the documents give \(textDocuments) and \(textTerms)")
        }
        return (payloadOK, textOK)
    }
}

extension Database {
    /// Whether collection `info`'s payload indexes and BM25 index agree with its documents.
    func derivedIndexesAgree(_ info: CollectionInfo, txn: LMDBTransaction) throws -> (Bool, Bool, Bool) {
        let e = try DerivedIndexExpectation.of(info, txn: txn, tables: tables)
        let (payload, text) = try e.compare(txn: txn, tables: tables) { _ in }
        return (payload, text, try e.compareFields(txn: txn, tables: tables) { _ in })
    }
}
