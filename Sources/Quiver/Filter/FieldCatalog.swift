import QuiverCore
import QuiverEncoder
import QuiverStorage

/*
 The metadata field catalog of a collection (derived data, like payload indexes): table `fields`,
 kept current in the same transaction as every write and delete.

   (every value sealed as the checked tables' are: payload ++ CRC-32C of key ++ payload)
   key C (4 bytes)                 value u8 1: the catalog of collection C is complete (written when
                                   the collection is created, or when it was built from the documents)
   key C ++ field                  value: the field (varint length + UTF-8), then u64 LE documents
                                   holding it, then u64 LE counts of the documents whose value is a
                                   string, an integer, a float, a boolean, a list of strings, null
   (a field over 400 UTF-8 bytes: C ++ its first 400 bytes ++ 0x00 ++ its SHA-256)

 Filters consult it to refuse a field no document has, or a comparison with a type the field never
 holds (`SearchOptions.allowUnknownFields` opts out); `explain` reports the figures of the fields a
 filter names; `verify` compares it with the documents and `repair` rebuilds it.
*/

/// What a collection's documents hold under one metadata field.
public struct FieldStats: Sendable, Codable, Equatable {
    public var field: String
    /// Documents that have the field.
    public var documents: Int = 0
    public var strings: Int = 0
    public var integers: Int = 0
    public var floats: Int = 0
    public var booleans: Int = 0
    public var lists: Int = 0
    public var nulls: Int = 0

    public init(field: String) { self.field = field }

    /// The kinds of value seen, in words ("integer", "string", ...).
    public var types: [String] {
        [("string", strings), ("integer", integers), ("float", floats), ("boolean", booleans), ("list of strings", lists), ("null", nulls)]
            .filter { $0.1 > 0 }.map(\.0)
    }

    /// One line: "year: 300 documents (integer)".
    public var summary: String { "\(field): \(documents) document(s) (\(types.joined(separator: ", ")))" }

    mutating func count(_ value: MetadataValue, _ delta: Int) {
        documents += delta
        switch value {
        case .string: strings += delta
        case .int: integers += delta
        case .double: floats += delta
        case .bool: booleans += delta
        case .stringList: lists += delta
        case .null: nulls += delta
        }
    }

    var bytes: [UInt8] {
        var w = ByteWriter()
        w.writeString(field)
        for n in [documents, strings, integers, floats, booleans, lists, nulls] { w.write(UInt64(max(0, n))) }
        return w.bytes
    }

    init(bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        field = try r.readString()
        documents = Int(try r.readUInt64())
        strings = Int(try r.readUInt64())
        integers = Int(try r.readUInt64())
        floats = Int(try r.readUInt64())
        booleans = Int(try r.readUInt64())
        lists = Int(try r.readUInt64())
        nulls = Int(try r.readUInt64())
    }
}

enum FieldCatalog {
    static func key(_ c: UInt32, _ field: String) -> [UInt8] {
        let f = Array(field.utf8)
        if f.count <= 400 { return Keys.collection(c) + f }
        return Keys.collection(c) + f[..<400] + [0] + SHA256.digest(f)
    }

