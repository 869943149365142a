import Foundation
import QuiverStorage

// Export for Milvus (docs/scale-out.md, the layout in docs/file-formats.md): a new directory with
//
//   rows-00001.json ...   the documents as Milvus 2.3 bulk-insert JSON row files, `{"rows": [{...}, ...]}`,
//                         each at most `maxFileBytes` (Milvus 2.3.5 reads files up to 16 GiB,
//                         `common.ImportMaxFileSize`; one file is one `do_bulk_insert` call)
//   schema.json           written last: the collection schema in the dictionary form that pymilvus's
//                         `CollectionSchema.construct_from_dict` reads, the index and search parameters,
//                         the encoder, the row files, what does not map and how it was converted, and
//                         the field mapping that `Filter.milvusExpression(mapping:)` reads back
//
// Every file comes from one read transaction (one consistent snapshot) and is fsynced before
// schema.json is written, so a directory with a schema.json is complete.

/// Options of `Collection.exportMilvus(to:options:)`.
public struct MilvusExportOptions: Sendable {
    /// The largest row file, in bytes (default 1 GiB; Milvus 2.3.5 accepts up to 16 GiB per file, and
    /// smaller files keep each import task well inside the server's 900 s `importTaskExpiration`).
    public var maxFileBytes: Int = 1 << 30
    /// Called after each row file is finished and every 1,000 documents with the documents written and
    /// their total.
    public var progress: (@Sendable (_ written: Int, _ total: Int) -> Void)?

    public init(maxFileBytes: Int = 1 << 30, progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.maxFileBytes = maxFileBytes
        self.progress = progress
    }
}

/// What an export for Milvus wrote.
public struct MilvusExportSummary: Sendable, Codable, Equatable {
    /// Documents written.
    public var documents: Int
    /// The row files, relative to the directory, in order.
    public var files: [String]
    /// What does not map to Milvus and how it was converted (also in schema.json).
    public var conversions: [String]
    /// Where each metadata field went (also in schema.json).
    public var mapping: MilvusMapping
}

/// schema.json (the dictionary forms pymilvus reads; `type` and `element_type` are pymilvus `DataType` values).
struct MilvusSchemaFile: Codable {
    struct Field: Codable {
        var name: String
        var type: Int
        var type_name: String
        var description: String
        var is_primary: Bool?
        var auto_id: Bool?
        var element_type: Int?
        var params: [String: Int]?
    }
    struct Schema: Codable {
        var description: String
        var enable_dynamic_field: Bool
        var auto_id: Bool
        var fields: [Field]
    }
    struct Index: Codable {
        var field: String
        var index_type: String
        var metric_type: String?
        var params: [String: Int]
    }
    struct Search: Codable {
        var anns_field: String
        var metric_type: String
        var params: [String: Int]
        var higher_score_is_closer: Bool
    }
    struct Encoder: Codable {
        var name: String
        var identifier: String
        var dimension: Int
        var note: String
    }
    struct File: Codable {
        var path: String
        var rows: Int
        var bytes: Int
    }
    struct Quiver: Codable {
        var metric: String
        var index: IndexSettings
        var full_text: FullTextSettings?
        var mapping: MilvusMapping
    }

    var format = "quiver-milvus-export"
    var version = 1
    var milvus = "2.3 or later (checked against the PyPI milvus 2.3.5 server)"
    var collection_name: String
    var documents: Int
    var schema: Schema
    var indexes: [Index]
    var search: Search
    var encoder: Encoder?
    var files: [File]
    var conversions: [String]
    var quiver: Quiver
}

