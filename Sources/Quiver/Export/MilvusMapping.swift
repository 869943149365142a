// Where each metadata field of a collection lives once exported to Milvus (docs/scale-out.md).
//
// The target is Milvus 2.3 (the PyPI `milvus` 2.3.5 server and later): its scalar fields cannot hold
// null or be absent from a row (nullable fields came in 2.5), so a field becomes a typed column only
// when every document holds a non-null value of exactly one type. Everything else goes, value for
// value, into one JSON column where a missing key stays missing, a null stays null, a list stays an
// array and ints and floats keep their kind; a `null_fields` array column names the keys whose value
// is null, because Milvus 2.3 expressions cannot test a JSON value for null.
//
// The mapping is what the filter translator (Filter/MilvusExpression.swift) needs to give a filter the
// same meaning in Milvus: which column a field is in, and which kinds of value it holds.

/// The Milvus type of a typed column made from a metadata field.
public enum MilvusColumnType: String, Sendable, Codable, CaseIterable {
    case varchar = "VARCHAR"
    case int64 = "INT64"
    case double = "DOUBLE"
    case bool = "BOOL"
    /// `ARRAY` with `element_type` `VARCHAR`: a list of strings.
    case varcharArray = "ARRAY"
}

/// Where one metadata field lives in the exported Milvus collection, and what it holds.
public struct MilvusFieldPlacement: Sendable, Codable, Equatable {
    /// The metadata key.
    public var field: String
    /// The typed column holding it, or nil when it lives in the JSON column.
    public var column: String?
    /// The typed column's type (nil for the JSON column).
    public var type: MilvusColumnType?
    /// The kinds of value the documents hold under the key, in `FieldStats.types`' words
    /// (`string`, `integer`, `float`, `boolean`, `list of strings`, `null`).
    public var holds: [String]
    /// Why the field is not a typed column, when it is a payload-indexed field that could not be one.
    public var note: String?

    public init(field: String, column: String? = nil, type: MilvusColumnType? = nil, holds: [String], note: String? = nil) {
        self.field = field
        self.column = column
        self.type = type
        self.holds = holds
        self.note = note
    }

    func mayHold(_ kind: String) -> Bool { holds.contains(kind) }
}

/// Where a collection's metadata lives in Milvus: the input of `Filter.milvusExpression(mapping:)`.
///
/// Build it with `Collection.milvusMapping()` (from the collection's field catalog, as an export would
/// place the fields now), read it from an export's `schema.json` (its `quiver.mapping` member), or use
/// `.allJSON` when nothing is known: every field in the JSON column, each possibly of every kind.
public struct MilvusMapping: Sendable, Codable, Equatable {
    /// The primary-key column (VARCHAR), used to spell the constants `true` and `false`.
    public var idColumn: String
    /// The JSON column holding every field without a typed column.
    public var jsonColumn: String
    /// The ARRAY<VARCHAR> column naming the keys whose value is null, or nil when no document has a
    /// null value (then a JSON key is null nowhere).
    public var nullFieldsColumn: String?
    /// The fields known to the mapping, by metadata key. A field not listed lives in the JSON column
    /// and may hold every kind of value.
    public var fields: [String: MilvusFieldPlacement]

    public init(idColumn: String = "id", jsonColumn: String = "metadata", nullFieldsColumn: String? = "null_fields",
                fields: [String: MilvusFieldPlacement] = [:]) {
        self.idColumn = idColumn
        self.jsonColumn = jsonColumn
        self.nullFieldsColumn = nullFieldsColumn
        self.fields = fields
    }

    /// Nothing known: every field in the JSON column `metadata`, possibly holding any kind of value
    /// (lists and nulls included), so a string range (which Milvus cannot apply to a list's elements)
    /// is refused.
    public static let allJSON = MilvusMapping()

    /// The columns Quiver's export writes besides the metadata ones; a metadata field with one of these
    /// names stays in the JSON column.
    public static let reservedColumns: Set<String> = ["id", "vector", "text", "metadata", "null_fields"]

    /// The kinds every field not in `fields` may hold.
    static let everyKind = ["string", "integer", "float", "boolean", "list of strings", "null"]

    /// The mapping an export makes: a payload-indexed field becomes a typed column when its name is a
    /// Milvus identifier not among `reservedColumns` and all `documents` hold a non-null value of one
    /// type that fits the index's type (strings or lists of strings for `keyword`, integers for
    /// `integer`, floats for `float`, booleans for `bool`); every other field lives in the JSON column,
    /// and a payload-indexed one records why.
    public init(stats: [FieldStats], payloadIndexes: [PayloadIndexSpec], documents: Int) {
        var fields: [String: MilvusFieldPlacement] = [:]
        let indexed = Dictionary(payloadIndexes.map { ($0.field, $0.type) }, uniquingKeysWith: { a, _ in a })
        for s in stats where s.documents > 0 {
            var p = MilvusFieldPlacement(field: s.field, holds: s.types)
            if let type = indexed[s.field] {
                switch Self.columnType(s, index: type, documents: documents) {
                case .success(let t): p.column = s.field; p.type = t
                case .failure(let why): p.note = why.message
                }
            }
            fields[s.field] = p
        }
        let anyNull = stats.contains { $0.nulls > 0 }
        self.init(nullFieldsColumn: anyNull ? "null_fields" : nil, fields: fields)
    }

    struct Reason: Error { let message: String }

    static func columnType(_ s: FieldStats, index: PayloadIndexType, documents: Int) -> Result<MilvusColumnType, Reason> {
        guard isIdentifier(s.field), !reservedColumns.contains(s.field) else {
            return .failure(Reason(message: "kept in the JSON column: its name is not a Milvus field name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes, not one of \(reservedColumns.sorted().joined(separator: ", ")))"))
        }
        if s.documents < documents || s.nulls > 0 {
            return .failure(Reason(message: "kept in the JSON column: \(documents - s.documents) document(s) lack it and \(s.nulls) hold null, and Milvus 2.3 scalar fields cannot be absent or null"))
        }
        let only: (Int) -> Bool = { $0 == s.documents }
        switch index {
        case .keyword where only(s.strings): return .success(.varchar)
        case .keyword where only(s.lists): return .success(.varcharArray)
        case .integer where only(s.integers): return .success(.int64)
        case .float where only(s.floats): return .success(.double)
        case .bool where only(s.booleans): return .success(.bool)
        default:
            return .failure(Reason(message: "kept in the JSON column: it holds \(s.types.joined(separator: ", ")), not only the one type a typed \(index.rawValue) column holds (a typed column would change some values' kinds)"))
        }
    }

    /// Whether `name` is a Milvus field name: a letter or `_`, then letters, digits and `_`, at most
    /// 255 bytes.
    public static func isIdentifier(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard let first = b.first, b.count <= 255 else { return false }
        func letter(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 }
        return letter(first) && b.dropFirst().allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// The placement of `field`: its entry, or the JSON column with every kind possible.
    func placement(_ field: String) -> MilvusFieldPlacement {
        fields[field] ?? MilvusFieldPlacement(field: field, holds: Self.everyKind)
    }
}

extension Collection {
    /// Where an export to Milvus made now would place each metadata field (`MilvusMapping`), from the
    /// collection's field catalog and payload indexes.
    public func milvusMapping() throws -> MilvusMapping {
        let current = try database.readTransaction { txn in try database.info(name, txn: txn) }
        return MilvusMapping(stats: try fields(), payloadIndexes: current.payloadIndexes ?? [], documents: try count())
    }
}
