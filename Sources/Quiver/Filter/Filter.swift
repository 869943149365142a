// The filter language: one AST with two faces, a JSON form for the Swift API and import files
// (FilterJSONParser.swift) and a text form for the CLI (FilterTextParser.swift). Both parsers
// produce the same normalized tree for the same condition, and `matches` (FilterEvaluation.swift)
// is the one definition of what a filter means.
//
// # Semantics (Mongo's rules, stated once here; the evaluator and its tests follow this list)
//
// A condition names one metadata key (metadata is flat, so a "field" is exactly one key; dots in a
// key have no meaning) and compares its value `v` with a literal. `v` is missing when the key is
// absent from the document's metadata.
//
// 1. `exists`: true when the key is present, whatever its value, `null` included.
// 2. `equal(x)`:
//    - `x` null: true when `v` is missing or null (Mongo's `{f: null}`).
//    - `v` missing or null (and `x` not null): false.
//    - `v` a list of strings: true when ANY element equals `x` (so `x` must be a string).
//      An empty list equals nothing.
//    - numbers: an int and a double compare by exact numeric value (`2 == 2.0`; `2^53 + 1`
//      is not equal to the double `2^53`); NaN equals nothing.
//    - strings: equal when their Unicode scalars are equal (byte-wise UTF-8; no normalization,
//      so store and query NFC text). Booleans equal booleans.
//    - any other pairing of types (string vs number, bool vs int, ...): false.
// 3. `notEqual(x)` is exactly `not equal(x)`: true on a missing key, on a type mismatch, and on
//    a list with no element equal to `x`. `notEqual(null)` therefore means "present and not null".
// 4. `inList(xs)` is `equal(x1) or equal(x2) or ...`; `notInList(xs)` is `not inList(xs)`
//    (true on a missing key). The parsers reject an empty list and lists longer than the limit.
// 5. `less`, `lessOrEqual`, `greater`, `greaterOrEqual`: defined only between two numbers
//    (exact int/double ordering; NaN is unordered) and between two strings (lexicographic by
//    Unicode scalar value, which is UTF-8 byte order, the order of an LMDB key index). On a list
//    of strings: true when ANY element satisfies it. Everything else is false: a missing key,
//    null, a bool, a type mismatch. The parsers reject a range operator whose literal is not a
//    number or a string; a tree built in code with such a literal simply matches nothing.
// 6. `and([])` is true and `or([])` is false (so the JSON filter `{}` matches every document).

/// A literal in a filter: the right-hand side of a comparison. Lists only appear as the operand
/// of `inList`/`notInList`, as an array of literals.
public enum FilterLiteral: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null

    /// The literal in the text form's syntax (which is also valid JSON for every literal).
    public var description: String { FilterRendering.literal(self) }
}

/// What a condition checks about one metadata key. See the numbered rules at the top of
/// Filter.swift for the exact meaning of each case on missing keys, nulls, lists and mixed types.
public enum FilterCondition: Sendable, Hashable {
    /// `$eq`, text `=` (or `==`).
    case equal(FilterLiteral)
    /// `$ne`, text `!=` (or `<>`): exactly `not equal`.
    case notEqual(FilterLiteral)
    /// `$lt`, text `<`.
    case less(FilterLiteral)
    /// `$lte`, text `<=`.
    case lessOrEqual(FilterLiteral)
    /// `$gt`, text `>`.
    case greater(FilterLiteral)
    /// `$gte`, text `>=`.
    case greaterOrEqual(FilterLiteral)
    /// `$in`, text `in (a, b)`: equal to any of the literals.
    case inList([FilterLiteral])
    /// `$nin`, text `not in (a, b)`: exactly `not inList`.
    case notInList([FilterLiteral])
    /// `$exists: true`, text `exists(f)` or `f exists`: the key is present (even if null).
    case exists
}

