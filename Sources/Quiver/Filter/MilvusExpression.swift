// Quiver's filter language translated into a Milvus 2.3 boolean expression with the same meaning
// (the numbered rules at the top of Filter.swift), or a clear refusal where Milvus cannot say it.
//
// What Milvus 2.3.5 does, as measured against the PyPI server (docs/scale-out.md):
// - `not`, `and`, `or` are two-valued (no nulls in 2.3), so Quiver's negations translate as `not (…)`,
//   which is true on a missing JSON key exactly as `notEqual` / `notInList` are.
// - On a JSON key, `==`, `in` and the range operators compare only values of the literal's kind:
//   a number literal matches ints and floats by value (2 == 2.0), a string literal strings, a bool
//   literal booleans; a missing key, a null, an array or another kind gives false. An int literal
//   compares ints exactly; a float literal compares through doubles, so numbers beyond 2^53 on a
//   field holding both ints and floats are refused.
// - A JSON array matches `json_contains(path, x)`; there is no "any element < x", so a string range
//   on a field that may hold lists is refused.
// - `exists path` is true for a present key, null included (Quiver's `exists`); a null is found in
//   the `null_fields` array column, since no Milvus 2.3 expression tests a JSON value for null.
// - A typed INT64 column refuses a float literal, so float literals become exact integer bounds.
// - Milvus has no `true`/`false` expression: constants are folded away, and a filter that is constant
//   as a whole becomes `id >= ""` (every row) or `id < ""` (no row).
// - A JSON key holding `/` (read as a JSON pointer) or the empty key cannot be named.

/// Why a filter has no Milvus 2.3 expression with the same meaning.
public struct MilvusTranslationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The metadata field whose condition cannot be translated.
    public let field: String
    /// Why, in one sentence.
    public let reason: String

    public var description: String { "cannot translate the condition on '\(field)' to Milvus: \(reason)" }
}

extension Filter {
    /// The Milvus boolean expression that selects exactly the documents this filter matches, for a
    /// collection exported with `mapping` (see `MilvusMapping`; `.allJSON` when nothing is known).
    /// - Throws: `MilvusTranslationError` naming the field and the reason when Milvus 2.3 cannot say it.
    public func milvusExpression(mapping: MilvusMapping = .allJSON) throws(MilvusTranslationError) -> String {
        try validateDepth()
        switch try MilvusTranslator(mapping: mapping).translate(self) {
        case .constant(true): return "\(mapping.idColumn) >= \"\""
        case .constant(false): return "\(mapping.idColumn) < \"\""
        case .text(let s): return s
        }
    }

    private func validateDepth() throws(MilvusTranslationError) {
        do { try validate() } catch { throw MilvusTranslationError(field: "", reason: error.message) }
    }
}

/// An expression being built: a constant (folded away wherever it appears inside `and`/`or`/`not`)
/// or Milvus text.
enum MilvusTerm: Equatable {
    case constant(Bool)
    case text(String)

    static func all(_ terms: [MilvusTerm]) -> MilvusTerm { fold(terms, identity: true, joiner: " and ") }

    static func any(_ terms: [MilvusTerm]) -> MilvusTerm { fold(terms, identity: false, joiner: " or ") }

    /// `and` (identity true) or `or` (identity false): the other constant absorbs, the identity drops out.
    private static func fold(_ terms: [MilvusTerm], identity: Bool, joiner: String) -> MilvusTerm {
        var parts: [String] = []
        for t in terms {
            switch t {
            case .constant(let b): if b != identity { return t }
            case .text(let s): parts.append(s)
            }
        }
        if parts.isEmpty { return .constant(identity) }
        return .text(parts.count == 1 ? parts[0] : parts.map { "(\($0))" }.joined(separator: joiner))
    }

    var negated: MilvusTerm {
        switch self {
        case .constant(let b): return .constant(!b)
        case .text(let s): return .text("not (\(s))")
        }
    }
}

struct MilvusTranslator {
    let mapping: MilvusMapping