extension Collection {
    /// Writes the collection for Milvus into `directory`, which must not exist: JSON row files for
    /// Milvus bulk insert and a schema.json describing the collection (the layout at the top of
    /// MilvusExport.swift), all from one snapshot. `tools/milvus-load` creates and loads the collection.
    ///
    /// - Throws: `QuiverError.invalidArgument` when the directory exists, when `maxFileBytes` cannot
    ///   hold one row, or when a value cannot be represented in Milvus 2.3 (a text over 65,535 bytes,
    ///   a non-finite metadata float, metadata over 65,536 bytes of JSON), naming the document.
    @discardableResult
    public func exportMilvus(to directory: String, options: MilvusExportOptions = MilvusExportOptions()) throws -> MilvusExportSummary {
        guard options.maxFileBytes >= 1024 else {
            throw QuiverError.invalidArgument("maxFileBytes must be at least 1024, not \(options.maxFileBytes)")
        }
        if FileManager.default.fileExists(atPath: directory) {
            throw QuiverError.invalidArgument("\(directory) exists; the Milvus export writes a new directory")
        }
        try wrapStorage { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false) }
        return try database.readTransaction { txn in
            try checkExists(txn)
            let total = Int(try Counters.read(info.number, collection: name, txn: txn, tables: database.tables)?.liveDocuments ?? 0)
            var survey = MilvusSurvey()
            try forEachStoredDocument(txn, withText: true) { id, record, _ in try survey.add(id, record) }
            guard survey.documents == total else { throw QuiverError.storage(StorageError(.corrupt, "'\(name)' counts \(total) documents but holds \(survey.documents)")) }
            // The catalog entry of this snapshot: payload indexes declared since this value was made count.
            let plan = try MilvusExportPlan(collection: try database.info(name, txn: txn), survey: survey)

            var files: [MilvusSchemaFile.File] = []
            var writer: FileWriter?
            var rowsInFile = 0
            var written = 0
            func finishFile() throws {
                guard var w = writer else { return }
                try w.write(Array("\n]}\n".utf8))
                try wrapStorage { try w.finish() }
                files[files.count - 1].rows = rowsInFile
                files[files.count - 1].bytes = w.offset
                writer = nil
                options.progress?(written, total)
            }
            try forEachStoredDocument(txn, withText: plan.hasText) { id, record, vector in
                let row = try plan.row(id: id, record: record, vector: vector)
                let opening = 10, closing = 4  // `{"rows":[\n` and `\n]}\n`
                guard row.count + opening + closing <= options.maxFileBytes else {
                    throw QuiverError.invalidArgument("document '\(id)' takes \(row.count) bytes as a Milvus row, more than maxFileBytes (\(options.maxFileBytes))")
                }
                if let w = writer, w.offset + w.buffer.count + 2 + row.count + closing > options.maxFileBytes { try finishFile() }
                if writer == nil {
                    let file = String(format: "rows-%05d.json", files.count + 1)
                    writer = try wrapStorage { try FileWriter(path: directory + "/" + file) }
                    files.append(.init(path: file, rows: 0, bytes: 0))
                    try writer!.write(Array("{\"rows\":[\n".utf8))
                    rowsInFile = 0
                } else {
                    try writer!.write(Array(",\n".utf8))
                }
                try writer!.write(row)
                rowsInFile += 1
                written += 1
                if written % 1000 == 0 { options.progress?(written, total) }
            }
            try finishFile()

            let schema = plan.schemaFile(files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var out = try wrapStorage { try FileWriter(path: directory + "/schema.json") }
            try out.write(try encoder.encode(schema) + [10])
            try wrapStorage {
                try out.finish()
                try FileSystem.syncDirectory(directory)
                try FileSystem.syncDirectory(FileSystem.parentDirectory(of: URL(fileURLWithPath: directory).standardizedFileURL.path))
            }
            return MilvusExportSummary(documents: written, files: files.map(\.path), conversions: plan.conversions, mapping: plan.mapping)
        }
    }
}

/// The first pass over the snapshot: what the schema must hold (field statistics, the longest text,
/// id, list and element), and the values Milvus cannot take.
struct MilvusSurvey {
    var documents = 0
    var stats: [String: FieldStats] = [:]
    var withText = 0
    var emptyText = 0
    /// Per field: the longest string (or list element) in bytes, and the longest list.
    var longestString: [String: Int] = [:]
    var longestList: [String: Int] = [:]

    /// Milvus 2.3's VARCHAR limit.
    static let maxVarchar = 65_535
    /// Milvus 2.3's ARRAY capacity limit.
    static let maxCapacity = 4_096
    /// Milvus 2.3's limit on a JSON value.
    static let maxJSONBytes = 65_536

