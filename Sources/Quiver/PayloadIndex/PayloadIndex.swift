import QuiverCore
import QuiverEncoder
import QuiverStorage

/*
 Payload indexes (format 1; docs/file-formats.md has the same text): per declared metadata field,
 one LMDB entry per (value, row) in table `payload`, with an empty value:

   key = C (u32 BE) ++ u16 BE field length ++ field (UTF-8) ++ u8 kind ++ encoded value ++ R (u64 BE)

 kind 1 keyword: the string's UTF-8 bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01
                 (so that byte order is string order and no key is a prefix of another);
                 a list of strings has one entry per distinct element
 kind 2 number:  the value as a float64, order-preserving: big-endian bits with the sign bit
                 flipped for positives and all bits flipped for negatives; an integer beyond
                 +-2^53 (not exact as a float64) also gets the entry  prefix ++ 0xFF ++ R,  which
                 tells the planner that the field's numeric entries are only candidates
 kind 3 bool:    0x00 false, 0x01 true

 Long fields and values (LMDB keys are at most 511 bytes): a field name of more than 128 UTF-8 bytes
 is written as the length 0xFFFF followed by its SHA-256 (32 bytes) instead of its bytes; a keyword
 value whose escaped form is longer than 256 bytes is written as the first 256 escaped bytes (255
 when the 256th would split an escaped NUL), then 0x00 0x02, then the SHA-256 of the whole value
 (32 bytes). Byte order is still string order, except among long values that share their first 256
 bytes; an equality or range condition whose literal is long therefore yields candidates that are
 re-checked against the documents. The longest key is 4 + 2 + 128 + 1 + 290 + 8 = 433 bytes.
*/

/// The kinds of payload index a field can have.
public enum PayloadIndexType: String, Sendable, Codable, CaseIterable {
    /// Strings and lists of strings: equality and `in`, and string ranges.
    case keyword
    /// Integers (and floats stored in the field): equality, `in` and ranges.
    case integer
    /// Floats (and integers stored in the field): equality, `in` and ranges.
    case float
    /// Booleans: equality.
    case bool

    /// The type a name of the one vocabulary that the CLI accepts everywhere names
    /// (`ImportOptions.ColumnType(named:)`): `keyword` (or `string`), `integer` (or `int`), `float`
    /// (or `double`), `bool` (or `boolean`); a list is not an index type.
    public init?(named name: String) {
        switch ImportOptions.ColumnType(named: name) {
        case .string: self = .keyword
        case .int: self = .integer
        case .float: self = .float
        case .bool: self = .bool
        case .list, nil: return nil
        }
    }

    /// The kind byte of its keys (integer and float indexes share the number encoding).
    var kind: UInt8 {
        switch self {
        case .keyword: return PayloadKeys.keywordKind
        case .integer, .float: return PayloadKeys.numberKind
        case .bool: return PayloadKeys.boolKind
        }
    }

    /// Whether its keys are numbers, among which inexact-integer markers may stand.
    var isNumeric: Bool { kind == PayloadKeys.numberKind }
}

/// A declared payload index.
public struct PayloadIndexSpec: Sendable, Codable, Equatable {
    public var field: String
    public var type: PayloadIndexType
}

enum PayloadKeys {
    /// The kind bytes of the layout above.
    static let keywordKind: UInt8 = 1
    static let numberKind: UInt8 = 2
    static let boolKind: UInt8 = 3
    /// Bytes of the row id (u64 BE) that ends every key.
    static let rowBytes = 8

    /// Field names up to this many UTF-8 bytes are written as they are; longer ones by their hash.
    static let maxInlineFieldBytes = 128
    /// Escaped keyword values up to this many bytes are written whole; longer ones as a prefix of
    /// this length and a hash.
    static let maxInlineKeywordBytes = 256

    static func fieldPrefix(_ c: UInt32, _ field: String, kind: UInt8) -> [UInt8] {
        let f = Array(field.utf8)
        if f.count > maxInlineFieldBytes { return Keys.collection(c) + [0xFF, 0xFF] + SHA256.digest(f) + [kind] }
        return Keys.collection(c) + [UInt8(f.count >> 8), UInt8(f.count & 0xFF)] + f + [kind]
    }

    static func keyword(_ s: String) -> [UInt8] {
        let escaped = escape(s)
        if escaped.count <= maxInlineKeywordBytes { return escaped + [0x00, 0x01] }
        return longKeywordPrefix(escaped) + [0x00, 0x02] + SHA256.digest(Array(s.utf8))
    }

    /// Whether `s` is indexed by a prefix and a hash (so that a condition on it is re-checked).
    static func isLongKeyword(_ s: String) -> Bool { escape(s).count > maxInlineKeywordBytes }

    /// The first `maxInlineKeywordBytes` bytes of an escaped value, one fewer when the last would be
    /// the first byte of an escaped NUL.
    static func longKeywordPrefix(_ escaped: [UInt8]) -> [UInt8] {
        var n = maxInlineKeywordBytes
        if escaped[n - 1] == 0 { n -= 1 }
        return Array(escaped[..<n])
    }

