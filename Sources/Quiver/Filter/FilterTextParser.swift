// The text form of a filter, for the CLI:
//
//   filter     := or
//   or         := and ("or" and)*
//   and        := unary ("and" unary)*                    precedence: not > and > or
//   unary      := "not" unary | primary
//   primary    := "(" filter ")"
//              |  "exists" "(" field ")"                   the key is present
//              |  "true" | "false"                         every document / no document
//              |  field "exists"
//              |  field op literal                         op: = == != <> < <= > >=
//              |  field ["not"] "in" "(" literal ("," literal)* ")"
//   field      := identifier | `backquoted` (`` doubles a backquote inside)
//   identifier := (letter | "_") (letter | mark | digit | "_" | "." | "-")*   in any script
//   literal    := "string" | 'string' | int | float | true | false | null
//
// Keywords (and, or, not, in, exists, true, false, null) are case-insensitive; a field with such a
// name must be backquoted. Strings take the escapes \" \' \\ \/ \n \t \r \b \f \uXXXX (and
// \u{X...} for any scalar). A number with '.', 'e' or 'E' is a float, otherwise an int
// (`2` is an int, `2.0` a float; they still compare equal, see Filter.swift).
//
// The parser is recursive descent with an explicit depth counter: each "(" and each "not" is one
// level, checked before recursing, so the recursion is bounded by `FilterLimits.maxDepth`.

extension Filter {
    /// Parses the text form (grammar at the top of FilterTextParser.swift).
    /// - Throws: `FilterError` whose `column` points at the offending token (see `caretDiagnostic`).
    public init(text: String, limits: FilterLimits = .default) throws(FilterError) {
        let bytes = Array(text.utf8)
        do throws(FilterError) {
            if bytes.count > limits.maxInputBytes {
                throw FilterError("the filter is \(bytes.count) bytes; the limit is \(limits.maxInputBytes)", offset: 0)
            }
            var lexer = FilterTextLexer(bytes: bytes)
            var parser = FilterTextParser(tokens: try lexer.tokenize(), limits: limits, end: bytes.count)
            self = try parser.parseFilter()
            try self.validate(limits: limits)
        } catch {
            throw error.located(in: bytes)
        }
    }
}

/// One token of the text form, with the byte offset where it starts.
struct FilterTextToken: Equatable {
    enum Kind: Equatable {
        case identifier(String)     // a bare word that is not a keyword, or a backquoted field
        case keyword(String)        // lowercased: and, or, not, in, exists, true, false, null
        case string(String)
        case int(Int64)
        case double(Double)
        case symbol(String)         // ( ) , = == != <> < <= > >=
    }

    var kind: Kind
    var offset: Int

    var display: String {
        switch kind {
        case .identifier(let s): return "'\(s)'"
        case .keyword(let s): return "'\(s)'"
        case .string: return "a string"
        case .int, .double: return "a number"
        case .symbol(let s): return "'\(s)'"
        }
    }
}