    /// 2^53: integers up to this magnitude are exact as doubles.
    static let exactDoubleLimit: Int64 = 1 << 53

    func translate(_ f: Filter) throws(MilvusTranslationError) -> MilvusTerm {
        switch f {
        case .and(let cs):
            var terms: [MilvusTerm] = []
            for c in cs { terms.append(try translate(c)) }
            return .all(terms)
        case .or(let cs):
            var terms: [MilvusTerm] = []
            for c in cs { terms.append(try translate(c)) }
            return .any(terms)
        case .not(let c):
            return try translate(c).negated
        case .field(let name, let condition):
            return try translateCondition(name, condition)
        }
    }

    private func translateCondition(_ name: String, _ c: FilterCondition) throws(MilvusTranslationError) -> MilvusTerm {
        let p = mapping.placement(name)
        if p.column == nil && (name.isEmpty || name.contains("/")) {
            throw MilvusTranslationError(field: name, reason: "Milvus reads a JSON key as a JSON pointer, so a key that is empty or holds '/' cannot be named in an expression")
        }
        switch c {
        case .exists: return exists(p)
        case .equal(let x): return try equal(p, [x])
        case .notEqual(let x): return try equal(p, [x]).negated
        case .inList(let xs): return try equal(p, xs)
        case .notInList(let xs): return try equal(p, xs).negated
        case .less(let x): return try range(p, "<", x)
        case .lessOrEqual(let x): return try range(p, "<=", x)
        case .greater(let x): return try range(p, ">", x)
        case .greaterOrEqual(let x): return try range(p, ">=", x)
        }
    }

    // MARK: where a value is

    private func path(_ p: MilvusFieldPlacement) -> String {
        p.column ?? "\(mapping.jsonColumn)[\(Self.string(p.field))]"
    }

    /// Rule 1: a typed column is present in every row; a JSON key when `exists` finds it.
    private func exists(_ p: MilvusFieldPlacement) -> MilvusTerm {
        p.column != nil ? .constant(true) : .text("exists \(path(p))")
    }

    /// True where the key is missing or null (`equal(null)`).
    private func missingOrNull(_ p: MilvusFieldPlacement) -> MilvusTerm {
        if p.column != nil { return .constant(false) }
        let missing = exists(p).negated
        guard p.mayHold("null") else { return missing }
        guard let nulls = mapping.nullFieldsColumn else { return missing }
        return .any([missing, .text("array_contains(\(nulls), \(Self.string(p.field)))")])
    }

    // MARK: equality and `in` (rules 2 and 4)

    /// The documents whose value equals any of `literals`.
    private func equal(_ p: MilvusFieldPlacement, _ literals: [FilterLiteral]) throws(MilvusTranslationError) -> MilvusTerm {
        var strings: [String] = []
        var ints: [Int64] = []
        var doubles: [Double] = []
        var bools: [Bool] = []
        var null = false
        for x in literals {
            switch x {
            case .string(let s): strings.append(s)
            case .bool(let b): bools.append(b)
            case .null: null = true
            case .int(let i): ints.append(i)
            case .double(let d):
                if d.isNaN { continue }  // NaN equals nothing
                if let i = Int64(exactly: d) { ints.append(i) } else { doubles.append(d) }
            }
        }
        var terms: [MilvusTerm] = []
        if null { terms.append(missingOrNull(p)) }
        if !strings.isEmpty { terms.append(equalStrings(p, strings)) }
        if !bools.isEmpty && (p.type == .bool || (p.column == nil && p.mayHold("boolean"))) {
            terms.append(.text(Self.membership(path(p), bools.map { $0 ? "true" : "false" })))
        }
        if !ints.isEmpty || !doubles.isEmpty { terms.append(try equalNumbers(p, ints, doubles)) }
        return .any(terms)
    }

