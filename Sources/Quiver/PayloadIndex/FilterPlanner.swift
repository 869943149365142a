import QuiverCore
import QuiverStorage

/// Turns a filter into candidate rows from payload indexes, without reading documents.
///
/// The candidates are a superset of the matching rows, and *exact* (the matching rows themselves)
/// when every condition was answered exactly: keyword and bool equality, `in` and string ranges
/// always are; numeric conditions are unless the field holds an integer beyond +-2^53 (which the
/// index stores rounded to a float64). Inexact candidates are re-checked against their documents;
/// either way only the candidates are read, which is what makes a 1% filter cheap.
/// A condition the indexes cannot bound (a negation, `exists`, `= null`, an unindexed field) makes
/// its subtree unbounded: an `and` is bounded when any child is (and exact only when every child is
/// bounded and exact), an `or` only when every child is.
struct FilterPlanner {
    let number: UInt32
    let indexes: [String: PayloadIndexType]
    let txn: LMDBTransaction
    let tables: Tables
    /// Row ids are below this (the collection's next row id): the bitsets' capacity.
    let capacity: Int

    /// Candidate rows, and whether they are exactly the matching rows.
    struct Candidates {
        var rows: Bitset
        var exact: Bool
    }

    /// The candidate rows, or nil when the indexes cannot bound the filter. `used` collects the
    /// indexed fields that contributed.
    func candidates(_ filter: Filter, used: inout Set<String>) throws -> Candidates? {
        switch filter {
        case .and(let children):
            var result: Candidates?
            var allBounded = true
            for child in children {
                guard let c = try candidates(child, used: &used) else { allBounded = false; continue }
                if var r = result {
                    r.rows.formIntersection(c.rows)
                    r.exact = r.exact && c.exact
                    result = r
                } else {
                    result = c
                }
            }
            if !allBounded { result?.exact = false }
            return result
        case .or(let children):
            var result = Candidates(rows: Bitset(capacity: capacity), exact: true)
            for child in children {
                guard let c = try candidates(child, used: &used) else { return nil }
                result.rows.formUnion(c.rows)
                result.exact = result.exact && c.exact
            }
            return result
        case .not:
            return nil
        case .field(let field, let condition):
            guard let type = indexes[field] else { return nil }
            let prefix = PayloadKeys.fieldPrefix(number, field, kind: type.kind)
            // Numeric entries are exact unless some integer of the field was rounded.
            var exact = true
            if type.isNumeric {
                try txn.forEach(tables.payload, prefix: prefix + [PayloadKeys.inexactMarker]) { k, _ in
                    if PayloadKeys.isInexactMarker(k, prefixCount: prefix.count) { exact = false; return false }
                    return true
                }
            }
            var rows: Bitset?
            switch condition {
            case .equal(let literal):
                rows = try equal(prefix, literal, type, exact: &exact)
            case .inList(let literals):
                var all = Bitset(capacity: capacity)
                for l in literals {
                    guard let r = try equal(prefix, l, type, exact: &exact) else { return nil }
                    all.formUnion(r)
                }
                rows = all
            case .less(let l):
                rows = try range(prefix, type, lower: nil, upper: (l, false), exact: &exact)
            case .lessOrEqual(let l):
                rows = try range(prefix, type, lower: nil, upper: (l, true), exact: &exact)
            case .greater(let l):
                rows = try range(prefix, type, lower: (l, false), upper: nil, exact: &exact)
            case .greaterOrEqual(let l):
                rows = try range(prefix, type, lower: (l, true), upper: nil, exact: &exact)
            case .notEqual, .notInList, .exists:
                rows = nil
            }
            guard let found = rows else { return nil }
            used.insert(field)
            return Candidates(rows: found, exact: exact)
        }
    }

    /// The encoded form of a literal in an index of `type`, or nil when the literal's type does not
    /// belong there (then documents whose value is outside the index could match, so the condition
    /// is unbounded). `exact` turns false when the literal itself is rounded.
    private func encode(_ literal: FilterLiteral, _ type: PayloadIndexType, exact: inout Bool) -> [UInt8]? {
        switch (type, literal) {
        case (.keyword, .string(let s)):
            // A long value is indexed by a prefix and a hash: its matches are re-checked.
            if PayloadKeys.isLongKeyword(s) { exact = false }
            return PayloadKeys.keyword(s)
        case (.integer, .int(let i)), (.float, .int(let i)):
            if !PayloadKeys.isExact(i) { exact = false }
            return PayloadKeys.number(Double(i))
        case (.integer, .double(let d)), (.float, .double(let d)): return d.isNaN ? nil : PayloadKeys.number(d)
        case (.bool, .bool(let b)): return PayloadKeys.bool(b)
        default: return nil
        }
    }

    private func equal(_ prefix: [UInt8], _ literal: FilterLiteral, _ type: PayloadIndexType, exact: inout Bool) throws -> Bitset? {
        guard let value = encode(literal, type, exact: &exact) else { return nil }
        var rows = Bitset(capacity: capacity)
        let start = prefix + value
        try txn.forEach(tables.payload, prefix: start) { k, _ in
            if k.count == start.count + PayloadKeys.rowBytes { insert(Self.row(k), into: &rows) }
            return true
        }
        return rows
    }

    /// Row ids at or past the capacity cannot be live (a damaged index); they are left out.
    private func insert(_ row: UInt64, into rows: inout Bitset) {
        if row < UInt64(capacity) { rows.insert(Int(row)) }
    }

    /// Rows whose value lies between the bounds (each inclusive or not; open when nil).
    private func range(_ prefix: [UInt8], _ type: PayloadIndexType, lower: (FilterLiteral, Bool)?, upper: (FilterLiteral, Bool)?,
                       exact: inout Bool) throws -> Bitset? {
        guard type != .bool else { return nil }
        var lowKey: [UInt8]?, highKey: [UInt8]?
        if let (l, _) = lower {
            guard let e = encode(l, type, exact: &exact) else { return nil }
            // A long keyword bound: every value sharing its prefix is a candidate (hashes are unordered).
            if case .string(let s) = l, PayloadKeys.isLongKeyword(s) { lowKey = PayloadKeys.keywordBounds(s).low } else { lowKey = e }
        }
        if let (h, _) = upper {
            guard let e = encode(h, type, exact: &exact) else { return nil }
            if case .string(let s) = h, PayloadKeys.isLongKeyword(s) { highKey = PayloadKeys.keywordBounds(s).high } else { highKey = e }
        }
        let lowInclusive = lower?.1 ?? true, highInclusive = upper?.1 ?? true
        var rows = Bitset(capacity: capacity)
        try txn.forEach(tables.payload, prefix: prefix, from: prefix + (lowKey ?? [])) { k, _ in
            if type.isNumeric && PayloadKeys.isInexactMarker(k, prefixCount: prefix.count) { return true }  // a marker, not a value
            let value = Array(k[prefix.count..<(k.count - PayloadKeys.rowBytes)])
            if let h = highKey {
                if h.lexicographicallyPrecedes(value) || (!highInclusive && value == h) { return false }
            }
            if let l = lowKey, !lowInclusive, value == l { return true }
            insert(Self.row(k), into: &rows)
            return true
        }
        return rows
    }

    static func row(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var r: UInt64 = 0
        for i in (key.count - PayloadKeys.rowBytes)..<key.count { r = r << 8 | UInt64(key[i]) }
        return r
    }
}
