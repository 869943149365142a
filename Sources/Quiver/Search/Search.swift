import QuiverCore
import QuiverIndex
import QuiverStorage

/// Runs `body`, turning index errors into `QuiverError.invalidArgument`.
func wrapIndex<R>(_ body: () throws -> R) throws -> R {
    do { return try body() } catch let e as IndexError { throw QuiverError.invalidArgument("index: \(e.description)") }
}

/// How a search runs and what it returns with each hit.
public struct SearchOptions: Sendable {
    /// Include each hit's text.
    public var includeText = false
    /// Include each hit's vector.
    public var includeVector = false
    /// Score every live vector instead of searching the index segments (a scan of the segments'
    /// float32 vectors in memory, and of IVF-PQ segments' rows in LMDB: slower; the exact answer).
    public var exact = false
    /// HNSW candidate list size for this search (default: the collection's `efSearch`; at least k).
    /// Without a filter a segment much smaller than the largest walks `efSearch * sqrt(its rows /
    /// the largest's)`, at least k, and again with the full list when it supplies a quarter or more
    /// of the k results (docs/architecture.md, "Search").
    public var efSearch: Int?
    /// IVF-PQ lists probed by this search (default: the collection's `nprobe`); a filter widens it.
    public var nprobe: Int?
    /// IVF-PQ candidates re-ranked with full vectors by this search (default: the collection's
    /// `rerank`; at least k).
    public var rerank: Int?
    /// Only documents whose metadata matches this filter are returned (k of them whenever at least
    /// k match).
    public var filter: Filter?
    /// Let the filter name fields that no document has yet, and compare fields with values of a
    /// type they never hold (default false: such a filter is an error that lists the collection's
    /// fields, since it is usually a typo that would silently match nothing).
    public var allowUnknownFields = false
    /// The query adapter a text search applies (default: the collection's tuned one, if any).
    public var adapter: AdapterChoice = .collectionDefault

    // Diversity and grouping (Diversity.swift, Grouping.swift; their own initializers are there).
    /// Maximal marginal relevance over the best `diversityCandidates` hits: 0 is pure relevance (the
    /// plain ranking), 1 pure diversity after the first hit (nil: no diversification). Scores stay
    /// the relevance scores of a plain search.
    public var diversity: Double?
    /// The candidates MMR chooses from (nil: `MaximalMarginalRelevance.candidatesPerResult` × k,
    /// at most `Limits.maxK`; at least k).
    public var diversityCandidates: Int?
    /// The metadata field `searchGroups` groups by (nil: no grouping; a flat search refuses it).
    public var groupBy: String?
    /// The best hits kept per group by `searchGroups`.
    public var groupSize = 1

    // Range search (see RangeSearch.swift): every document within the bound, best first; k caps it.
    /// Cosine and dot collections: every document scoring at least this (score = cosine similarity
    /// or dot product). Refused on an `l2` collection, whose scores are distances (`maxDistance`).
    public var minScore: Float?
    /// `l2` collections: every document within this Euclidean distance (the score there).
    /// Refused on cosine and dot collections (`minScore`).
    public var maxDistance: Float?

    public init(includeText: Bool = false, includeVector: Bool = false, exact: Bool = false, efSearch: Int? = nil,
                nprobe: Int? = nil, rerank: Int? = nil, filter: Filter? = nil) {
        self.includeText = includeText
        self.includeVector = includeVector
        self.exact = exact
        self.efSearch = efSearch
        self.nprobe = nprobe
        self.rerank = rerank
        self.filter = filter
    }
}