    private func equalStrings(_ p: MilvusFieldPlacement, _ strings: [String]) -> MilvusTerm {
        let literals = strings.map(Self.string)
        let list = "[" + literals.joined(separator: ", ") + "]"
        switch (p.column, p.type) {
        case (_?, .varchar?): return .text(Self.membership(path(p), literals))
        case (let c?, .varcharArray?): return .text(strings.count == 1 ? "array_contains(\(c), \(literals[0]))" : "array_contains_any(\(c), \(list))")
        case (_?, _): return .constant(false)
        case (nil, _):
            var terms: [MilvusTerm] = []
            if p.mayHold("string") { terms.append(.text(Self.membership(path(p), literals))) }
            if p.mayHold("list of strings") {
                terms.append(.text(strings.count == 1 ? "json_contains(\(path(p)), \(literals[0]))" : "json_contains_any(\(path(p)), \(list))"))
            }
            return .any(terms)
        }
    }

    private func equalNumbers(_ p: MilvusFieldPlacement, _ ints: [Int64], _ doubles: [Double]) throws(MilvusTranslationError) -> MilvusTerm {
        switch p.type {
        case .int64?:
            // Non-integral floats equal no integer; integral ones were already made ints.
            return ints.isEmpty ? .constant(false) : .text(Self.membership(path(p), ints.map(Self.int)))
        case .double?:
            // An integer equals a double only when the double holds it exactly.
            let values = doubles + ints.compactMap { Double(exactly: $0) }
            return values.isEmpty ? .constant(false) : .text(Self.membership(path(p), values.map(Self.double)))
        case _?:
            return .constant(false)
        case nil:
            let hasInts = p.mayHold("integer"), hasFloats = p.mayHold("float")
            guard hasInts || hasFloats else { return .constant(false) }
            if hasFloats {
                for i in ints where i.magnitude > Self.exactDoubleLimit.magnitude {
                    throw Self.inexact(p.field, integer: i)
                }
            }
            if hasInts, let d = doubles.first(where: { $0.magnitude >= 9_007_199_254_740_992.0 }) {
                throw Self.inexact(p.field, float: d)
            }
            if ints.contains(.min) { throw Self.int64Min(p.field) }
            // Non-integral doubles only equal floats; ints cannot equal them.
            var terms: [MilvusTerm] = []
            if !ints.isEmpty { terms.append(.text(Self.membership(path(p), ints.map(Self.int)))) }
            if hasFloats && !doubles.isEmpty { terms.append(.text(Self.membership(path(p), doubles.map(Self.double)))) }
            return .any(terms)
        }
    }

    // MARK: ranges (rule 5)

    private func range(_ p: MilvusFieldPlacement, _ op: String, _ x: FilterLiteral) throws(MilvusTranslationError) -> MilvusTerm {
        switch x {
        case .string(let s):
            switch p.type {
            case .varchar?: return .text("\(path(p)) \(op) \(Self.string(s))")
            case .varcharArray?: throw Self.listRange(p.field)
            case _?: return .constant(false)
            case nil:
                if p.mayHold("list of strings") { throw Self.listRange(p.field) }
                return p.mayHold("string") ? .text("\(path(p)) \(op) \(Self.string(s))") : .constant(false)
            }
        case .int(let i): return try rangeInt(p, op, i)
        case .double(let d):
            if d.isNaN { return .constant(false) }
            if d.isInfinite {
                throw MilvusTranslationError(field: p.field, reason: "Milvus expressions cannot spell an infinite literal")
            }
            if let i = Int64(exactly: d) { return try rangeInt(p, op, i) }
            return try rangeDouble(p, op, d)
        case .bool, .null:
            return .constant(false)
        }
    }

