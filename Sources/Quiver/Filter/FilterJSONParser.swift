// The JSON form of a filter (Mongo style):
//
//   filter     := { key: entry, ... }                 all entries must hold (implicit $and; {} matches all)
//   entry      := "$and": [filter, ...]  |  "$or": [filter, ...]  |  "$not": filter
//              |  field: literal                      implicit $eq
//              |  field: { op: operand, ... }         all operators must hold
//   op         := "$eq" | "$ne" | "$lt" | "$lte" | "$gt" | "$gte"    operand: literal
//              |  "$in" | "$nin"                                    operand: non-empty [literal, ...]
//              |  "$exists"                                         operand: true | false
//              |  "$not"                                            operand: { op: operand, ... }
//   literal    := string | number | true | false | null   (a number without '.', 'e' or 'E' is an int)
//
// A key starting with '$' is an operator, so a field whose name starts with '$' can only be named in
// the text form (backquoted); an empty key is an error, as metadata keys are never empty.
// Range operators need a number or a string. `{"f": {"$exists": false}}` is `not exists(f)`;
// `{"f": {"$not": {...}}}` is `not (conditions on f)`. Keys are kept in input order; a key twice in
// one object is an error (JSON leaves it undefined, and silently keeping one would hide a typo).
//
// The JSON is read by a small parser written here rather than JSONSerialization, so that every
// error carries the byte offset and JSON path of the value at fault, and so that nesting is bounded
// before recursing (a 10^6-deep document is an error, not a stack overflow).

extension Filter {
    /// Parses the JSON form (grammar at the top of FilterJSONParser.swift).
    /// - Throws: `FilterError` with the byte offset, line, column and JSON path of the fault.
    public init(json: String, limits: FilterLimits = .default) throws(FilterError) {
        try self.init(jsonBytes: Array(json.utf8), limits: limits)
    }

    /// Parses the JSON form from UTF-8 bytes (e.g. the contents of a file or a `Data`).
    public init<Bytes: Sequence<UInt8>>(jsonUTF8 bytes: Bytes, limits: FilterLimits = .default) throws(FilterError) {
        try self.init(jsonBytes: Array(bytes), limits: limits)
    }

    private init(jsonBytes bytes: [UInt8], limits: FilterLimits) throws(FilterError) {
        do throws(FilterError) {
            if bytes.count > limits.maxInputBytes {
                throw FilterError("the filter is \(bytes.count) bytes; the limit is \(limits.maxInputBytes)", offset: 0)
            }
            // Two JSON levels per filter level ({"$or": [ {...} ]}) plus the field's operator object.
            var reader = JSONReader(bytes: bytes, maxDepth: 2 * limits.maxDepth + 2)
            let root = try reader.readDocument()
            var builder = JSONFilterBuilder(limits: limits)
            self = try builder.filter(root, path: "$", depth: 1)
            // The builder checks depth as it goes; this catches the last level an operator
            // object can add, without recursion.
            try self.validate(limits: limits)
        } catch {
            throw error.located(in: bytes)
        }
    }
}

/// A parsed JSON value with the byte offset where it starts.
struct JSONNode {
    indirect enum Kind {
        /// Members in input order, each with the offset of its key.
        case object([(key: String, keyOffset: Int, value: JSONNode)])
        case array([JSONNode])
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case null
    }

    var kind: Kind
    var offset: Int

    /// A word for error messages: "an object", "a string", ...
    var typeName: String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .int, .double: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A strict RFC 8259 reader over UTF-8 bytes with a nesting bound checked before each recursion.
struct JSONReader: FilterByteReader {
    let bytes: [UInt8]
    let maxDepth: Int
    /// An integer outside the 64-bit range becomes the nearest double (documents) instead of an
    /// error (filters).
    let wideIntegersAsDoubles: Bool
    var position = 0

    init(bytes: [UInt8], maxDepth: Int, wideIntegersAsDoubles: Bool = false) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.wideIntegersAsDoubles = wideIntegersAsDoubles
    }