    /// Marks collection `c`'s catalog complete (a new collection: nothing to count).
    static func markComplete(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws {
        let k = Keys.collection(c)
        try txn.put(tables.fields, k, StoredValue.seal([1], key: k))
    }

    /// A stored entry, its checksum verified.
    static func read(_ k: [UInt8], txn: LMDBTransaction, tables: Tables) throws -> FieldStats? {
        try txn.get(tables.fields, k).map { try FieldStats(bytes: StoredValue.open($0, key: k, table: "fields", collection: "number \(Keys.collectionNumber(k))")) }
    }

    static func write(_ stats: FieldStats, _ k: [UInt8], txn: LMDBTransaction, tables: Tables) throws {
        try txn.put(tables.fields, k, StoredValue.seal(stats.bytes, key: k))
    }

    /// Whether collection `c`'s catalog is complete (false for a database written before it existed,
    /// until a writable open builds it).
    static func isComplete(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws -> Bool {
        try txn.contains(tables.fields, Keys.collection(c))
    }

    /// Applies the changes of a batch: `removed` metadata objects counted out, `added` counted in.
    static func update(_ c: UInt32, removed: [Metadata], added: [Metadata], txn: LMDBTransaction, tables: Tables) throws {
        var deltas: [String: FieldStats] = [:]
        for (list, sign) in [(removed, -1), (added, 1)] {
            for m in list {
                for (field, value) in m { deltas[field, default: FieldStats(field: field)].count(value, sign) }
            }
        }
        for (field, delta) in deltas {
            let k = key(c, field)
            var stats = try read(k, txn: txn, tables: tables) ?? FieldStats(field: field)
            stats.documents += delta.documents
            stats.strings += delta.strings
            stats.integers += delta.integers
            stats.floats += delta.floats
            stats.booleans += delta.booleans
            stats.lists += delta.lists
            stats.nulls += delta.nulls
            if stats.documents <= 0 { _ = try txn.delete(tables.fields, k) } else { try write(stats, k, txn: txn, tables: tables) }
        }
    }

    /// The figures of one field (nil when no document has it).
    static func stats(_ c: UInt32, _ field: String, txn: LMDBTransaction, tables: Tables) throws -> FieldStats? {
        try read(key(c, field), txn: txn, tables: tables)
    }

    /// The fields a filter names, each once, in order of appearance.
    static func names(in filter: Filter) -> [String] {
        var out: [String] = []
        func visit(_ f: Filter) {
            switch f {
            case .and(let cs), .or(let cs): cs.forEach(visit)
            case .not(let c): visit(c)
            case .field(let name, _): if !out.contains(name) { out.append(name) }
            }
        }
        visit(filter)
        return out
    }

    /// Every field of collection `c`, sorted by name (nil when the catalog is not complete).
    static func fields(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws -> [FieldStats]? {
        guard try isComplete(c, txn: txn, tables: tables) else { return nil }
        var out: [FieldStats] = []
        try txn.forEach(tables.fields, prefix: Keys.collection(c)) { k, v in
            if k.count > 4 {
                out.append(try FieldStats(bytes: StoredValue.open(Array(v), key: Array(k), table: "fields", collection: "number \(c)")))
            }
            return true
        }
        return out.sorted { $0.field < $1.field }
    }

    /// The figures the documents give (for building and checking).
    static func count(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws -> [String: FieldStats] {
        var all: [String: FieldStats] = [:]
        try txn.forEach(tables.documents, prefix: Keys.collection(c)) { k, v in
            if let record = try? DocumentRecord(stored: v, key: k, collection: "number \(c)", withText: false) {
                for (field, value) in record.metadata { all[field, default: FieldStats(field: field)].count(value, 1) }
            }
            return true
        }
        return all
    }

    /// Drops collection `c`'s catalog and builds it again from the documents.
    static func rebuild(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws {
        try txn.deleteAll(tables.fields, prefix: Keys.collection(c))
        for (field, stats) in try count(c, txn: txn, tables: tables) { try write(stats, key(c, field), txn: txn, tables: tables) }
        try markComplete(c, txn: txn, tables: tables)
    }

    /// Removes collection `c`'s catalog (a drop).
    static func drop(_ c: UInt32, txn: LMDBTransaction, tables: Tables) throws {
        try txn.deleteAll(tables.fields, prefix: Keys.collection(c))
    }

    /// Refuses a filter that names a field no document of the collection has, or compares a field
    /// with a literal of a type it never holds, listing the known fields and the closest one.
    static func check(_ filter: Filter, collection: String, lookup: (String) throws -> FieldStats?, all: () throws -> [FieldStats]) throws {
        func known() throws -> String {
            let names = try all().map { MessageText.quoted($0.field) }
            return names.isEmpty ? "its documents have no metadata" : "its fields are " + names.prefix(30).joined(separator: ", ") + (names.count > 30 ? ", ..." : "")
        }
        func visit(_ f: Filter) throws {
            switch f {
            case .and(let cs), .or(let cs): for c in cs { try visit(c) }
            case .not(let c): try visit(c)
            case .field(let name, let condition):
                guard let stats = try lookup(name) else {
                    let hint = MessageText.closest(to: name, among: try all().map(\.field)).map { "did you mean \(MessageText.quoted($0))? " } ?? ""
                    throw QuiverError.invalidArgument("the filter names field \(MessageText.quoted(name)), which no document of '\(collection)' has: \(hint)\(try known()) (SearchOptions.allowUnknownFields / --allow-unknown-fields filters on fields not yet written)")
                }
                let literals: [FilterLiteral]
                switch condition {
                case .equal(let l), .notEqual(let l), .less(let l), .lessOrEqual(let l), .greater(let l), .greaterOrEqual(let l): literals = [l]
                case .inList(let ls), .notInList(let ls): literals = ls
                case .exists: literals = []
                }
                for l in literals where !holds(stats, l) {
                    throw QuiverError.invalidArgument("the filter compares field \(MessageText.quoted(name)) with \(l), but its values in '\(collection)' are \(stats.types.joined(separator: ", ")) (\(stats.documents) document(s)); write the value as that type (SearchOptions.allowUnknownFields / --allow-unknown-fields skips this check)")
                }
            }
        }
        try visit(filter)
    }

    /// Whether a literal can meet a value of the field (null always can: it tests absence or null).
    static func holds(_ s: FieldStats, _ literal: FilterLiteral) -> Bool {
        switch literal {
        case .null: return true
        case .string: return s.strings + s.lists > 0
        case .int, .double: return s.integers + s.floats > 0
        case .bool: return s.booleans > 0
        }
    }
}