    private func rangeInt(_ p: MilvusFieldPlacement, _ op: String, _ i: Int64) throws(MilvusTranslationError) -> MilvusTerm {
        switch p.type {
        case .int64?:
            if i == .min {
                // Milvus cannot read -2^63; every value is >= it.
                switch op {
                case "<": return .constant(false)
                case ">=": return .constant(true)
                case "<=": return .text("\(path(p)) < -9223372036854775807")
                default: return .text("\(path(p)) >= -9223372036854775807")
                }
            }
            return .text("\(path(p)) \(op) \(i)")
        case .double?:
            if let d = Double(exactly: i) { return .text("\(path(p)) \(op) \(Self.double(d))") }
            // Between the two doubles nearest i: `v < i` is `v <= below`, `v > i` is `v >= above`.
            let near = Double(i)
            let below = near < Double(sign: .plus, exponent: 63, significand: 1) && Int64(near) < i ? near : near.nextDown
            let above = below.nextUp
            return .text(op.hasPrefix("<") ? "\(path(p)) <= \(Self.double(below))" : "\(path(p)) >= \(Self.double(above))")
        case _?:
            return .constant(false)
        case nil:
            let hasInts = p.mayHold("integer"), hasFloats = p.mayHold("float")
            guard hasInts || hasFloats else { return .constant(false) }
            if hasFloats && i.magnitude > Self.exactDoubleLimit.magnitude {
                throw Self.inexact(p.field, integer: i)
            }
            if i == .min { throw Self.int64Min(p.field) }
            return .text("\(path(p)) \(op) \(i)")
        }
    }

    private func rangeDouble(_ p: MilvusFieldPlacement, _ op: String, _ d: Double) throws(MilvusTranslationError) -> MilvusTerm {
        switch p.type {
        case .int64?:
            // d is not an integer (or beyond Int64): bound the integers exactly.
            if d >= 9_223_372_036_854_775_808.0 { return .constant(op.hasPrefix("<")) }
            if d < -9_223_372_036_854_775_808.0 { return .constant(op.hasPrefix(">")) }
            return op.hasPrefix("<")
                ? .text("\(path(p)) <= \(Int64(d.rounded(.down)))")
                : .text("\(path(p)) >= \(Int64(d.rounded(.up)))")
        case .double?:
            return .text("\(path(p)) \(op) \(Self.double(d))")
        case _?:
            return .constant(false)
        case nil:
            let hasInts = p.mayHold("integer"), hasFloats = p.mayHold("float")
            guard hasInts || hasFloats else { return .constant(false) }
            if hasInts && d.magnitude >= 9_007_199_254_740_992.0 {
                throw Self.inexact(p.field, float: d)
            }
            return .text("\(path(p)) \(op) \(Self.double(d))")
        }
    }

    // MARK: spelling

    private static func listRange(_ field: String) -> MilvusTranslationError {
        MilvusTranslationError(field: field, reason: "the field holds lists of strings, and Milvus 2.3 has no 'any element < x' to match Quiver's range over a list")
    }

    private static func inexact(_ field: String, integer i: Int64) -> MilvusTranslationError {
        MilvusTranslationError(field: field, reason: "the field holds floats, and Milvus compares a JSON float with the integer \(i) through a double, which is not exact beyond 2^53")
    }

    private static func inexact(_ field: String, float d: Double) -> MilvusTranslationError {
        MilvusTranslationError(field: field, reason: "the field holds integers, and Milvus compares them with the float \(double(d)) through doubles, which is not exact beyond 2^53")
    }

    private static func int64Min(_ field: String) -> MilvusTranslationError {
        MilvusTranslationError(field: field, reason: "Milvus cannot read the literal -9223372036854775808")
    }

    /// `path == x` for one literal, `path in [x, y]` for more.
    static func membership(_ path: String, _ literals: [String]) -> String {
        literals.count == 1 ? "\(path) == \(literals[0])" : "\(path) in [\(literals.joined(separator: ", "))]"
    }

    static func int(_ i: Int64) -> String { String(i) }

    /// A float literal Milvus reads back as the same double (`2.0`, `1e-05`, `1.5e+300`): the text
    /// form's spelling, which Milvus's parser reads alike.
    static func double(_ d: Double) -> String { FilterRendering.literal(.double(d)) }

    /// A double-quoted Milvus string literal: JSON's escapes (`\"`, `\\`, `\n`, `\uXXXX`), which
    /// Milvus's parser reads alike; everything else as UTF-8.
    static func string(_ s: String) -> String { FilterRendering.jsonString(s) }
}