    /// One value and nothing after it but whitespace.
    mutating func readDocument() throws(FilterError) -> JSONNode {
        skipWhitespace()
        let v = try readValue(depth: 1)
        skipWhitespace()
        if position < bytes.count { throw FilterError("unexpected text after the end of the JSON value", offset: position) }
        return v
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private func describeHere() -> String {
        guard position < bytes.count else { return "the end of the input" }
        let b = bytes[position]
        return b >= 0x21 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(FilterError) {
        guard position < bytes.count, bytes[position] == byte else {
            throw FilterError("expected \(what), found \(describeHere())", offset: position)
        }
        position += 1
    }

    /// Steps over the `{` or `[` at `position` (refusing nesting deeper than `maxDepth`) and the
    /// whitespace after it; returns whether members follow: false when `close` does (an empty
    /// container, whose `close` it also steps over).
    private mutating func open(depth: Int, closedBy close: UInt8) throws(FilterError) -> Bool {
        if depth > maxDepth { throw FilterError("the JSON is nested more than \(maxDepth) levels deep", offset: position) }
        position += 1
        skipWhitespace()
        guard position < bytes.count, bytes[position] == close else { return true }
        position += 1
        return false
    }

    /// After a member or item: true past a `,` (another follows), false past `close`; else an error
    /// that expected `what`.
    private mutating func more(closedBy close: UInt8, _ what: String) throws(FilterError) -> Bool {
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: ",") { position += 1; return true }
        try expect(close, what)
        return false
    }

    private mutating func readValue(depth: Int) throws(FilterError) -> JSONNode {
        guard position < bytes.count else { throw FilterError("expected a JSON value, found the end of the input", offset: position) }
        let start = position
        switch bytes[position] {
        case UInt8(ascii: "{"):
            var members: [(key: String, keyOffset: Int, value: JSONNode)] = []
            var seen = Set<String>()
            guard try open(depth: depth, closedBy: UInt8(ascii: "}")) else { return JSONNode(kind: .object(members), offset: start) }
            repeat {
                skipWhitespace()
                let keyOffset = position
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw FilterError("expected a string key, found \(describeHere())", offset: position)
                }
                let key = try readQuotedString(.json)
                if !seen.insert(key).inserted { throw FilterError("the key \"\(key)\" appears twice in this object", offset: keyOffset) }
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':' after an object key")
                skipWhitespace()
                let value = try readValue(depth: depth + 1)
                members.append((key, keyOffset, value))
            } while try more(closedBy: UInt8(ascii: "}"), "',' or '}' in an object")
            return JSONNode(kind: .object(members), offset: start)
        case UInt8(ascii: "["):
            var items: [JSONNode] = []
            guard try open(depth: depth, closedBy: UInt8(ascii: "]")) else { return JSONNode(kind: .array(items), offset: start) }
            repeat {
                skipWhitespace()
                items.append(try readValue(depth: depth + 1))
            } while try more(closedBy: UInt8(ascii: "]"), "',' or ']' in an array")
            return JSONNode(kind: .array(items), offset: start)
        case UInt8(ascii: "\""):
            return JSONNode(kind: .string(try readQuotedString(.json)), offset: start)
        case UInt8(ascii: "t"): try readWord("true"); return JSONNode(kind: .bool(true), offset: start)
        case UInt8(ascii: "f"): try readWord("false"); return JSONNode(kind: .bool(false), offset: start)
        case UInt8(ascii: "n"): try readWord("null"); return JSONNode(kind: .null, offset: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try readNumber()
        default:
            throw FilterError("expected a JSON value, found \(describeHere())", offset: start)
        }
    }

    private mutating func readWord(_ word: StaticString) throws(FilterError) {
        let start = position
        let w = word.withUTF8Buffer { Array($0) }
        guard position + w.count <= bytes.count, Array(bytes[position..<position + w.count]) == w else {
            throw FilterError("expected a JSON value, found \(describeHere())", offset: start)
        }
        position += w.count
    }

    /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; an int unless it has a fraction or exponent.
    private mutating func readNumber() throws(FilterError) -> JSONNode {
        let start = position
        func digits() -> Int {
            let s = position
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
            return position - s
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let intStart = position
        let n = digits()
        if n == 0 { throw FilterError("a number needs digits after '-'", offset: start) }
        if n > 1, bytes[intStart] == UInt8(ascii: "0") { throw FilterError("a number may not start with 0", offset: start) }
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            isInteger = false
            if digits() == 0 { throw FilterError("a number needs digits after '.'", offset: start) }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            isInteger = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            if digits() == 0 { throw FilterError("a number needs digits in its exponent", offset: start) }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, !wideIntegersAsDoubles || Int64(text) != nil {
            guard let i = Int64(text) else { throw FilterError("the integer \(text) is outside the 64-bit range", offset: start) }
            return JSONNode(kind: .int(i), offset: start)
        }
        guard let d = Double(text), d.isFinite else { throw FilterError("the number \(text) is outside the double range", offset: start) }
        return JSONNode(kind: .double(d), offset: start)
    }
}

/// Turns a JSON tree into a normalized `Filter` (grammar at the top of this file).
struct JSONFilterBuilder {
    let limits: FilterLimits

    /// `node` must be an object; `depth` is the filter level it sits at.
    mutating func filter(_ node: JSONNode, path: String, depth: Int) throws(FilterError) -> Filter {
        guard case .object(let members) = node.kind else {
            throw FilterError("a filter must be a JSON object, not \(node.typeName)", offset: node.offset, path: path)
        }
        if depth > limits.maxDepth { throw FilterError("the filter is nested more than \(limits.maxDepth) levels deep", offset: node.offset, path: path) }
        var parts: [Filter] = []
        for (key, keyOffset, value) in members {
            let memberPath = Self.append(path, key)
            switch key {
            case "$and", "$or":
                guard case .array(let items) = value.kind else {
                    throw FilterError("\(key) takes an array of filters, not \(value.typeName)", offset: value.offset, path: memberPath)
                }
                if items.isEmpty { throw FilterError("\(key) needs at least one filter", offset: value.offset, path: memberPath) }
                var children: [Filter] = []
                for (i, item) in items.enumerated() {
                    children.append(try filter(item, path: memberPath + "[\(i)]", depth: depth + 1))
                }
                parts.append(key == "$and" ? .all(children) : .any(children))
            case "$not":
                parts.append(.negation(of: try filter(value, path: memberPath, depth: depth + 1)))
            default:
                if key.isEmpty {
                    throw FilterError("an empty field name (metadata keys are never empty)", offset: keyOffset, path: memberPath)
                }
                if key.hasPrefix("$") {
                    throw FilterError("unknown operator \(key) (a filter's keys are field names, $and, $or or $not)", offset: keyOffset, path: memberPath)
                }
                parts.append(try fieldConditions(key, value, path: memberPath, depth: depth))
            }
        }
        return .all(parts)
    }

    /// The conditions on one field: a literal (implicit `$eq`) or an object of operators.
    private func fieldConditions(_ field: String, _ node: JSONNode, path: String, depth: Int) throws(FilterError) -> Filter {
        switch node.kind {
        case .array:
            throw FilterError("a list cannot be compared with '\(field)'; use {\"$in\": [...]}", offset: node.offset, path: path)
        case .object(let ops):
            if ops.isEmpty { throw FilterError("an empty operator object for '\(field)'", offset: node.offset, path: path) }
            if depth > limits.maxDepth { throw FilterError("the filter is nested more than \(limits.maxDepth) levels deep", offset: node.offset, path: path) }
            var parts: [Filter] = []
            for (op, opOffset, operand) in ops {
                let opPath = Self.append(path, op)
                switch op {
                case "$eq": parts.append(.field(field, .equal(try literal(operand, path: opPath, op: op))))
                case "$ne": parts.append(.field(field, .notEqual(try literal(operand, path: opPath, op: op))))
                case "$lt": parts.append(.field(field, .less(try rangeLiteral(operand, path: opPath, op: op))))
                case "$lte": parts.append(.field(field, .lessOrEqual(try rangeLiteral(operand, path: opPath, op: op))))
                case "$gt": parts.append(.field(field, .greater(try rangeLiteral(operand, path: opPath, op: op))))
                case "$gte": parts.append(.field(field, .greaterOrEqual(try rangeLiteral(operand, path: opPath, op: op))))
                case "$in": parts.append(.field(field, .inList(try literalList(operand, path: opPath, op: op))))
                case "$nin": parts.append(.field(field, .notInList(try literalList(operand, path: opPath, op: op))))
                case "$exists":
                    guard case .bool(let b) = operand.kind else {
                        throw FilterError("$exists takes true or false, not \(operand.typeName)", offset: operand.offset, path: opPath)
                    }
                    parts.append(b ? .field(field, .exists) : .not(.field(field, .exists)))
                case "$not":
                    guard case .object = operand.kind else {
                        throw FilterError("$not on a field takes an object of operators, not \(operand.typeName)", offset: operand.offset, path: opPath)
                    }
                    parts.append(.not(try fieldConditions(field, operand, path: opPath, depth: depth + 1)))
                default:
                    let hint = op.hasPrefix("$") ? "unknown operator \(op)" : "'\(op)' is not an operator (operators start with '$'; nested fields do not exist)"
                    throw FilterError(hint + " on '\(field)'", offset: opOffset, path: opPath)
                }
            }
            return .all(parts)
        default:
            return .field(field, .equal(try literal(node, path: path, op: "$eq")))
        }
    }

    private func literal(_ node: JSONNode, path: String, op: String) throws(FilterError) -> FilterLiteral {
        switch node.kind {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        case .null: return .null
        case .object, .array:
            throw FilterError("\(op) takes a string, number, boolean or null, not \(node.typeName)", offset: node.offset, path: path)
        }
    }

    private func rangeLiteral(_ node: JSONNode, path: String, op: String) throws(FilterError) -> FilterLiteral {
        let v = try literal(node, path: path, op: op)
        switch v {
        case .string, .int, .double: return v
        case .bool, .null: throw FilterError("\(op) takes a number or a string, not \(node.typeName)", offset: node.offset, path: path)
        }
    }

    private func literalList(_ node: JSONNode, path: String, op: String) throws(FilterError) -> [FilterLiteral] {
        guard case .array(let items) = node.kind else {
            throw FilterError("\(op) takes an array of literals, not \(node.typeName)", offset: node.offset, path: path)
        }
        if items.isEmpty { throw FilterError("\(op) needs at least one value (an empty \(op) is always \(op == "$in" ? "false" : "true"))", offset: node.offset, path: path) }
        if items.count > limits.maxListItems {
            throw FilterError("\(op) has \(items.count) values; the limit is \(limits.maxListItems)", offset: node.offset, path: path)
        }
        var out: [FilterLiteral] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { out.append(try literal(item, path: path + "[\(i)]", op: op + " item")) }
        return out
    }

    /// `$.a.b`, or `$["odd key"]` for keys that are not plain words.
    static func append(_ path: String, _ key: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy { s in
            s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "_" || s == "$" || s == "-"
        }
        return plain ? path + "." + key : path + "[" + FilterRendering.jsonString(key) + "]"
    }
}
