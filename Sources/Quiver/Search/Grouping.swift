import QuiverCore

// Grouping: the best `groupSize` hits per value of a metadata field, up to k groups.
//
// The hits of the plain search (dense, lexical or hybrid, filters applying) are walked best first.
// A hit joins the group of each of its values: a group is opened while fewer than k are open, and
// takes hits until it holds `groupSize`. Groups come in the order of their best hit. So the answer
// is what this walk gives over the whole ranked list; it is found by searching `initialDepth`
// candidates, then 4 times as many, until k groups are full, the candidates run out (fewer hits
// than asked), or `Limits.maxK` candidates have been walked (the bound: then some groups may hold
// fewer than `groupSize`, or fewer than k groups may be open; explain says so).
//
// Values: a string, an integer or a boolean is one group; a list of strings puts the document in
// a group for each of its (distinct) strings, as Qdrant does, so a document may appear in several
// groups. A document without the field, or whose value is null, a float (not a key: 0.1 + 0.2 is
// not 0.3) or an empty list, belongs to no group and is skipped (Qdrant's behaviour; Milvus makes
// one group of nulls). To group documents without the field, give them a value.

/// One group of `Collection.searchGroups`: the field's value and its best hits.
public struct SearchGroup: Sendable, Equatable, Codable {
    /// The group's value of the field: a string, an integer or a boolean.
    public var value: MetadataValue
    /// The group's hits, best first (at most `SearchOptions.groupSize`).
    public var hits: [SearchResult]

    public init(value: MetadataValue, hits: [SearchResult]) {
        self.value = value
        self.hits = hits
    }
}

enum Grouping {
    /// Candidates walked first per hit asked (k × groupSize).
    static let initialCandidatesPerHit = 4
    /// How much deeper each further round searches.
    static let depthGrowth = 4

    /// The groups a document with `metadata` belongs to under `field` (none: skipped).
    static func keys(_ metadata: Metadata, field: String) -> [MetadataValue] {
        switch metadata[field] {
        case .string(let s)?: return [.string(s)]
        case .int(let i)?: return [.int(i)]
        case .bool(let b)?: return [.bool(b)]
        case .stringList(let l)?:
            var seen = Set<String>()
            return l.filter { seen.insert($0).inserted }.map { .string($0) }
        case .double?, .null?, nil: return []
        }
    }

    /// The walk over `ranked` (best first): at most k groups of at most `size` hits, and the number
    /// of hits that had no value to group by.
    static func group(_ ranked: [SearchResult], field: String, k: Int, size: Int) -> (groups: [SearchGroup], skipped: Int) {
        var groups: [SearchGroup] = []
        var index: [MetadataValue: Int] = [:]
        var skipped = 0
        for hit in ranked {
            let keys = keys(hit.metadata, field: field)
            if keys.isEmpty { skipped += 1 }
            for key in keys {
                if let g = index[key] {
                    if groups[g].hits.count < size { groups[g].hits.append(hit) }
                } else if groups.count < k {
                    index[key] = groups.count
                    groups.append(SearchGroup(value: key, hits: [hit]))
                }
            }
        }
        return (groups, skipped)
    }

    static func isFull(_ groups: [SearchGroup], k: Int, size: Int) -> Bool {
        groups.count == k && groups.allSatisfy { $0.hits.count == size }
    }
}

extension SearchOptions {
    /// A grouped search: the best `groupSize` documents per value of the metadata field `groupBy`.
    public init(groupBy: String, groupSize: Int = 1, filter: Filter? = nil) {
        self.init(filter: filter)
        self.groupBy = groupBy
        self.groupSize = groupSize
    }
}

extension Collection {
    /// Up to `k` groups of the documents nearest to `vector`, by their value of the metadata field
    /// `options.groupBy`, each with its best `options.groupSize` hits (see Grouping.swift for the
    /// values, documents without the field, and how deep the search goes).
    public func searchGroups(vector: [Float], k: Int, options: SearchOptions) throws -> [SearchGroup] {
        try groupedSearch(k: k, options: options, rankedDenseSearch(vector, adapter: nil)).groups
    }

    /// `searchGroups(vector:k:options:)` with the plan of its last round.
    public func explainGroups(vector: [Float], k: Int, options: SearchOptions) throws -> (groups: [SearchGroup], plan: SearchPlan) {
        let (groups, report) = try groupedSearch(k: k, options: options, rankedDenseSearch(vector, adapter: nil))
        return (groups, try report())
    }