/// How a search was run: what `Collection.explain` returns.
public struct SearchPlan: Sendable, Codable, Equatable {
    /// `exact scan`, `segments`, `exact scan of the allowed rows` or `filtered segments`.
    public var strategy: String
    /// Documents in the collection.
    public var documents: Int
    /// Documents the filter allows (all of them without a filter): the actual count.
    public var allowed: Int
    /// Why this strategy.
    public var reason: String
    /// Results returned.
    public var returned: Int
    /// The planner's estimate before reading documents: candidates from payload indexes, or every
    /// document when no index bounds the filter.
    public var estimate: Int = 0
    /// The payload indexes that bounded the filter.
    public var indexesUsed: [String] = []
    /// What the collection's documents hold under each field the filter names (from the field
    /// catalog; empty without a filter).
    public var fields: [FieldStats] = []
    /// The query adapter a text search applied (nil: none).
    public var adapter: String? = nil
    /// Hybrid search: the fusion used and where it came from.
    public var fusion: String? = nil
    /// Diversity (MMR): the setting, candidates and relevance used (nil: none).
    public var diversity: String? = nil
    /// Grouping: the field, groups filled, candidates read and rounds (nil: none).
    public var grouping: String? = nil
}

/// A vector search decided before it runs. `Collection.plan(vector:k:options:)` is the one place
/// that validates a search and picks its strategy; `search` runs the plan and nothing more, and
/// `explain` runs the same plan and then reports it (`report`).
struct VectorSearchPlan {
    enum Strategy {
        /// A scan of the stored vectors (of the allowed rows) in one snapshot: asked for
        /// (`SearchOptions.exact`), or no document is allowed (then there is nothing to scan).
        case exact(asked: Bool)
        /// A search of the collection's segments, the allowed rows going to each as a bitset.
        case segments(CollectionSegments, SearchParameters)
    }

    /// Hits asked of the segments beyond k: a row deleted between the index search and the snapshot
    /// that reads the documents is skipped, and the extra hits stand in for it.
    static let extraSegmentHits = 8

    let strategy: Strategy
    /// The filter (nil: none) and the rows it allows.
    let filter: Filter?
    let allowed: AllowedRows?
    /// Documents in the collection when the search was planned.
    let documents: Int
    /// The results asked for.
    let k: Int
    /// A range search's bound (nil: a top-k search); `capped`: whether k was asked for (otherwise
    /// more than k documents in the bound is an error).
    var range: RangeBound? = nil

    /// The number of allowed documents (all of them without a filter).
    var allowedCount: Int { allowed?.count ?? documents }
    /// Hits asked of the segments.
    var segmentK: Int { k + Self.extraSegmentHits }
}

extension Collection {
    /// The `k` documents nearest to `text`, which the collection's encoder turns into a vector with
    /// its query tower and then the collection's query adapter, if it has one (`options.adapter`).
    /// A collection without an encoder gives `QuiverError.encoder`.
    public func search(text: String, k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        let (vector, _, options) = try queryVector(text, options: options)
        return try search(vector: vector, k: k, options: options)
    }

    /// `explain(vector:k:options:)` for a text query, embedded as `search(text:k:options:)` does.
    public func explain(text: String, k: Int, options: SearchOptions = SearchOptions()) throws -> (results: [SearchResult], plan: SearchPlan) {
        let (vector, adapter, options) = try queryVector(text, options: options)
        var out = try explain(vector: vector, k: k, options: options)
        out.plan.adapter = adapter
        return out
    }

    /// The vector the collection's encoder makes of `text`: with the query tower when `query`,
    /// otherwise with the document tower.
    public func embed(_ text: String, query: Bool = true) throws -> [Float] {
        try encode([text], with: try database.encoder(for: info), queries: query)[row: 0]
    }

    /// The `k` documents nearest to `vector` under the collection's metric, best first. The search
    /// runs over the collection's segments (the exact mutable segment and the sealed HNSW and IVF-PQ
    /// ones); with `options.exact` it scores every live vector instead (`exactSearch`).
    /// With `options.diversity`, the k are chosen by maximal marginal relevance (Diversity.swift).
    public func search(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        try shapedSearch(k: k, options: options, relevance: .dense(info.metric), rankedDenseSearch(vector, adapter: nil)).results
    }

