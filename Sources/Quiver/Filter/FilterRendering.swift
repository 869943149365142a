// Printing a filter in either form. For a normalized filter (see `Filter`), parsing the printed
// text or JSON gives back the same value; the tests rely on that round trip.

extension Filter: CustomStringConvertible {
    /// The text form, e.g. `year >= 2020 and (lang = "en" or not exists(lang))`.
    public var description: String { FilterRendering.text(self, parent: .top) }

    /// The JSON form, with explicit operators: `{"year":{"$gte":2020}}`. A field whose name starts
    /// with `$` has no JSON spelling (such keys are operators there): `Filter(json:)` rejects what
    /// this prints for a filter on one, which only the text form can name.
    public var json: String { FilterRendering.json(self) }
}

enum FilterRendering {
    enum Context { case top, and, or, not }

    static func text(_ f: Filter, parent: Context) -> String {
        switch f {
        case .and(let cs):
            if cs.isEmpty { return "true" }
            let s = cs.map { text($0, parent: .and) }.joined(separator: " and ")
            return parent == .top || parent == .or ? s : "(" + s + ")"
        case .or(let cs):
            if cs.isEmpty { return "false" }
            let s = cs.map { text($0, parent: .or) }.joined(separator: " or ")
            return parent == .top ? s : "(" + s + ")"
        case .not(let c):
            return "not " + text(c, parent: .not)
        case .field(let name, let condition):
            let fieldText = field(name)
            switch condition {
            case .exists: return "exists(\(fieldText))"
            case .equal(let x): return "\(fieldText) = \(literal(x))"
            case .notEqual(let x): return "\(fieldText) != \(literal(x))"
            case .less(let x): return "\(fieldText) < \(literal(x))"
            case .lessOrEqual(let x): return "\(fieldText) <= \(literal(x))"
            case .greater(let x): return "\(fieldText) > \(literal(x))"
            case .greaterOrEqual(let x): return "\(fieldText) >= \(literal(x))"
            case .inList(let xs): return "\(fieldText) in (" + xs.map(literal).joined(separator: ", ") + ")"
            case .notInList(let xs): return "\(fieldText) not in (" + xs.map(literal).joined(separator: ", ") + ")"
            }
        }
    }

    /// A bare identifier when the text grammar reads it back as the same field, else backquoted.
    static func field(_ name: String) -> String {
        return FilterTextLexer.isBareIdentifier(name) ? name : "`" + name.replacingAll("`", with: "``") + "`"
    }

    /// A literal in a syntax both forms read: JSON strings, numbers that keep their int/float kind.
    static func literal(_ x: FilterLiteral) -> String {
        switch x {
        case .string(let s): return jsonString(s)
        case .int(let i): return String(i)
        case .double(let d):
            // Swift prints the shortest text that reads back as the same double; make sure it
            // still looks like a float ("1e+20" does, "5" would not; Swift prints 5.0).
            let s = "\(d)"
            return s.contains(".") || s.contains("e") || s.contains("E") ? s : s + ".0"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    static func json(_ f: Filter) -> String {
        switch f {
        // The constants: `$and`/`$or` need at least one filter, so `true` is {} and `false` is its negation.
        case .and(let cs) where cs.isEmpty: return "{}"
        case .or(let cs) where cs.isEmpty: return "{\"$not\":{}}"
        case .and(let cs): return "{\"$and\":[" + cs.map(json).joined(separator: ",") + "]}"
        case .or(let cs): return "{\"$or\":[" + cs.map(json).joined(separator: ",") + "]}"
        case .not(let c): return "{\"$not\":" + json(c) + "}"
        case .field(let name, let condition):
            let op: String
            switch condition {
            case .exists: op = "\"$exists\":true"
            case .equal(let x): op = "\"$eq\":" + literal(x)
            case .notEqual(let x): op = "\"$ne\":" + literal(x)
            case .less(let x): op = "\"$lt\":" + literal(x)
            case .lessOrEqual(let x): op = "\"$lte\":" + literal(x)
            case .greater(let x): op = "\"$gt\":" + literal(x)
            case .greaterOrEqual(let x): op = "\"$gte\":" + literal(x)
            case .inList(let xs): op = "\"$in\":[" + xs.map(literal).joined(separator: ",") + "]"
            case .notInList(let xs): op = "\"$nin\":[" + xs.map(literal).joined(separator: ",") + "]"
            }
            return "{" + jsonString(name) + ":{" + op + "}}"
        }
    }

    /// A JSON string literal (also valid in the text form): the documents' JSON writer's.
    static func jsonString(_ s: String) -> String {
        var out = ""
        JSONLine.string(s, into: &out)
        return out
    }
}

extension String {
    /// Every occurrence of the scalar `target` replaced (Foundation-free). By scalar, not Character:
    /// a backquote followed by a combining mark is one Character ("`\u{0DCF}") that a Character
    /// comparison would miss, while the lexer reads bytes and sees the backquote.
    fileprivate func replacingAll(_ target: Unicode.Scalar, with replacement: String) -> String {
        var out = ""
        for u in unicodeScalars { if u == target { out += replacement } else { out.unicodeScalars.append(u) } }
        return out
    }
}