    private static func escape(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        for b in s.utf8 {
            out.append(b)
            if b == 0 { out.append(0xFF) }
        }
        return out
    }

    /// The bounds of a range scan for a keyword literal: for a long literal, the first and last keys
    /// that any value sharing its prefix can have (the candidates are then re-checked).
    static func keywordBounds(_ s: String) -> (low: [UInt8], high: [UInt8]) {
        let escaped = escape(s)
        if escaped.count <= maxInlineKeywordBytes { let k = escaped + [0x00, 0x01]; return (k, k) }
        let p = longKeywordPrefix(escaped)
        return (p + [0x00, 0x02], p + [0x00, 0x02] + [UInt8](repeating: 0xFF, count: 32))
    }

    static func number(_ d: Double) -> [UInt8] {
        let bits = d == 0 ? 0 : d.bitPattern  // -0.0 and 0.0 are one value
        let ordered = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        return withUnsafeBytes(of: ordered.bigEndian) { Array($0) }
    }

    static func bool(_ b: Bool) -> [UInt8] { [b ? 1 : 0] }

    /// The encoded values a metadata value contributes to an index of `type` (none when its type
    /// does not belong in that index).
    static func values(_ v: MetadataValue, type: PayloadIndexType) -> [[UInt8]] {
        switch (type, v) {
        case (.keyword, .string(let s)): return [keyword(s)]
        case (.keyword, .stringList(let l)): return Array(Set(l)).map(keyword)
        case (.integer, .int(let i)), (.float, .int(let i)): return [number(Double(i))]
        case (.integer, .double(let d)), (.float, .double(let d)): return d.isNaN ? [] : [number(d)]
        case (.bool, .bool(let b)): return [bool(b)]
        default: return []
        }
    }

    static func row(_ r: UInt64) -> [UInt8] { withUnsafeBytes(of: r.bigEndian) { Array($0) } }

    /// The marker byte after a numeric field's prefix for integers that float64 rounds.
    static let inexactMarker: UInt8 = 0xFF

    /// Whether `key`, under a numeric field prefix of `prefixCount` bytes, is an inexact-integer
    /// marker (prefix ++ 0xFF ++ R): one byte shorter than a number entry, whose first value byte
    /// can also be 0xFF.
    static func isInexactMarker(_ key: UnsafeRawBufferPointer, prefixCount: Int) -> Bool {
        key.count == prefixCount + 1 + rowBytes && key[prefixCount] == inexactMarker
    }

    /// Whether an integer is exactly representable as a float64.
    static func isExact(_ i: Int64) -> Bool { i.magnitude <= 1 << 53 }
}

enum PayloadIndexing {
    /// The `payload` keys of one document's metadata for every index.
    static func keys(_ specs: [PayloadIndexSpec], number: UInt32, row: UInt64, metadata: Metadata) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        for spec in specs {
            guard let value = metadata[spec.field] else { continue }
            let prefix = PayloadKeys.fieldPrefix(number, spec.field, kind: spec.type.kind)
            keys += PayloadKeys.values(value, type: spec.type).map { prefix + $0 + PayloadKeys.row(row) }
            if spec.type.isNumeric, case .int(let i) = value, !PayloadKeys.isExact(i) {
                keys.append(prefix + [PayloadKeys.inexactMarker] + PayloadKeys.row(row))
            }
        }
        return keys
    }

    /// Adds (or, with `remove`, removes) the entries of one document's metadata for every index.
    static func update(_ specs: [PayloadIndexSpec], number: UInt32, row: UInt64, metadata: Metadata,
                       remove: Bool, txn: LMDBTransaction, tables: Tables) throws {
        for key in keys(specs, number: number, row: row, metadata: metadata) {
            if remove { try txn.delete(tables.payload, key) } else { try txn.put(tables.payload, key, []) }
        }
    }

    /// Builds a new index over every stored document of collection `number`.
    static func backfill(_ spec: PayloadIndexSpec, number: UInt32, name: String, txn: LMDBTransaction, tables: Tables) throws {
        var entries: [(UInt64, Metadata)] = []
        try txn.forEach(tables.documents, prefix: Keys.collection(number)) { k, v in
            let record = try DocumentRecord(stored: v, key: k, collection: name, withText: false)
            entries.append((record.row, record.metadata))
            return true
        }
        for (row, metadata) in entries {
            try update([spec], number: number, row: row, metadata: metadata, remove: false, txn: txn, tables: tables)
        }
    }

    /// Drops every payload entry of collection `info` and builds its declared indexes again from
    /// the stored documents (`repair`, and a format upgrade that changes the key encoding).
    static func rebuild(_ info: CollectionInfo, txn: LMDBTransaction, tables: Tables) throws {
        try txn.deleteAll(tables.payload, prefix: Keys.collection(info.number))
        for spec in info.payloadIndexes ?? [] { try backfill(spec, number: info.number, name: info.name, txn: txn, tables: tables) }
    }
}