    mutating func add(_ id: String, _ record: DocumentRecord) throws {
        documents += 1
        if let t = record.text {
            withText += 1
            if t.isEmpty { emptyText += 1 }
            let n = t.utf8.count
            guard n <= Self.maxVarchar else {
                throw QuiverError.invalidArgument("document '\(id)' has a text of \(n) bytes; a Milvus 2.3 VARCHAR holds at most \(Self.maxVarchar) (split the document, or export with --format jsonl)")
            }
        }
        for (key, value) in record.metadata {
            stats[key, default: FieldStats(field: key)].count(value, 1)
            switch value {
            case .double(let d) where !d.isFinite:
                throw QuiverError.invalidArgument("document '\(id)': metadata '\(key)' is \(d), which JSON and Milvus cannot hold")
            case .string(let s): longestString[key] = max(longestString[key] ?? 1, s.utf8.count)
            case .stringList(let l):
                longestList[key] = max(longestList[key] ?? 1, l.count)
                for s in l { longestString[key] = max(longestString[key] ?? 1, s.utf8.count) }
            default: break
            }
        }
    }
}

/// The schema of the export and the spelling of each row, decided from the survey.
struct MilvusExportPlan {
    let info: CollectionInfo
    let survey: MilvusSurvey
    var mapping: MilvusMapping
    var conversions: [String] = []
    let hasText: Bool
    /// Typed columns in schema order: (metadata key, type).
    var columns: [(String, MilvusColumnType)] = []