    /// Runs a search and says how it ran: the strategy, the filter's count of allowed documents,
    /// and why.
    public func explain(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> (results: [SearchResult], plan: SearchPlan) {
        let (results, report) = try shapedSearch(k: k, options: options, relevance: .dense(info.metric), rankedDenseSearch(vector, adapter: nil))
        return (results, try report())
    }

    /// The plain dense search of `vector` at any depth, with its report (`adapter`: the query
    /// adapter the vector went through, for the report).
    func rankedDenseSearch(_ vector: [Float], adapter: String?) -> RankedSearch {
        { depth, options in
            let plan = try self.plan(vector: vector, k: depth, options: options)
            let results = try self.run(plan, vector, options: options)
            return (results, {
                var p = self.report(plan, returned: results.count)
                p.adapter = adapter
                return p
            })
        }
    }

    /// Validates a vector search and decides how it runs (the checks in this order: k, the vector,
    /// the filter, then the per-search index parameters, which only a segment search reads).
    func plan(vector: [Float], k: Int, options: SearchOptions, capped: Bool = true) throws -> VectorSearchPlan {
        guard k >= 1 && k <= Limits.maxK else { throw QuiverError.invalidArgument("k must be between 1 and \(Limits.maxK), not \(k)") }
        guard vector.count == info.dimension else {
            throw QuiverError.invalidArgument("the query vector has \(vector.count) components; '\(name)' has dimension \(info.dimension)")
        }
        if let bad = vector.firstIndex(where: { !$0.isFinite }) {
            throw QuiverError.invalidArgument("query vector component \(bad) is NaN or infinite")
        }
        try database.refreshIfReadOnly()
        let documents = try count()
        // The filter's allowed rows: payload-index candidates re-checked, or every document read.
        let allowed = try allowedSet(options.filter, allowUnknownFields: options.allowUnknownFields)
        let range = try rangeBound(options, capped: capped)
        func planned(_ strategy: VectorSearchPlan.Strategy) -> VectorSearchPlan {
            VectorSearchPlan(strategy: strategy, filter: options.filter, allowed: allowed, documents: documents, k: k, range: range)
        }
        let allowedCount = allowed?.count ?? documents
        if options.exact || allowedCount == 0 { return planned(.exact(asked: options.exact)) }
        // The allowed rows go to every segment as a bitset: the exact segments scan them, and an HNSW
        // segment picks by their number (HNSWIndex.filteredSearch): an exact scan of the allowed rows
        // when few are allowed, an ACORN walk over the allowed nodes in between, the plain filtered
        // walk when most are allowed; a walk that yields fewer than k is completed by an exact scan.
        // An IVF-PQ segment probes nprobe / (allowed share) lists, so that about as many allowed codes
        // are scored as without a filter, widens further when they hold fewer than k allowed vectors,
        // and scans the allowed rows exactly when they are few.
        guard let segments = database.segments.segments(info.number) else { throw QuiverError.unknownCollection(name) }
        if let p = options.nprobe, !(1...(1 << 20)).contains(p) { throw QuiverError.invalidArgument("nprobe must be between 1 and 1048576, not \(p)") }
        if let r = options.rerank, !(0...(1 << 24)).contains(r) { throw QuiverError.invalidArgument("rerank must be between 0 and 16777216, not \(r)") }
        if let e = options.efSearch, !(1...(1 << 20)).contains(e) { throw QuiverError.invalidArgument("efSearch must be between 1 and 1048576, not \(e)") }
        let settings = info.indexSettings
        let parameters = SearchParameters(allow: allowed.map { AllowFilter.bitset($0.set) },
                                          efSearch: options.efSearch ?? settings.efSearch, nprobe: options.nprobe ?? settings.nprobe,
                                          rerank: options.rerank ?? settings.rerank,
                                          allowedShare: allowed == nil ? nil : Double(allowedCount) / Double(max(documents, 1)))
        return planned(.segments(segments, parameters))
    }

    /// Runs `plan`: the search and nothing else.
    func run(_ plan: VectorSearchPlan, _ vector: [Float], options: SearchOptions) throws -> [SearchResult] {
        switch plan.strategy {
        case .exact:
            return plan.allowedCount == 0 ? [] : try exactSearch(vector, k: plan.k, allowed: plan.allowed?.set, options: options, range: plan.range)
        case .segments(let segments, let parameters):
            if let range = plan.range { return try runRange(plan, range, segments, parameters, vector, options: options) }
            let hits = try wrapIndex { try segments.search(vector, k: plan.segmentK, parameters: parameters) }
            return try database.readTransaction { txn in
                try checkExists(txn)
                var out: [SearchResult] = []
                for hit in hits where out.count < plan.k {
                    if let r = try result(hit, txn: txn, options: options, skipMissing: true) { out.append(r) }
                }
                return out
            }
        }
    }

    /// What `explain` says of `plan`, run with `returned` results: the strategy and why, with the
    /// figures of the filter and, for a segment search, the choice each sealed segment makes.
    func report(_ plan: VectorSearchPlan, returned: Int) -> SearchPlan {
        let strategy: String
        let reason: String
        switch plan.strategy {
        case .exact(let asked):
            strategy = plan.filter == nil ? "exact scan" : "exact scan of the allowed rows"
            reason = asked ? "exact search was asked for" : "no document matches the filter"
        case .segments(let segments, let parameters):
            strategy = plan.allowed == nil ? "segments" : "segments with an allow-filter"
            var why = "no filter"
            if let allowed = plan.allowed {
                let choices = segments.filteredStrategies(allowed: allowed.set, k: plan.segmentK, efSearch: parameters.efSearch ?? info.indexSettings.efSearch)
                let counts = FilteredSearch.allCases.compactMap { s -> String? in
                    let n = choices.filter { $0 == s }.count
                    return n == 0 ? nil : "\(s.rawValue) in \(n)"
                }
                why = "\(allowed.count) allowed rows; HNSW segments: " + (counts.isEmpty ? "none" : counts.joined(separator: ", "))
                    + " (scan when few rows are allowed, acorn in between, graph when most are)"
            }
            let lists = segments.ivfListCounts()
            if let nlist = lists.max() {
                let settings = info.indexSettings
                let nprobe = parameters.nprobe ?? settings.nprobe
                why += "; \(lists.count) IVF-PQ segment(s) probe \(parameters.probes(nlist: nlist, default: nprobe)) of \(nlist) lists"
                    + (plan.allowed == nil ? "" : " (nprobe \(nprobe) widened by the allowed share)")
                    + " and re-rank \(max(parameters.rerank ?? settings.rerank, plan.segmentK)) candidates"
            }
            reason = why
        }
        let rangeNote = plan.range.map { "; range search for the documents that \($0.phrase)" } ?? ""
        return SearchPlan(strategy: strategy, documents: plan.documents, allowed: plan.allowedCount, reason: reason + rangeNote, returned: returned,
                          estimate: plan.allowed?.candidates ?? plan.documents, indexesUsed: plan.allowed?.indexes ?? [],
                          fields: reportedFields(plan.filter, plan.allowed))
    }

    /// The figures of the fields `filter` names, for `explain`: the field catalog's, or bare names
    /// when the collection has no complete catalog (empty without a filter).
    func reportedFields(_ filter: Filter?, _ allowed: AllowedRows?) -> [FieldStats] {
        guard let filter else { return [] }
        return allowed?.fields ?? FieldCatalog.names(in: filter).map { FieldStats(field: $0) }
    }

    /// The rows whose documents match `filter` (nil without a filter), with the planner's figures
    /// and the field catalog's figures of the fields the filter names (for `explain`).
    ///
    /// Unless `allowUnknownFields`, a filter that names a field no document has, or compares one
    /// with a type it never holds, is refused (when the collection's field catalog is complete: a
    /// read-only open of a database written before the catalog existed skips the check). The named
    /// fields' figures are read with the rows and cached with them (the catalog changes only with
    /// the writes that also end a cache entry's generation), so a repeated filter reads nothing.
    func allowedSet(_ filter: Filter?, allowUnknownFields: Bool = false) throws -> AllowedRows? {
        guard let f = filter else { return nil }
        do { try f.validate() } catch { throw QuiverError.invalidFilter(error) }
        // The generation is read before the rows, so a write racing with this search at worst
        // leaves an entry that is never found again.
        guard let generation = database.segments.segments(info.number)?.generation else { throw QuiverError.unknownCollection(name) }
        let key = FilterCache.Key(collection: info.number, generation: generation, filter: f)
        if let hit = database.filterCache.get(key) {
            if !allowUnknownFields { try checkFields(f, hit.fields) }
            return hit
        }
        let entry = try allowedRows(f, allowUnknownFields: allowUnknownFields)
        database.filterCache.put(key, entry)
        return entry
    }

    /// The check of `allowedSet` against the named fields' figures (nil: no complete catalog, no
    /// check). The list of every field, for the message, is read only when the filter is refused.
    private func checkFields(_ filter: Filter, _ named: [FieldStats]?) throws {
        guard let named else { return }
        try FieldCatalog.check(filter, collection: name,
                               lookup: { field in named.first { $0.field == field && $0.documents > 0 } },
                               all: { try database.readTransaction { txn in try FieldCatalog.fields(info.number, txn: txn, tables: database.tables) ?? [] } })
    }

    /// Every metadata field of the collection's documents, with the number of documents holding
    /// it and the types of its values (from the field catalog, kept current by every write).
    public func fields() throws -> [FieldStats] {
        try database.readTransaction { txn in
            try checkExists(txn)
            if let f = try FieldCatalog.fields(info.number, txn: txn, tables: database.tables) { return f }
            return try FieldCatalog.count(info.number, txn: txn, tables: database.tables).values.sorted { $0.field < $1.field }
        }
    }

    /// The rows whose documents match `filter`: from payload-index candidates re-checked against
    /// their documents when the indexes bound the filter, otherwise from every document.
    func allowedRows(_ filter: Filter, allowUnknownFields: Bool) throws -> AllowedRows {
        try database.readTransaction { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            let tables = database.tables
            // The named fields' figures first, and the check, before any row is read.
            let fields = try FieldCatalog.isComplete(info.number, txn: txn, tables: tables)
                ? FieldCatalog.names(in: filter).map { try FieldCatalog.stats(info.number, $0, txn: txn, tables: tables) ?? FieldStats(field: $0) }
                : nil
            if !allowUnknownFields { try checkFields(filter, fields) }
            let capacity = Int(try Counters.read(info.number, collection: name, txn: txn, tables: tables)?.nextRow ?? 1)
            var set = Bitset(capacity: capacity)
            var n = 0
            let indexes = Dictionary((current.payloadIndexes ?? []).map { ($0.field, $0.type) }, uniquingKeysWith: { a, _ in a })
            var used = Set<String>()
            if !indexes.isEmpty,
               let candidates = try FilterPlanner(number: info.number, indexes: indexes, txn: txn, tables: tables, capacity: capacity)
                .candidates(filter, used: &used) {
                let found = candidates.rows.count
                if candidates.exact { return AllowedRows(set: candidates.rows, count: found, candidates: found, indexes: used.sorted(), fields: fields) }
                try candidates.rows.forEach { row in
                    guard let id = try RowCodec.read(info.number, UInt64(row), collection: name, txn: txn, tables: tables) else { return }
                    let key = Keys.document(info.number, id)
                    guard let bytes = try txn.get(tables.documents, key) else { return }
                    if filter.matches(try DocumentRecord(stored: bytes, key: key, collection: name, withText: false).metadata) {
                        set.insert(row)
                        n += 1
                    }
                }
                return AllowedRows(set: set, count: n, candidates: found, indexes: used.sorted(), fields: fields)
            }
            var documents = 0
            try txn.forEach(tables.documents, prefix: Keys.collection(info.number)) { k, v in
                documents += 1
                let record = try DocumentRecord(stored: v, key: k, collection: name, withText: false)
                if filter.matches(record.metadata) {
                    set.insert(Int(record.row))
                    n += 1
                }
                return true
            }
            return AllowedRows(set: set, count: n, candidates: documents, indexes: [], fields: fields)
        }
    }

    /// The exact answer: every live vector (of the allowed rows only, when given) scored against
    /// `vector`, where it is fastest to read: the float32 vectors the segments hold in memory (the
    /// mutable segment's rows, HNSW segments' stored vectors, exact stand-ins) by a scan of each
    /// (`CollectionSegments.exactScan`), and the rows of IVF-PQ segments, which keep only codes, read
    /// by key from LMDB in the snapshot that then reads the documents. A row deleted between the scan
    /// and that snapshot is skipped, the extra hits standing in for it, as in a segment search.
    /// With `range`: only the vectors within its bound, and more than k of them is its overflow.
    private func exactSearch(_ vector: [Float], k: Int, allowed: Bitset?, options: SearchOptions, range: RangeBound? = nil) throws -> [SearchResult] {
        guard let segments = database.segments.segments(info.number) else { throw QuiverError.unknownCollection(name) }
        let metric = info.metric
        let dimension = info.dimension
        // A range search keeps one more than k, to tell a bound holding more than k.
        let wanted = range == nil ? k : k + 1
        var (top, cold) = try segments.exactScan(vector, k: wanted + VectorSearchPlan.extraSegmentHits, allowed: allowed)
        return try database.readTransaction { txn in
            try checkExists(txn)
            if !cold.isEmpty {
                let query = metric.normalizes ? vector.normalized() : vector
                var row = [Float](repeating: 0, count: dimension)
                try query.withUnsafeBufferPointer { q in
                    try row.withUnsafeMutableBufferPointer { buf in
                        let r = buf.baseAddress!
                        let vectorTable = self.vectorTable
                        for id in cold {
                            guard try vectorTable.read(UInt64(id), txn: txn, into: r) else { continue }
                            if metric.normalizes { DistanceKernels.normalize(r, dimension) }
                            top.push(id: id, distance: metric.distance(q.baseAddress!, r, dimension: dimension))
                        }
                    }
                }
            }
            var out: [SearchResult] = []
            var inside: [Neighbor] = []
            for hit in top.sorted() where out.count < wanted {
                // Best first: past the bound's edge every later hit is outside it too.
                if let range, !range.admits(distance: hit.distance) { break }
                if let r = try result(hit, txn: txn, options: options, skipMissing: true) {
                    out.append(r)
                    inside.append(hit)
                }
            }
            if let range { _ = try range.capped(inside, k: k, overflow: inside.count > k) }
            return Array(out.prefix(k))
        }
    }

    /// The search result of row `hit`; nil for a row no longer stored when `skipMissing`.
    func result(_ hit: Neighbor, txn: LMDBTransaction, options: SearchOptions, skipMissing: Bool) throws -> SearchResult? {
        try result(row: UInt64(hit.id), score: info.metric.score(fromDistance: hit.distance), txn: txn, options: options, skipMissing: skipMissing)
    }

    /// The search result of `row` with `score`; nil for a row no longer stored when `skipMissing`.
    func result(row: UInt64, score: Float, txn: LMDBTransaction, options: SearchOptions, skipMissing: Bool) throws -> SearchResult? {
        let hit = (id: Int64(row), score: score)
        guard let id = try RowCodec.read(info.number, row, collection: name, txn: txn, tables: database.tables) else {
            if skipMissing { return nil }
            throw QuiverError.storage(StorageError(.corrupt, "row \(hit.id) of '\(name)' has a vector but no document; run `quiver verify`"))
        }
        let documentKey = Keys.document(info.number, id)
        guard let docBytes = try txn.get(database.tables.documents, documentKey) else {
            throw QuiverError.storage(StorageError(.corrupt, "row \(hit.id) of '\(name)' names document '\(id)', which is not stored; run `quiver verify`"))
        }
        let record = try DocumentRecord(stored: docBytes, key: documentKey, collection: name, withText: options.includeText)
        var vectorOut: [Float]?
        if options.includeVector {
            vectorOut = try vectorTable.read(row, txn: txn)
        }
        return SearchResult(id: id, score: hit.score, metadata: record.metadata,
                            text: options.includeText ? record.text : nil, vector: vectorOut)
    }
}