    /// `searchGroups` for a text query in `mode`, as `search(text:k:mode:fusion:depth:options:)`
    /// searches (the query is embedded once, whatever the rounds).
    public func searchGroups(text: String, k: Int, mode: SearchMode = .dense, fusion: Fusion? = nil, depth: Int = 100,
                             options: SearchOptions) throws -> [SearchGroup] {
        try groupedSearch(k: k, options: options, rankedTextSearch(text, mode: mode, fusion: fusion, depth: depth, options: options)).groups
    }

    /// `searchGroups(text:...)` with the plan of its last round.
    public func explainGroups(text: String, k: Int, mode: SearchMode = .dense, fusion: Fusion? = nil, depth: Int = 100,
                              options: SearchOptions) throws -> (groups: [SearchGroup], plan: SearchPlan) {
        let (groups, report) = try groupedSearch(k: k, options: options,
                                                 rankedTextSearch(text, mode: mode, fusion: fusion, depth: depth, options: options))
        return (groups, try report())
    }

    /// Runs `ranked` deeper and deeper until k groups are full, the candidates run out, or
    /// `Limits.maxK` were walked. The options are checked before `ranked` is made.
    func groupedSearch(k: Int, options: SearchOptions,
                       _ ranked: @autoclosure () throws -> RankedSearch) throws -> (groups: [SearchGroup], report: () throws -> SearchPlan) {
        guard k >= 1 && k <= Limits.maxK else { throw QuiverError.invalidArgument("k (groups) must be between 1 and \(Limits.maxK), not \(k)") }
        guard let field = options.groupBy else {
            throw QuiverError.invalidArgument("searchGroups needs SearchOptions.groupBy, the metadata field to group by")
        }
        guard !field.isEmpty else { throw QuiverError.invalidArgument("the field to group by is empty") }
        try options.refuseRangeBound(with: "grouping (groupBy)")
        let size = options.groupSize
        guard size >= 1 && size <= Limits.maxK else { throw QuiverError.invalidArgument("groupSize must be between 1 and \(Limits.maxK), not \(size)") }
        guard k * size <= Limits.maxK else {
            throw QuiverError.invalidArgument("k × groupSize (\(k) × \(size)) must be at most \(Limits.maxK) hits")
        }
        if options.diversity != nil {
            throw QuiverError.invalidArgument("diversity and groupBy do not combine: a grouped search spreads its hits over the field's values instead")
        }
        if !options.allowUnknownFields { try checkGroupField(field) }
        let search = try ranked()
        var depth = min(Limits.maxK, Grouping.initialCandidatesPerHit * k * size)
        var rounds = 0
        while true {
            rounds += 1
            let (hits, report) = try search(depth, options)
            let (groups, skipped) = Grouping.group(hits, field: field, k: k, size: size)
            let full = Grouping.isFull(groups, k: k, size: size)
            let exhausted = hits.count < depth
            if full || exhausted || depth == Limits.maxK {
                let why = full ? "\(k) group(s) full" : exhausted ? "the candidates ran out" : "the bound of \(Limits.maxK) candidates was reached"
                let returned = groups.reduce(0) { $0 + $1.hits.count }
                let walked = hits.count, tried = rounds
                return (groups, {
                    var plan = try report()
                    plan.returned = returned
                    plan.grouping = "group by '\(field)', size \(size): \(groups.count) group(s), \(returned) hit(s) from \(walked) candidate(s) "
                        + "in \(tried) round(s) (\(why)); \(skipped) candidate(s) without a string, integer or boolean value skipped"
                    return plan
                })
            }
            depth = min(Limits.maxK, depth * Grouping.depthGrowth)
        }
    }

    /// Refuses a group field that no document holds a groupable value of (usually a typo): the
    /// message lists the collection's fields. `SearchOptions.allowUnknownFields` skips the check.
    private func checkGroupField(_ field: String) throws {
        let all = try fields()
        if let stats = all.first(where: { $0.field == field }), stats.strings + stats.integers + stats.booleans + stats.lists > 0 { return }
        let listed = all.isEmpty ? "it has no metadata fields" : "its fields are " + all.map { "'\($0.field)' (\($0.types.joined(separator: ", ")))" }.joined(separator: ", ")
        let what = all.contains { $0.field == field } ? "no document of '\(name)' holds a string, integer, boolean or list value under '\(field)'"
            : "no document of '\(name)' has the field '\(field)'"
        throw QuiverError.invalidArgument("cannot group by '\(field)': \(what); \(listed) (SearchOptions.allowUnknownFields / --allow-unknown-fields groups anyway)")
    }
}