    /// The collection's name where it is a Milvus name, else with every other character made `_`.
    var milvusName: String {
        if MilvusMapping.isIdentifier(info.name) { return info.name }
        let s = String(info.name.unicodeScalars.map { ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) || $0 == "_" ? Character($0) : "_" })
        return String((s.first?.isNumber ?? true ? "_" + s : s).prefix(255))
    }

    init(collection info: CollectionInfo, survey: MilvusSurvey) throws {
        self.info = info
        self.survey = survey
        hasText = survey.withText > 0
        mapping = MilvusMapping(stats: survey.stats.values.sorted { $0.field < $1.field }, payloadIndexes: info.payloadIndexes ?? [], documents: survey.documents)
        for key in mapping.fields.keys.sorted() {
            guard let type = mapping.fields[key]!.type else { continue }
            let tooLong = (survey.longestString[key] ?? 0) > MilvusSurvey.maxVarchar
            let tooMany = (survey.longestList[key] ?? 0) > MilvusSurvey.maxCapacity
            if tooLong || tooMany {
                mapping.fields[key]!.column = nil
                mapping.fields[key]!.type = nil
                mapping.fields[key]!.note = tooLong
                    ? "kept in the JSON column: a value is longer than the \(MilvusSurvey.maxVarchar) bytes of a Milvus VARCHAR"
                    : "kept in the JSON column: a list is longer than the \(MilvusSurvey.maxCapacity) elements of a Milvus ARRAY"
                continue
            }
            columns.append((key, type))
        }
        conversions = describeConversions()
    }

    private func describeConversions() -> [String] {
        var out: [String] = []
        let json = mapping.fields.values.filter { $0.column == nil }.map(\.field).sorted()
        if !json.isEmpty {
            out.append("Metadata fields without a typed column live in the JSON field 'metadata' (\(json.count): \(json.prefix(20).joined(separator: ", "))\(json.count > 20 ? ", ..." : "")): a missing key stays missing, ints and floats keep their kind, lists of strings are JSON arrays; Milvus filters them as metadata[\"key\"].")
        }
        for p in mapping.fields.values.sorted(by: { $0.field < $1.field }) {
            if let note = p.note { out.append("Payload index on '\(p.field)': \(note).") }
            if p.type == .varcharArray { out.append("List field '\(p.field)' is an ARRAY<VARCHAR>; Milvus 2.3 matches an element with array_contains, but has no range over elements (such filters are refused by the translator).") }
        }
        if mapping.fields.values.contains(where: { $0.column == nil && $0.mayHold("list of strings") }) {
            out.append("Lists of strings in the JSON field match json_contains / json_contains_any; Milvus 2.3 has no range over their elements (such filters are refused by the translator).")
        }
        if mapping.nullFieldsColumn != nil {
            out.append("Null values stay JSON nulls in 'metadata'; because Milvus 2.3 cannot test a JSON value for null, the ARRAY<VARCHAR> field 'null_fields' names each row's null keys.")
        }
        if hasText && survey.withText < survey.documents {
            out.append("\(survey.documents - survey.withText) document(s) have no text: Milvus 2.3 VARCHAR cannot be null, so they hold '' (\(survey.emptyText) document(s) have an empty text and cannot be told from them).")
        }
        if let ft = info.fullText {
            out.append("Quiver's BM25 full-text index (analyzer \(ft.analyzer), k1 \(ft.k1), b \(ft.b)) does not map: Milvus 2.3 has no full-text search. BM25 and hybrid search came in Milvus 2.5 with its own analyzers (standard tokenizer, no stemming by default), so scores and rankings differ; the text is exported as VARCHAR for a 2.5 BM25 function to index.")
        }
        for (key, type) in columns where type == .bool || type == .varcharArray {
            out.append("The payload index on '\(key)' has no Milvus 2.3 counterpart (it cannot index \(type.rawValue) fields); the column is scanned.")
        }
        if milvusName != info.name {
            out.append("The collection name '\(info.name)' is not a Milvus name ([A-Za-z_][A-Za-z0-9_]*); schema.json names it '\(milvusName)'.")
        }
        let settings = info.indexSettings
        switch settings.sealKind(liveVectors: survey.documents, dimension: info.dimension) {
        case .ivfpq:
            if settings.nlist == nil { out.append("IVF_PQ nlist is Quiver's automatic choice for \(survey.documents) vectors (\(settings.listCount(forVectors: survey.documents))).") }
            out.append("Quiver's IVF-PQ re-ranks \(settings.rerank) candidates with the full vectors, so its scores are exact; Milvus IVF_PQ returns approximate distances.")
        case .flat: out.append("Quiver's flat index (exact scan) is Milvus FLAT.")
        default: break
        }
        if info.metric == .l2 { out.append("Scores: Quiver reports the Euclidean distance, Milvus L2 the squared Euclidean distance (same order).") }
        if info.metric == .cosine { out.append("Vectors are exported as stored; Milvus COSINE normalizes them itself, as Quiver does.") }
        out.append("Ids are VARCHAR primary keys; Milvus does not deduplicate primary keys on insert (an insert of an existing id adds a second row; use upsert).")
        return out
    }

    static func metricType(_ m: Metric) -> String {
        switch m {
        case .cosine: return "COSINE"
        case .dot: return "IP"
        case .l2: return "L2"
        }
    }

    /// One row of a bulk-insert file.
    func row(id: String, record: DocumentRecord, vector: [Float]) throws -> [UInt8] {
        var out = "{\"id\":"
        JSONLine.string(id, into: &out)
        out += ",\"vector\":"
        JSONLine.vector(vector, into: &out)
        if hasText {
            out += ",\"text\":"
            JSONLine.string(record.text ?? "", into: &out)
        }
        for (key, _) in columns {
            out += ",\"\(key)\":"
            JSONLine.value(record.metadata[key]!, into: &out)
        }
        var json = "{"
        var nulls: [String] = []
        var first = true
        for key in record.metadata.keys.sorted() where mapping.fields[key]?.column == nil {
            if !first { json += "," }
            first = false
            JSONLine.string(key, into: &json)
            json += ":"
            let value = record.metadata[key]!
            JSONLine.value(value, into: &json)
            if value == .null { nulls.append(key) }
        }
        json += "}"
        guard json.utf8.count <= MilvusSurvey.maxJSONBytes else {
            throw QuiverError.invalidArgument("document '\(id)': its metadata outside typed columns is \(json.utf8.count) bytes of JSON; a Milvus JSON field holds at most \(MilvusSurvey.maxJSONBytes)")
        }
        out += ",\"metadata\":" + json
        if mapping.nullFieldsColumn != nil {
            out += ",\"null_fields\":"
            JSONLine.strings(nulls, into: &out)
        }
        out += "}"
        return Array(out.utf8)
    }

    func schemaFile(files: [MilvusSchemaFile.File]) -> MilvusSchemaFile {
        typealias F = MilvusSchemaFile.Field
        let varchar = 21, array = 22, jsonType = 23
        var fields: [F] = [
            F(name: "id", type: varchar, type_name: "VARCHAR", description: "the Quiver document id", is_primary: true, auto_id: false, params: ["max_length": Limits.maxIDBytes]),
            F(name: "vector", type: 101, type_name: "FLOAT_VECTOR", description: "the document's vector (\(info.metric.rawValue))", params: ["dim": info.dimension]),
        ]
        if hasText {
            fields.append(F(name: "text", type: varchar, type_name: "VARCHAR", description: "the document's text", params: ["max_length": MilvusSurvey.maxVarchar]))
        }
        for (key, type) in columns {
            let d = "metadata field '\(key)'"
            switch type {
            case .varchar: fields.append(F(name: key, type: varchar, type_name: "VARCHAR", description: d, params: ["max_length": MilvusSurvey.maxVarchar]))
            case .int64: fields.append(F(name: key, type: 5, type_name: "INT64", description: d))
            case .double: fields.append(F(name: key, type: 11, type_name: "DOUBLE", description: d))
            case .bool: fields.append(F(name: key, type: 1, type_name: "BOOL", description: d))
            case .varcharArray:
                fields.append(F(name: key, type: array, type_name: "ARRAY", description: d + " (list of strings)", element_type: varchar,
                                params: ["max_capacity": MilvusSurvey.maxCapacity, "max_length": MilvusSurvey.maxVarchar]))
            }
        }
        fields.append(F(name: "metadata", type: jsonType, type_name: "JSON", description: "metadata fields without a typed column"))
        if mapping.nullFieldsColumn != nil {
            fields.append(F(name: "null_fields", type: array, type_name: "ARRAY", description: "the keys of 'metadata' whose value is null", element_type: varchar,
                            params: ["max_capacity": MilvusSurvey.maxCapacity, "max_length": MilvusSurvey.maxVarchar]))
        }

        let metric = Self.metricType(info.metric)
        let settings = info.indexSettings
        var indexes: [MilvusSchemaFile.Index] = []
        let search: MilvusSchemaFile.Search
        switch settings.sealKind(liveVectors: survey.documents, dimension: info.dimension) {
        case .ivfpq:
            indexes.append(.init(field: "vector", index_type: "IVF_PQ", metric_type: metric,
                                 params: ["nlist": settings.listCount(forVectors: survey.documents), "m": settings.codeBytes(dimension: info.dimension), "nbits": 8]))
            search = .init(anns_field: "vector", metric_type: metric, params: ["nprobe": settings.nprobe], higher_score_is_closer: info.metric.higherScoreIsCloser)
        case .flat:
            indexes.append(.init(field: "vector", index_type: "FLAT", metric_type: metric, params: [:]))
            search = .init(anns_field: "vector", metric_type: metric, params: [:], higher_score_is_closer: info.metric.higherScoreIsCloser)
        default:
            indexes.append(.init(field: "vector", index_type: "HNSW", metric_type: metric, params: ["M": settings.m, "efConstruction": settings.efConstruction]))
            search = .init(anns_field: "vector", metric_type: metric, params: ["ef": settings.efSearch], higher_score_is_closer: info.metric.higherScoreIsCloser)
        }
        // Milvus 2.3 indexes numbers with STL_SORT and strings with Trie; it cannot index BOOL or ARRAY.
        for (key, type) in columns {
            switch type {
            case .int64, .double: indexes.append(.init(field: key, index_type: "STL_SORT", params: [:]))
            case .varchar: indexes.append(.init(field: key, index_type: "Trie", params: [:]))
            case .bool, .varcharArray: break
            }
        }
        let encoder = info.encoder.map {
            MilvusSchemaFile.Encoder(name: $0.name, identifier: $0.identifier, dimension: $0.dimension,
                                     note: "The vectors were made by this text encoder; queries must be embedded with the same model (and the same pooling and normalization) for Milvus to find the same neighbours.")
        }
        return MilvusSchemaFile(
            collection_name: milvusName, documents: survey.documents,
            schema: .init(description: "Exported from the Quiver collection '\(info.name)'", enable_dynamic_field: false, auto_id: false, fields: fields),
            indexes: indexes, search: search, encoder: encoder, files: files, conversions: conversions,
            quiver: .init(metric: info.metric.rawValue, index: settings, full_text: info.fullText, mapping: mapping))
    }
}
