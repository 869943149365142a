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
        try self.init(node: try Document.readJSON(json, maxDepth: 8))
    }

    /// Parses a JSON array of documents (what `quiver put` reads when its input starts with `[`),
    /// each as `init(json:)` does. Throws `QuiverError.invalidArgument` naming the document (1-based)
    /// and its line.
    public static func documents(jsonArray json: Data) throws -> [Document] {
        let root = try readJSON(json, maxDepth: 9)
        guard case .array(let items) = root.kind else { throw QuiverError.invalidArgument("not a JSON array") }
        return try items.enumerated().map { i, item in
            do { return try Document(node: item) } catch QuiverError.invalidArgument(let reason) {
                let line = json.prefix(item.offset).reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
                throw QuiverError.invalidArgument("document \(i + 1) (line \(line)): \(reason)")
            }
        }
    }

    /// Valid UTF-8 first, then the strict reader of the filter language: numbers are converted from their text with
    /// correct rounding (Foundation's JSONSerialization on Linux can be one ulp off), and a key
    /// given twice is refused rather than one of its values silently dropped.
    private static func readJSON(_ json: Data, maxDepth: Int) throws -> JSONNode {
        if let offset = Document.invalidUTF8Offset(json) {
            throw QuiverError.invalidArgument("invalid UTF-8 at byte \(offset + 1) (0x\(String(json[json.startIndex + offset], radix: 16, uppercase: true)))")
        }
        var reader = JSONReader(bytes: Array(json), maxDepth: maxDepth, wideIntegersAsDoubles: true)
        do { return try reader.readDocument() } catch {
            throw QuiverError.invalidArgument("not valid JSON: \(error.message) (byte \(error.offset + 1))")
        }
    }

    private init(node root: JSONNode) throws {
        guard case .object(let fields) = root.kind else { throw QuiverError.invalidArgument("a document must be a JSON object") }
        var doc: Document?
        for field in fields where field.key == "id" {
            guard case .string(let id) = field.value.kind else { throw QuiverError.invalidArgument("the id must be a string") }
            doc = Document(id: id)
        }
        guard var doc else { throw QuiverError.invalidArgument("missing field 'id'") }
        for (key, _, value) in fields {
            switch (key, value.kind) {
            case ("id", _), ("text", .null), ("metadata", .null), ("vector", .null): break
            case ("text", .string(let t)): doc.text = t
            case ("text", _): throw QuiverError.invalidArgument("the text must be a string")
            case ("metadata", .object(let members)):
                for (name, _, v) in members { doc.metadata[name] = try Document.metadataValue(v, key: name) }
            case ("metadata", _):
                throw QuiverError.invalidArgument("metadata must be an object whose values are strings, numbers, booleans, null or lists of strings")
            case ("vector", .array(let items)):
                var vector: [Float] = []
                vector.reserveCapacity(items.count)
                for (i, x) in items.enumerated() {
                    switch x.kind {
                    case .int(let n): vector.append(Float(n))
                    case .double(let d): vector.append(Float(d))
                    default: throw QuiverError.invalidArgument("vector component \(i) is not a number")
                    }
                }
                doc.vector = vector
            case ("vector", _): throw QuiverError.invalidArgument("the vector must be an array of numbers")
            default: throw QuiverError.invalidArgument("unknown field '\(key)' (a document has id, text, metadata and vector)")
            }
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

    static func metadataValue(_ value: JSONNode, key: String) throws -> MetadataValue {
        switch value.kind {
        case .null: return .null
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .array(let items):
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item.kind else {
                    throw QuiverError.invalidArgument("metadata '\(key)': a list may hold only strings")
                }
                out.append(s)
            }
            return .stringList(out)
        case .object:
            throw QuiverError.invalidArgument("metadata '\(key)': nested objects are not supported (values are strings, numbers, booleans, null or lists of strings)")
        }
    }
}
