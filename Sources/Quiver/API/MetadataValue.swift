import QuiverCore

/// One value of a document's metadata. Metadata is a flat object: keys are strings, values are
/// strings, integers, floats, booleans, lists of strings, or null (no nested objects).
public enum MetadataValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case stringList([String])
    case null

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        case .stringList(let l): return "[" + l.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .null: return "null"
        }
    }
}

/// A document's metadata object.
public typealias Metadata = [String: MetadataValue]

extension MetadataValue {
    /// The value of a Swift value of an everyday type: `MetadataValue(year)` for an `Int`,
    /// `MetadataValue(tags)` for a `[String]`, ...
    public init(_ value: some MetadataConvertible) { self = value.metadataValue }

    /// The string, or nil for another type.
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    /// The integer, or nil for another type (a float is not converted).
    public var int64Value: Int64? { if case .int(let i) = self { return i }; return nil }
    /// The integer as an `Int`, or nil for another type.
    public var intValue: Int? { int64Value.map { Int($0) } }
    /// The number as a `Double`: a float, or an integer converted (nil for another type).
    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    /// The boolean, or nil for another type.
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    /// The list of strings, or nil for another type.
    public var stringListValue: [String]? { if case .stringList(let l) = self { return l }; return nil }
    /// Whether the value is null.
    public var isNull: Bool { self == .null }
}

/// A Swift type whose values are metadata values, so that
/// `Document(id: "a", metadata: ["year": year, "tags": tags])` takes an `Int` and a `[String]`
/// variable as they are. Integers, floats, booleans, strings, lists of strings, optionals of these
/// (nil is null) and `MetadataValue` itself conform.
public protocol MetadataConvertible {
    /// This value as metadata.
    var metadataValue: MetadataValue { get }
}

extension MetadataValue: MetadataConvertible { public var metadataValue: MetadataValue { self } }
extension String: MetadataConvertible { public var metadataValue: MetadataValue { .string(self) } }
extension Substring: MetadataConvertible { public var metadataValue: MetadataValue { .string(String(self)) } }
extension Int: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension Int64: MetadataConvertible { public var metadataValue: MetadataValue { .int(self) } }
extension Int32: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension Int16: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension Int8: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension UInt32: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension UInt16: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension UInt8: MetadataConvertible { public var metadataValue: MetadataValue { .int(Int64(self)) } }
extension Double: MetadataConvertible { public var metadataValue: MetadataValue { .double(self) } }
extension Float: MetadataConvertible { public var metadataValue: MetadataValue { .double(Double(self)) } }
extension Bool: MetadataConvertible { public var metadataValue: MetadataValue { .bool(self) } }
extension Array: MetadataConvertible where Element == String { public var metadataValue: MetadataValue { .stringList(self) } }
extension Optional: MetadataConvertible where Wrapped: MetadataConvertible {
    public var metadataValue: MetadataValue { self?.metadataValue ?? .null }
}

extension MetadataValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: String...) { self = .stringList(elements) }
    public init(nilLiteral: ()) { self = .null }
}

extension MetadataValue: Codable {
    /// Decodes a JSON value: a string, number (integral numbers become `.int`), boolean, null, or an
    /// array of strings. Objects and other arrays are rejected with a `DecodingError`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let l = try? c.decode([String].self) { self = .stringList(l); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "a metadata value must be a string, number, boolean, null or a list of strings")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        case .stringList(let l): try c.encode(l)
        case .null: try c.encodeNil()
        }
    }
}

/// The binary encoding of metadata in LMDB and in the write-ahead log (docs/file-formats.md):
/// varint count, then per key (sorted): string key, a tag byte, and the value
/// (0 null; 1 string; 2 int64; 3 float64; 4 false; 5 true; 6 list: varint count + strings).
enum MetadataCodec {
    static func encode(_ metadata: Metadata, into w: inout ByteWriter) {
        w.writeVarint(UInt64(metadata.count))
        for key in metadata.keys.sorted() {
            w.writeString(key)
            switch metadata[key]! {
            case .null: w.write(UInt8(0))
            case .string(let s): w.write(UInt8(1)); w.writeString(s)
            case .int(let i): w.write(UInt8(2)); w.write(i)
            case .double(let d): w.write(UInt8(3)); w.write(d)
            case .bool(let b): w.write(UInt8(b ? 5 : 4))
            case .stringList(let l):
                w.write(UInt8(6))
                w.writeVarint(UInt64(l.count))
                for s in l { w.writeString(s) }
            }
        }
    }

    static func decode(_ r: inout ByteReader) throws -> Metadata {
        let count = try r.readLength(limit: Limits.maxMetadataKeys)
        var out = Metadata(minimumCapacity: count)
        for _ in 0..<count {
            let key = try r.readString()
            let tagOffset = r.offset
            switch try r.readUInt8() {
            case 0: out[key] = .null
            case 1: out[key] = .string(try r.readString())
            case 2: out[key] = .int(try r.readInt64())
            case 3: out[key] = .double(try r.readDouble())
            case 4: out[key] = .bool(false)
            case 5: out[key] = .bool(true)
            case 6:
                let n = try r.readLength(limit: Limits.maxListItems)
                var l: [String] = []
                l.reserveCapacity(n)
                for _ in 0..<n { l.append(try r.readString()) }
                out[key] = .stringList(l)
            case let tag: throw CodecError("unknown metadata tag \(tag)", offset: tagOffset)
            }
        }
        return out
    }
}
