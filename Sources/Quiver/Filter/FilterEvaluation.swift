// The evaluator: the executable form of the numbered rules at the top of Filter.swift.

extension Filter {
    /// Whether a document with this metadata matches the filter (rules in Filter.swift).
    /// Recurses once per level of nesting; parsed filters are at most `FilterLimits.maxDepth` deep.
    public func matches(_ metadata: Metadata) -> Bool {
        switch self {
        case .and(let children):
            for c in children where !c.matches(metadata) { return false }
            return true
        case .or(let children):
            for c in children where c.matches(metadata) { return true }
            return false
        case .not(let child):
            return !child.matches(metadata)
        case .field(let key, let condition):
            return condition.matches(metadata[key])
        }
    }
}

extension FilterCondition {
    /// Whether a key's value (nil when the key is missing) satisfies this condition.
    public func matches(_ value: MetadataValue?) -> Bool {
        switch self {
        case .exists: return value != nil
        case .equal(let x): return Self.equal(value, x)
        case .notEqual(let x): return !Self.equal(value, x)
        case .inList(let xs): return xs.contains { Self.equal(value, $0) }
        case .notInList(let xs): return !xs.contains { Self.equal(value, $0) }
        case .less(let x): return Self.ordered(value, x) { $0 < 0 }
        case .lessOrEqual(let x): return Self.ordered(value, x) { $0 <= 0 }
        case .greater(let x): return Self.ordered(value, x) { $0 > 0 }
        case .greaterOrEqual(let x): return Self.ordered(value, x) { $0 >= 0 }
        }
    }

    /// Rule 2 of Filter.swift.
    static func equal(_ value: MetadataValue?, _ literal: FilterLiteral) -> Bool {
        guard let value else { return literal == .null }
        switch (value, literal) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        case (.stringList(let l), .string(let s)): return l.contains { $0.utf8.elementsEqual(s.utf8) }
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.bool(let a), .bool(let b)): return a == b
        default:
            return compareNumbers(value, literal) == 0
        }
    }

    /// Rule 5 of Filter.swift: `accept` receives the sign of `value - literal` when the two are
    /// ordered with respect to each other.
    static func ordered(_ value: MetadataValue?, _ literal: FilterLiteral, _ accept: (Int) -> Bool) -> Bool {
        guard let value else { return false }
        switch (value, literal) {
        case (.string(let a), .string(let b)): return accept(compareUTF8(a, b))
        case (.stringList(let l), .string(let b)): return l.contains { accept(compareUTF8($0, b)) }
        default:
            guard let sign = compareNumbers(value, literal) else { return false }
            return accept(sign)
        }
    }

    /// -1, 0 or 1 by UTF-8 byte order (which is Unicode scalar order).
    static func compareUTF8(_ a: String, _ b: String) -> Int {
        var ia = a.utf8.makeIterator()
        var ib = b.utf8.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }

    /// The sign of `value - literal` when both are numbers and ordered; nil otherwise (not two
    /// numbers, or a NaN).
    static func compareNumbers(_ value: MetadataValue, _ literal: FilterLiteral) -> Int? {
        switch (value, literal) {
        case (.int(let a), .int(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.int(let a), .double(let b)): return compareExactly(a, b)
        case (.double(let a), .int(let b)): return compareExactly(b, a).map { -$0 }
        default: return nil
        }
    }

    /// The sign of `i - d`, exact (no rounding of `i` to a double); nil when `d` is NaN.
    static func compareExactly(_ i: Int64, _ d: Double) -> Int? {
        if d.isNaN { return nil }
        // 2^63 is exactly representable; every double at or above it exceeds every Int64.
        if d >= 9_223_372_036_854_775_808.0 { return -1 }
        if d < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = d.rounded(.towardZero)
        let w = Int64(whole)  // exact: |whole| < 2^63, or whole == -2^63
        if i != w { return i < w ? -1 : 1 }
        let fraction = d - whole
        return fraction > 0 ? -1 : (fraction < 0 ? 1 : 0)
    }
}
