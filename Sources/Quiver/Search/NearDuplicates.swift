import Dispatch
import Foundation
import QuiverCore
import QuiverIndex
import Synchronization

// Near-duplicate detection: a similarity self-join over the collection's index. Every live document
// (that the filter allows) is a range query with the threshold as its bound (`CollectionSegments.
// rangeSearch`, the primitive of range search), restricted to the allowed rows; each hit other than
// the document itself is a pair, kept once as (earlier row, later row) whichever side found it, so
// a pair the index misses from one side can still be found from the other. The queries run on every
// core, a batch of stored vectors at a time (each batch read in its own short read transaction).
// Pairs are then grouped (`NearDuplicateGrouping`) and named by document id.

/// What `Collection.nearDuplicates` found.
public struct NearDuplicateReport: Sendable, Codable, Equatable {
    /// The bound: the least score (cosine, dot) or the greatest Euclidean distance (l2).
    public var threshold: Float
    public var clustering: NearDuplicateClustering
    /// Documents joined (those the filter allows).
    public var documents: Int
    /// Every pair found, each once, ordered by the rows of `a` then `b` (write order).
    public var pairs: [NearDuplicatePair]
    public var clusters: [NearDuplicateCluster]
    /// Documents with more than `Limits.maxK` others inside the threshold: only the closest
    /// `Limits.maxK` of theirs were taken (0 unless the threshold is very loose).
    public var truncatedDocuments: Int
    /// Whether the join scanned every vector (`exact`) instead of searching the index.
    public var exact: Bool
}

/// The progress of a near-duplicate join: documents queried of the total.
public struct NearDuplicateProgress: Sendable {
    public var done: Int
    public var total: Int
}

extension Collection {
    /// Every pair of documents at or above `threshold` (a score: cosine similarity or dot product;
    /// for an l2 collection, a Euclidean distance they lie within), found by a self-join over the
    /// index with the range-search primitive (each pair once), grouped into clusters by
    /// `clustering`. `filter` restricts both sides of every pair; `exact` joins by scanning every
    /// vector (the oracle; quadratic). `progress` is called on the calling thread after each batch.
    public func nearDuplicates(threshold: Float, filter: Filter? = nil, clustering: NearDuplicateClustering = .connected,
                               exact: Bool = false, allowUnknownFields: Bool = false,
                               progress: ((NearDuplicateProgress) -> Void)? = nil) throws -> NearDuplicateReport {
        var bounded = SearchOptions()
        if info.metric.higherScoreIsCloser { bounded.minScore = threshold } else { bounded.maxDistance = threshold }
        guard let bound = try rangeBound(bounded, capped: true) else { throw QuiverError.invalidArgument("no threshold") }
        try database.refreshIfReadOnly()
        let allowed = try allowedSet(filter, allowUnknownFields: allowUnknownFields)
        guard let segments = database.segments.segments(info.number) else { throw QuiverError.unknownCollection(name) }
        let total = allowed?.count ?? segments.liveVectors
        let settings = info.indexSettings
        let parameters = SearchParameters(allow: allowed.map { AllowFilter.bitset($0.set) }, efSearch: settings.efSearch, nprobe: settings.nprobe,
                                          rerank: settings.rerank,
                                          allowedShare: allowed == nil ? nil : Double(total) / Double(max(segments.liveVectors, 1)))
        // The exact join searches one flat index of every allowed vector instead of the segments.
        let oracle: FlatIndex? = exact ? try FlatIndex(dimension: info.dimension, metric: info.metric) : nil
        if let oracle {
            try forEachVectorBatch(allowed: allowed?.set) { rows, vectors in try wrapIndex { try oracle.add(vectors, ids: rows.map { Int64($0) }) } }
        }
        var found: [UInt64: [UInt64: Float]] = [:]   // earlier row -> later row -> distance
        var truncated = 0
        var done = 0
        try forEachVectorBatch(allowed: allowed?.set) { rows, vectors in
            let answers = try joinBatch(vectors, segments: segments, oracle: oracle, bound: bound, parameters: parameters)
            for (i, answer) in answers.enumerated() {
                if answer.truncated { truncated += 1 }
                let r = rows[i]
                for n in answer.neighbors where UInt64(n.id) != r && bound.admits(distance: n.distance) {
                    let (a, b) = r < UInt64(n.id) ? (r, UInt64(n.id)) : (UInt64(n.id), r)
                    found[a, default: [:]][b] = min(found[a]?[b] ?? .infinity, n.distance)
                }
            }
            done += rows.count
            progress?(NearDuplicateProgress(done: done, total: total))
        }
        return try report(found, bound: bound, clustering: clustering, documents: done, truncated: truncated, exact: exact)
    }

