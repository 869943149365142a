import Foundation

extension Document {
    /// The document as one line of JSON (what `quiver export` writes): a float metadata value is
    /// written with a fraction or an exponent (`2.0`), so `Document(json:)` reads every value back
    /// as the type it was (the `Codable` bridge through `JSONEncoder` cannot: it writes `2.0` as `2`).
    public func json() -> Data { Data(JSONLine.encode(self).dropLast(1)) }

    /// Parses one JSON document, `{"id", "text", "metadata", "vector"}` (only `id` required), as the
    /// importer and `quiver put` read it. Unlike the `Codable` conformance (whose decoder cannot
    /// see how a number was written), a number written with a fraction or an exponent (`2.0`, `1e3`)
    /// becomes a `.double` and one written without (`2`) an `.int`, so exported files round-trip.
    /// Bytes that are not valid UTF-8 are refused (never replaced with U+FFFD, which could make two
    /// different ids one). Throws `QuiverError.invalidArgument` with a one-line reason.
    public init(json: Data) throws {
        if let offset = Document.invalidUTF8Offset(json) {
            throw QuiverError.invalidArgument("invalid UTF-8 at byte \(offset + 1) (0x\(String(json[json.startIndex + offset], radix: 16, uppercase: true)))")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) } catch {
            throw QuiverError.invalidArgument("not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw QuiverError.invalidArgument("a document must be a JSON object") }
        for key in fields.keys where !["id", "text", "metadata", "vector"].contains(key) {
            throw QuiverError.invalidArgument("unknown field '\(key)' (a document has id, text, metadata and vector)")
        }
        guard let id = fields["id"] as? String else {
            throw QuiverError.invalidArgument(fields["id"] == nil ? "missing field 'id'" : "the id must be a string")
        }
        var doc = Document(id: id)
        switch fields["text"] {
        case nil, is NSNull: break
        case let t as String: doc.text = t
        default: throw QuiverError.invalidArgument("the text must be a string")
        }
        switch fields["metadata"] {
        case nil, is NSNull: break
        case let m as [String: Any]:
            for (key, value) in m { doc.metadata[key] = try Document.metadataValue(value, key: key) }
        default:
            throw QuiverError.invalidArgument("metadata must be an object whose values are strings, numbers, booleans, null or lists of strings")
        }
        switch fields["vector"] {
        case nil, is NSNull: break
        case let v as [Any]:
            var vector: [Float] = []
            vector.reserveCapacity(v.count)
            for (i, x) in v.enumerated() {
                guard let n = x as? NSNumber, !Document.isBool(n) else { throw QuiverError.invalidArgument("vector component \(i) is not a number") }
                vector.append(n.floatValue)
            }
            doc.vector = vector
        default:
            throw QuiverError.invalidArgument("the vector must be an array of numbers")
        }
        self = doc
    }

    /// The offset of the first byte that does not begin a valid UTF-8 sequence, or nil when all of
    /// `bytes` is valid UTF-8.
    public static func invalidUTF8Offset<Bytes: Swift.Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    static func isBool(_ n: NSNumber) -> Bool {
        // JSONSerialization makes booleans with the char type and numbers never with it.
        String(cString: n.objCType) == "c"
    }

    static func metadataValue(_ value: Any, key: String) throws -> MetadataValue {
        switch value {
        case is NSNull: return .null
        case let s as String: return .string(s)
        case let n as NSNumber:
            if isBool(n) { return .bool(n.boolValue) }
            switch String(cString: n.objCType) {
            case "d", "f": return .double(n.doubleValue)
            case "Q":
                guard n.uint64Value <= UInt64(Int64.max) else { return .double(n.doubleValue) }
                return .int(n.int64Value)
            default: return .int(n.int64Value)
            }
        case let list as [Any]:
            var out: [String] = []
            for item in list {
                guard let s = item as? String else {
                    throw QuiverError.invalidArgument("metadata '\(key)': a list may hold only strings")
                }
                out.append(s)
            }
            return .stringList(out)
        default:
            throw QuiverError.invalidArgument("metadata '\(key)': nested objects are not supported (values are strings, numbers, booleans, null or lists of strings)")
        }
    }
}