/// A metadata filter: a boolean combination of conditions on metadata keys.
///
/// Build one in code with the cases (or `Filter.all`/`Filter.any`, which normalize), or parse one
/// with `Filter(json:)` / `Filter(text:)`. Parsed filters are *normalized*: nested `and`s inside
/// an `and` (and `or`s inside an `or`) are flattened and a single-child `and`/`or` is replaced by
/// its child, so `a = 1 and (b = 2 and c = 3)` and `{"a": 1, "$and": [{"b": 2}, {"c": 3}]}` are the
/// same value; the negation of the constant `true` (`.and([])`) is `false` (`.or([])`) and the other
/// way round, which is how the JSON form spells `false`: `{"$not": {}}`. Parsed filters also respect `FilterLimits` (depth, list sizes); a filter built in
/// code can be checked with `validate(limits:)` before use, since evaluation recurses once per level.
///
/// Thread safety: a value type with no shared state; use it from any thread.
public indirect enum Filter: Sendable, Hashable {
    /// All children match (true when empty).
    case and([Filter])
    /// At least one child matches (false when empty).
    case or([Filter])
    /// The child does not match.
    case not(Filter)
    /// A condition on the metadata key `field`.
    case field(String, FilterCondition)

    /// The conjunction of `filters`, normalized: child `and`s are flattened into it, and a single
    /// filter is returned as it is.
    public static func all(_ filters: [Filter]) -> Filter {
        var flat: [Filter] = []
        for f in filters {
            if case .and(let inner) = f { flat.append(contentsOf: inner) } else { flat.append(f) }
        }
        return flat.count == 1 ? flat[0] : .and(flat)
    }

    /// The disjunction of `filters`, normalized like `all`.
    public static func any(_ filters: [Filter]) -> Filter {
        var flat: [Filter] = []
        for f in filters {
            if case .or(let inner) = f { flat.append(contentsOf: inner) } else { flat.append(f) }
        }
        return flat.count == 1 ? flat[0] : .or(flat)
    }

    /// The filter that every document matches (`{}` in the JSON form).
    public static let matchAll: Filter = .and([])

    /// The negation of `filter`, normalized: `not true` is `false` and `not false` is `true`, so that
    /// the constant `false` (`.or([])`), which the JSON form cannot write as an empty `$or`, has one
    /// spelling in both forms (`false`, `{"$not": {}}`) that parses back to the same value.
    public static func negation(of filter: Filter) -> Filter {
        switch filter {
        case .and(let cs) where cs.isEmpty: return .or([])
        case .or(let cs) where cs.isEmpty: return .and([])
        default: return .not(filter)
        }
    }

    /// The number of nested levels: a field condition is 1, each `and`/`or`/`not` adds one.
    /// Computed without recursion, so it is safe on a tree of any depth.
    public var depth: Int {
        var deepest = 0
        var stack: [(Filter, Int)] = [(self, 1)]
        while let (node, level) = stack.popLast() {
            deepest = max(deepest, level)
            switch node {
            case .and(let cs), .or(let cs): for c in cs { stack.append((c, level + 1)) }
            case .not(let c): stack.append((c, level + 1))
            case .field: break
            }
        }
        return deepest
    }

    /// Checks a filter built in code against `limits` (depth and list sizes), without recursion.
    /// The parsers already enforce the same limits. The error's position is 0.
    public func validate(limits: FilterLimits = .default) throws(FilterError) {
        var stack: [(Filter, Int)] = [(self, 1)]
        while let (node, level) = stack.popLast() {
            if level > limits.maxDepth {
                throw FilterError("the filter is nested more than \(limits.maxDepth) levels deep", offset: 0)
            }
            switch node {
            case .and(let cs), .or(let cs): for c in cs { stack.append((c, level + 1)) }
            case .not(let c): stack.append((c, level + 1))
            case .field(_, .inList(let xs)), .field(_, .notInList(let xs)):
                if xs.count > limits.maxListItems {
                    throw FilterError("a list has \(xs.count) items; the limit is \(limits.maxListItems)", offset: 0)
                }
            case .field: break
            }
        }
    }
}

/// The bounds every parsed filter respects, so that hostile input is a clear error rather than a
/// stack overflow or an unbounded allocation.
public struct FilterLimits: Sendable, Hashable {
    /// The deepest nesting of `and`/`or`/`not` (a lone condition is depth 1). In the text form
    /// each parenthesis and each `not` counts as a level while parsing.
    public var maxDepth: Int
    /// The most literals in one `$in`/`$nin` list.
    public var maxListItems: Int
    /// The largest input, in UTF-8 bytes.
    public var maxInputBytes: Int

    /// Depth 64, 10,000 list items, 1 MiB of input.
    public static let `default` = FilterLimits(maxDepth: 64, maxListItems: 10_000, maxInputBytes: 1 << 20)

    /// Creates limits; see the properties for their meaning.
    public init(maxDepth: Int, maxListItems: Int, maxInputBytes: Int) {
        self.maxDepth = maxDepth
        self.maxListItems = maxListItems
        self.maxInputBytes = maxInputBytes
    }
}