/// Splits text-form input into tokens.
struct FilterTextLexer: FilterByteReader {
    static let keywords: Set<String> = ["and", "or", "not", "in", "exists", "true", "false", "null"]

    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func tokenize() throws(FilterError) -> [FilterTextToken] {
        var tokens: [FilterTextToken] = []
        while true {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
            guard position < bytes.count else { return tokens }
            let start = position
            let b = bytes[position]
            switch b {
            case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: ","):
                position += 1
                tokens.append(.init(kind: .symbol(String(Character(Unicode.Scalar(b)))), offset: start))
            case UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"):
                let two = position + 1 < bytes.count ? String(decoding: bytes[position...position + 1], as: UTF8.self) : ""
                if ["==", "!=", "<>", "<=", ">="].contains(two) {
                    position += 2
                    tokens.append(.init(kind: .symbol(two), offset: start))
                } else if b == UInt8(ascii: "!") {
                    throw FilterError("unexpected character '!' (use != or not)", offset: start)
                } else {
                    position += 1
                    tokens.append(.init(kind: .symbol(String(Character(Unicode.Scalar(b)))), offset: start))
                }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                tokens.append(.init(kind: .string(try readQuotedString(.text)), offset: start))
            case UInt8(ascii: "`"):
                tokens.append(.init(kind: .identifier(try readBackquoted()), offset: start))
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                tokens.append(.init(kind: try readNumber(), offset: start))
            default:
                if let length = Self.identifierLength(bytes, from: start), length > 0 {
                    position += length
                    let word = String(decoding: bytes[start..<position], as: UTF8.self)
                    let lower = word.lowercased()
                    tokens.append(.init(kind: Self.keywords.contains(lower) ? .keyword(lower) : .identifier(word), offset: start))
                } else {
                    throw FilterError("unexpected character \(describe(at: start))", offset: start)
                }
            }
        }
    }

    /// The byte length of the bare identifier starting at `start` (0 if none starts there).
    /// A letter (any script) or '_' starts one; letters, marks, digits, '_', '.' and '-' continue it.
    static func identifierLength(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < bytes.count {
            guard let (scalar, width) = scalar(in: bytes, at: i) else { return nil }
            let p = scalar.properties
            let ok: Bool
            if i == start {
                ok = scalar == "_" || p.isAlphabetic
            } else {
                ok = scalar == "_" || scalar == "." || scalar == "-" || p.isAlphabetic
                    || p.generalCategory == .decimalNumber || p.generalCategory == .nonspacingMark || p.generalCategory == .spacingMark
            }
            if !ok { break }
            i += width
        }
        return i - start
    }

    /// Whether `name` prints as a bare identifier that reads back as itself.
    static func isBareIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && identifierLength(bytes, from: 0) == bytes.count && !keywords.contains(name.lowercased())
    }

    /// The scalar whose UTF-8 encoding starts at `i`, and its width; nil for invalid UTF-8.
    static func scalar(in bytes: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        let lead = bytes[i]
        let width = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
        guard width > 0, i + width <= bytes.count else { return nil }
        var decoder = UTF8()
        var it = bytes[i..<i + width].makeIterator()
        if case .scalarValue(let s) = decoder.decode(&it) { return (s, width) }
        return nil
    }

    private func describe(at offset: Int) -> String {
        // Decode the whole scalar at `offset` so that the message names the character typed.
        let end = min(offset + 4, bytes.count)
        if let c = String(decoding: bytes[offset..<end], as: UTF8.self).first { return "'\(c)'" }
        return "byte 0x\(String(bytes[offset], radix: 16))"
    }

    private mutating func readNumber() throws(FilterError) -> FilterTextToken.Kind {
        let start = position
        if bytes[position] == UInt8(ascii: "-") || bytes[position] == UInt8(ascii: "+") { position += 1 }
        var isInteger = true
        var sawDigit = false
        while position < bytes.count {
            let c = bytes[position]
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { sawDigit = true; position += 1; continue }
            if c == UInt8(ascii: ".") { isInteger = false; position += 1; continue }
            if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                isInteger = false
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                continue
            }
            break
        }
        // A number runs into a letter ("12abc"): report the whole word rather than two tokens.
        if let extra = Self.identifierLength(bytes, from: position), extra > 0 { position += extra; sawDigit = false }
        var text = String(decoding: bytes[start..<position], as: UTF8.self)
        if !sawDigit { throw FilterError("'\(text)' is not a number", offset: start) }
        if text.hasPrefix("+") { text.removeFirst() }
        if isInteger {
            guard let i = Int64(text) else { throw FilterError("the integer \(text) is outside the 64-bit range", offset: start) }
            return .int(i)
        }
        guard let d = Double(text), d.isFinite, !text.hasSuffix("."), !text.hasPrefix("."), !text.hasPrefix("-.") else {
            throw FilterError("'\(text)' is not a number", offset: start)
        }
        return .double(d)
    }

    /// A backquoted field name; a doubled backquote stands for one.
    private mutating func readBackquoted() throws(FilterError) -> String {
        let start = position
        let backquote = UInt8(ascii: "`")
        var out: [UInt8] = []
        while true {
            position += 1
            guard let close = bytes[position...].firstIndex(of: backquote) else {
                throw FilterError("this `field name` is not closed", offset: start)
            }
            out += bytes[position..<close]
            position = close + 1
            // A doubled backquote: one in the name, which goes on after the second.
            guard position < bytes.count, bytes[position] == backquote else { break }
            out.append(backquote)
        }
        if out.isEmpty { throw FilterError("an empty `field name`", offset: start) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Recursive descent over the tokens; `depth` counts open parentheses and `not`s.
struct FilterTextParser {
    let tokens: [FilterTextToken]
    let limits: FilterLimits
    /// The input's length: the offset reported for "unexpected end".
    let end: Int
    var index = 0
    var depth = 1

    init(tokens: [FilterTextToken], limits: FilterLimits, end: Int) {
        self.tokens = tokens
        self.limits = limits
        self.end = end
    }

    mutating func parseFilter() throws(FilterError) -> Filter {
        if tokens.isEmpty { throw FilterError("the filter is empty", offset: 0) }
        let f = try parseOr()
        if index < tokens.count {
            let t = tokens[index]
            throw FilterError("expected 'and', 'or' or the end of the filter, found \(t.display)", offset: t.offset)
        }
        return f
    }

    private var current: FilterTextToken? { index < tokens.count ? tokens[index] : nil }

    private func unexpected(_ expected: String) -> FilterError {
        if let t = current { return FilterError("expected \(expected), found \(t.display)", offset: t.offset) }
        return FilterError("expected \(expected), found the end of the filter", offset: end)
    }

    private mutating func accept(keyword: String) -> Bool {
        if current?.kind == .keyword(keyword) { index += 1; return true }
        return false
    }

    private mutating func accept(symbol: String) -> Bool {
        if current?.kind == .symbol(symbol) { index += 1; return true }
        return false
    }

    private mutating func expect(symbol: String, _ what: String) throws(FilterError) {
        if !accept(symbol: symbol) { throw unexpected(what) }
    }

    private mutating func enterLevel(at offset: Int) throws(FilterError) {
        depth += 1
        if depth > limits.maxDepth {
            throw FilterError("the filter is nested more than \(limits.maxDepth) levels deep", offset: offset)
        }
    }

    private mutating func parseOr() throws(FilterError) -> Filter {
        var parts = [try parseAnd()]
        while accept(keyword: "or") { parts.append(try parseAnd()) }
        return .any(parts)
    }

    private mutating func parseAnd() throws(FilterError) -> Filter {
        var parts = [try parseUnary()]
        while accept(keyword: "and") { parts.append(try parseUnary()) }
        return .all(parts)
    }

    private mutating func parseUnary() throws(FilterError) -> Filter {
        // `not` chains are counted and unwound without recursion so that "not not not ..." costs no stack.
        var nots = 0
        while let t = current, t.kind == .keyword("not") {
            try enterLevel(at: t.offset)
            index += 1
            nots += 1
        }
        var f = try parsePrimary()
        for _ in 0..<nots { f = .negation(of: f) }
        depth -= nots
        return f
    }

    private mutating func parsePrimary() throws(FilterError) -> Filter {
        guard let t = current else { throw unexpected("a condition") }
        switch t.kind {
        case .symbol("("):
            try enterLevel(at: t.offset)
            index += 1
            let f = try parseOr()
            try expect(symbol: ")", "')' to close the '(' at column \(t.offset + 1)")
            depth -= 1
            return f
        case .keyword("exists"):
            index += 1
            try expect(symbol: "(", "'(' after exists")
            let field = try parseField()
            try expect(symbol: ")", "')' after the field of exists(...)")
            return .field(field, .exists)
        case .identifier:
            let field = try parseField()
            return try parseCondition(on: field)
        case .keyword("true"):
            index += 1
            return .matchAll
        case .keyword("false"):
            index += 1
            return .or([])
        case .keyword(let k) where !["and", "or", "in"].contains(k):
            throw FilterError("'\(k)' is a keyword; write `\(k)` to use it as a field name", offset: t.offset)
        default:
            throw unexpected("a condition (a field name, 'not', 'exists' or '(')")
        }
    }

    private mutating func parseField() throws(FilterError) -> String {
        guard let t = current, case .identifier(let name) = t.kind else { throw unexpected("a field name") }
        index += 1
        return name
    }

    private mutating func parseCondition(on field: String) throws(FilterError) -> Filter {
        guard let t = current else { throw unexpected("an operator after '\(field)'") }
        switch t.kind {
        case .keyword("exists"):
            index += 1
            return .field(field, .exists)
        case .keyword("in"):
            index += 1
            return .field(field, .inList(try parseList()))
        case .keyword("not"):
            index += 1
            guard accept(keyword: "in") else { throw unexpected("'in' after '\(field) not'") }
            return .field(field, .notInList(try parseList()))
        case .symbol(let op) where ["=", "==", "!=", "<>", "<", "<=", ">", ">="].contains(op):
            index += 1
            let valueToken = current
            let value = try parseLiteral()
            switch op {
            case "=", "==": return .field(field, .equal(value))
            case "!=", "<>": return .field(field, .notEqual(value))
            default:
                switch value {
                case .bool, .null:
                    throw FilterError("\(op) compares numbers or strings, not \(value)", offset: valueToken?.offset ?? end)
                case .string, .int, .double: break
                }
                switch op {
                case "<": return .field(field, .less(value))
                case "<=": return .field(field, .lessOrEqual(value))
                case ">": return .field(field, .greater(value))
                default: return .field(field, .greaterOrEqual(value))
                }
            }
        default:
            throw unexpected("an operator (=, !=, <, <=, >, >=, in, not in, exists) after '\(field)'")
        }
    }

    private mutating func parseList() throws(FilterError) -> [FilterLiteral] {
        let open = current?.offset ?? end
        try expect(symbol: "(", "'(' to start the list")
        if current?.kind == .symbol(")") { throw FilterError("an empty list after 'in'", offset: open) }
        var values: [FilterLiteral] = []
        repeat {
            if values.count == limits.maxListItems {
                throw FilterError("the list has more than \(limits.maxListItems) values", offset: current?.offset ?? end)
            }
            values.append(try parseLiteral())
        } while accept(symbol: ",")
        try expect(symbol: ")", "',' or ')' in the list")
        return values
    }

    private mutating func parseLiteral() throws(FilterError) -> FilterLiteral {
        guard let t = current else { throw unexpected("a value") }
        let v: FilterLiteral
        switch t.kind {
        case .string(let s): v = .string(s)
        case .int(let i): v = .int(i)
        case .double(let d): v = .double(d)
        case .keyword("true"): v = .bool(true)
        case .keyword("false"): v = .bool(false)
        case .keyword("null"): v = .null
        case .identifier(let name): throw FilterError("expected a value, found the word '\(name)' (quote strings: \"\(name)\")", offset: t.offset)
        default: throw unexpected("a value (a string, number, true, false or null)")
        }
        index += 1
        return v
    }
}