    /// Range queries for each row of `vectors` on every core: against `oracle` when given,
    /// otherwise against the collection's segments.
    private func joinBatch(_ vectors: Matrix, segments: CollectionSegments, oracle: FlatIndex?, bound: RangeBound,
                           parameters: SearchParameters) throws -> [RangeSearchResult] {
        let n = vectors.rows
        let next = Atomic<Int>(0)
        let out = Mutex<[RangeSearchResult?]>(Array(repeating: nil, count: n))
        let failure = Mutex<(any Error)?>(nil)
        let limit = Limits.maxK
        // Workers claim rows through `next`; one row's answer is one short critical section.
        DispatchQueue.concurrentPerform(iterations: min(n, ProcessInfo.processInfo.activeProcessorCount)) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= n { return }
                do {
                    let answer = try vectors[row: i].withUnsafeBufferPointer { q in
                        try oracle.map { try $0.rangeSearch(q, maxDistance: bound.maxDistance, limit: limit, parameters: parameters) }
                            ?? segments.lock.read { try segments.rangeSearch(q, maxDistance: bound.maxDistance, limit: limit, parameters: parameters) }
                    }
                    out.withLock { $0[i] = answer }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    next.store(n, ordering: .relaxed)
                }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e is IndexError ? QuiverError.invalidArgument("index: \(e)") : e }
        return out.withLock { $0.map { $0! } }
    }

    /// Calls `body` with the stored vectors of the collection (of the `allowed` rows only), in
    /// batches of up to 4,096 rows in row order, each batch read in a read transaction of its own.
    func forEachVectorBatch(allowed: Bitset?, _ body: (_ rows: [UInt64], _ vectors: Matrix) throws -> Void) throws {
        let dimension = info.dimension
        let vectorTable = self.vectorTable
        var from: UInt64 = 0
        while true {
            var rows: [UInt64] = []
            var storage: [Float] = []
            var resume: UInt64? = nil
            try database.readTransaction { txn in
                try checkExists(txn)
                try vectorTable.forEach(txn: txn, from: from) { r, vector in
                    if rows.count == 4_096 {
                        resume = r
                        return false
                    }
                    if let a = allowed, !a.contains(Int(r)) { return true }
                    storage.append(contentsOf: try vector.get())
                    rows.append(r)
                    return true
                }
            }
            if !rows.isEmpty { try body(rows, Matrix(dimension: dimension, storage: storage)) }
            guard let resume else { return }
            from = resume
        }
    }

    /// The report of the pairs `found` (by row, with internal distances): ids and scores, clusters.
    private func report(_ found: [UInt64: [UInt64: Float]], bound: RangeBound, clustering: NearDuplicateClustering,
                        documents: Int, truncated: Int, exact: Bool) throws -> NearDuplicateReport {
        let rowPairs = found.keys.sorted().flatMap { a in found[a]!.keys.sorted().map { (a: a, b: $0) } }
        var ids: [UInt64: String] = [:]
        try database.readTransaction { txn in
            try checkExists(txn)
            for p in rowPairs {
                for r in [p.a, p.b] where ids[r] == nil {
                    // A row deleted since the join has no id any more: its pairs are dropped.
                    if let id = try RowCodec.read(info.number, r, collection: name, txn: txn, tables: database.tables) { ids[r] = id }
                }
            }
        }
        let live = rowPairs.filter { ids[$0.a] != nil && ids[$0.b] != nil }
        func pair(_ a: UInt64, _ b: UInt64) -> NearDuplicatePair {
            NearDuplicatePair(a: ids[a]!, b: ids[b]!, score: info.metric.score(fromDistance: found[a]![b]!))
        }
        let groups = NearDuplicateGrouping.clusters(live, clustering: clustering)
        let clusters = groups.map { g in
            let members = Set(g.members)
            return NearDuplicateCluster(representative: ids[g.representative]!, members: g.members.map { ids[$0]! },
                                        pairs: g.members.flatMap { a in (found[a] ?? [:]).keys.sorted().filter { members.contains($0) }.map { pair(a, $0) } })
        }
        return NearDuplicateReport(threshold: bound.score, clustering: clustering, documents: documents, pairs: live.map { pair($0.a, $0.b) },
                                   clusters: clusters, truncatedDocuments: truncated, exact: exact)
    }
}
