import QuiverCore
import QuiverStorage

/// Turns a filter into candidate rows from payload indexes, without reading documents.
///
/// The candidates are a superset of the matching rows (numbers are compared as float64 in the
/// index, ranges are taken inclusive), so every candidate is re-checked against its document's
/// metadata; the re-check reads only the candidates, which is what makes a 1% filter cheap.
/// A condition the indexes cannot bound (a negation, `exists`, `= null`, an unindexed field) makes
/// its subtree unbounded: an `and` is bounded when any child is, an `or` only when every child is.
struct FilterPlanner {
    let number: UInt32
    let indexes: [String: PayloadIndexType]
    let txn: LMDBTransaction
    let tables: Tables

    /// The candidate rows, or nil when the indexes cannot bound the filter. `used` collects the
    /// indexed fields that contributed.
    func candidates(_ filter: Filter, used: inout Set<String>) throws -> Set<UInt64>? {
        switch filter {
        case .and(let children):
            var result: Set<UInt64>?
            // Bounded children first, smallest first, so intersections shrink quickly.
            for child in children {
                guard let c = try candidates(child, used: &used) else { continue }
                result = result.map { $0.intersection(c) } ?? c
                if result!.isEmpty { return result }
            }
            return result
        case .or(let children):
            if children.isEmpty { return [] }
            var result = Set<UInt64>()
            for child in children {
                guard let c = try candidates(child, used: &used) else { return nil }
                result.formUnion(c)
            }
            return result
        case .not:
            return nil
        case .field(let field, let condition):
            guard let type = indexes[field] else { return nil }
            let prefix = PayloadKeys.fieldPrefix(number, field, kind: type.kind)
            let rows: Set<UInt64>?
            switch condition {
            case .equal(let literal):
                rows = try equal(prefix, literal, type)
            case .inList(let literals):
                var all = Set<UInt64>()
                for l in literals {
                    guard let r = try equal(prefix, l, type) else { return nil }
                    all.formUnion(r)
                }
                rows = all
            case .less(let l), .lessOrEqual(let l):
                rows = try range(prefix, type, lower: nil, upper: l)
            case .greater(let l), .greaterOrEqual(let l):
                rows = try range(prefix, type, lower: l, upper: nil)
            case .notEqual, .notInList, .exists:
                rows = nil
            }
            if rows != nil { used.insert(field) }
            return rows
        }
    }

    /// The encoded form of a literal in an index of `type`, or nil when the literal's type does not
    /// belong there (then no document of that index can match it... but documents whose value is
    /// outside the index could, so the condition is unbounded).
    private func encode(_ literal: FilterLiteral, _ type: PayloadIndexType) -> [UInt8]? {
        switch (type, literal) {
        case (.keyword, .string(let s)): return PayloadKeys.keyword(s)
        case (.integer, .int(let i)), (.float, .int(let i)): return PayloadKeys.number(Double(i))
        case (.integer, .double(let d)), (.float, .double(let d)): return d.isNaN ? nil : PayloadKeys.number(d)
        case (.bool, .bool(let b)): return PayloadKeys.bool(b)
        default: return nil
        }
    }

    private func equal(_ prefix: [UInt8], _ literal: FilterLiteral, _ type: PayloadIndexType) throws -> Set<UInt64>? {
        guard let value = encode(literal, type) else { return nil }
        var rows = Set<UInt64>()
        let start = prefix + value
        try txn.forEach(tables.payload, prefix: start) { k, _ in
            if k.count == start.count + 8 { rows.insert(Self.row(k)) }
            return true
        }
        return rows
    }

    /// Rows whose value lies in [lower, upper] (either end open when nil), inclusive.
    private func range(_ prefix: [UInt8], _ type: PayloadIndexType, lower: FilterLiteral?, upper: FilterLiteral?) throws -> Set<UInt64>? {
        guard type != .bool else { return nil }
        let lo = lower.map { encode($0, type) }, hi = upper.map { encode($0, type) }
        // A bound of another type than the index's: the condition is not bounded by this index.
        if lo == .some(nil) || hi == .some(nil) { return nil }
        let lowKey = lo.flatMap { $0 }, highKey = hi.flatMap { $0 }
        var rows = Set<UInt64>()
        try txn.forEach(tables.payload, prefix: prefix, from: prefix + (lowKey ?? [])) { k, _ in
            let value = Array(k[prefix.count..<(k.count - 8)])
            if let h = highKey, h.lexicographicallyPrecedes(value) { return false }
            rows.insert(Self.row(k))
            return true
        }
        return rows
    }

    static func row(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var r: UInt64 = 0
        for i in (key.count - 8)..<key.count { r = r << 8 | UInt64(key[i]) }
        return r
    }
}
