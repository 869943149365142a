import Foundation
import Testing
import QuiverCore
import QuiverIndex
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

/// The mutable segment's graph (issue 15, item 1) and the exact path over the segments' own
/// vectors (item 4), each against an independent brute force over the vectors stored in LMDB.
struct MutableSegmentTests {
    /// The `k` nearest live rows to `q`, computed here from the `vectors` table (no segment, no
    /// index): the document ids, best first, with their scores.
    static func bruteForce(_ c: Collection, _ q: [Float], k: Int, allowed: (String) -> Bool = { _ in true }) throws -> [(id: String, score: Float)] {
        let metric = c.info.metric
        var scored: [(id: String, score: Float)] = []
        try c.database.readTransaction { txn in
            try c.vectorTable.forEach(txn: txn) { row, vector in
                let v = Array(try vector.get())
                let id = try RowCodec.read(c.info.number, row, collection: c.name, txn: txn, tables: c.database.tables)!
                guard allowed(id) else { return true }
                let score: Float
                switch metric {
                case .cosine: score = zip(q.normalized(), v.normalized()).map(*).reduce(0, +)
                case .dot: score = zip(q, v).map(*).reduce(0, +)
                case .l2: score = zip(q, v).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                }
                scored.append((id, score))
                return true
            }
        }
        scored.sort { metric.higherScoreIsCloser ? $0.score > $1.score : $0.score < $1.score }
        return Array(scored.prefix(k))
    }

    /// `exact: true` over sealed HNSW or IVF-PQ segments, a mutable segment with its graph, deleted
    /// and updated rows, with and without a filter: the brute force's ids and scores.
    @Test(arguments: [(IndexKind.hnsw, QuiverCore.Metric.cosine), (.hnsw, .l2), (.ivfpq, .dot), (.ivfpq, .l2), (.flat, .cosine)])
    func exactSearchEqualsBruteForceOverLMDBRows(kind: IndexKind, metric: QuiverCore.Metric) throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(state: 15)
        let d = 16
        let db = try Database(path: dir.path)
        let c = try db.createCollection("x", dimension: d, metric: metric,
                                        options: CollectionOptions(index: IndexSettings(kind: kind, segmentSize: 2_000, nlist: 16)))
        for start in stride(from: 0, to: 2_400, by: 400) {
            try c.upsert((start..<start + 400).map { Document(id: "d\($0)", metadata: ["even": .bool($0 % 2 == 0)], vector: randomVector(d, &rng)) })
        }
        try db.compact("x")
        // 1,500 more rows stay in the mutable segment (past the graph threshold), some deleted or updated.
        try c.upsert((2_400..<3_900).map { Document(id: "d\($0)", metadata: ["even": .bool($0 % 2 == 0)], vector: randomVector(d, &rng)) })
        #expect(try c.delete(ids: (0..<3_900).filter { $0 % 7 == 3 }.map { "d\($0)" }) > 0)
        try c.upsert((0..<3_900).filter { $0 % 11 == 5 }.map { Document(id: "d\($0)", metadata: ["even": .bool($0 % 2 == 0)], vector: randomVector(d, &rng)) })
        if kind != .flat { #expect(db.segments.segments(c.info.number)!.mutable.graph != nil) }
        for _ in 0..<5 {
            let q = randomVector(d, &rng)
            let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true))
            let truth = try Self.bruteForce(c, q, k: 10)
            #expect(exact.map(\.id) == truth.map(\.id))
            for (e, t) in zip(exact, truth) { #expect(abs(e.score - t.score) < 1e-4) }
            let filtered = try c.search(vector: q, k: 10, options: SearchOptions(exact: true, filter: try Filter(text: "even = true")))
            let filteredTruth = try Self.bruteForce(c, q, k: 10) { Int($0.dropFirst())! % 2 == 0 }
            #expect(filtered.map(\.id) == filteredTruth.map(\.id))
        }
    }

    /// A full mutable segment is searched through its graph: built at the threshold, extended by
    /// every write, deletes tombstoned in it, rebuilt at open; the answers stay close to the exact
    /// ones and never name a deleted row; an efSearch as large as the segment scans it exactly.
    @Test func theMutableSegmentKeepsAGraphOverItsRows() throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(state: 1_515)
        let d = 24
        var db = try Database(path: dir.path)
        var c = try db.createCollection("g", dimension: d, metric: .cosine, options: CollectionOptions(index: IndexSettings(segmentSize: 4_096)))
        try c.upsert((0..<1_000).map { Document(id: "d\($0)", vector: randomVector(d, &rng)) })
        #expect(db.segments.segments(c.info.number)!.mutable.graph == nil)
        for start in stride(from: 1_000, to: 3_000, by: 250) {
            try c.upsert((start..<start + 250).map { Document(id: "d\($0)", vector: randomVector(d, &rng)) })
        }
        let deleted = Set((0..<3_000).filter { $0 % 5 == 0 }.map { "d\($0)" })
        #expect(try c.delete(ids: Array(deleted)) == deleted.count)
        func check(_ label: String) throws {
            let graph = try #require(db.segments.segments(c.info.number)!.mutable.graph, "\(label): no graph")
            #expect(graph.count == 3_000 || graph.count == 2_400, "\(label): \(graph.count) nodes")
            #expect(graph.liveCount == 2_400)
            var found = 0
            for _ in 0..<30 {
                let q = randomVector(d, &rng)
                let fast = try c.search(vector: q, k: 10)
                let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true))
                #expect(Set(fast.map(\.id)).isDisjoint(with: deleted), "\(label): a deleted row returned")
                found += Set(fast.map(\.id)).intersection(exact.map(\.id)).count
                let wide = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 5_000))
                #expect(wide.map(\.id) == exact.map(\.id), "\(label): a search as wide as the segment is not exact")
            }
            #expect(Double(found) / 300 >= 0.95, "\(label): recall@10 \(Double(found) / 300) against the exact search")
        }
        try check("after the writes")
        db.close()
        db = try Database(path: dir.path)
        c = try db.collection("g")
        try check("after reopening")
        let figures = try db.stats().collections[0].index!.byKind.first { $0.kind == .flat }!
        #expect(figures.vectors == 2_400)
    }
    /// A segment much smaller than the largest walks a shorter list (`segmentEf`): never below k,
    /// never above ef, ef itself for the largest segment and its equals, and at an efSearch as large
    /// as the collection never below the segment's rows (so the oracle's wide search stays exact).
    @Test func aSmallSegmentWalksAShorterList() {
        #expect(CollectionSegments.segmentEf(64, k: 10, rows: 8_192, largest: 8_192) == 64)
        #expect(CollectionSegments.segmentEf(64, k: 10, rows: 9_000, largest: 8_192) == 64)
        #expect([16, 32, 64, 128].map { CollectionSegments.segmentEf($0, k: 10, rows: 8_191, largest: 108_468) } == [10, 10, 18, 36])
        #expect(CollectionSegments.segmentEf(12, k: 10, rows: 100, largest: 100_000) == 10)
        #expect(CollectionSegments.segmentEf(64, k: 10, rows: 0, largest: 0) == 64)
        var rng = SplitMix64(state: 77)
        for _ in 0..<2_000 {
            let largest = 1 + Int(rng.next() % 200_000)
            let rows = Int(rng.next() % UInt64(largest + 1))
            let ef = largest + rows + Int(rng.next() % 1_000)
            #expect(CollectionSegments.segmentEf(ef, k: 10, rows: rows, largest: largest) >= rows, "\(rows) rows beside \(largest) at ef \(ef)")
        }
    }

    /// A cosine collection of `rows` random vectors (ids d0, d1, ...) upserted in batches of `batch`,
    /// then compacted into one HNSW segment.
    static func compactedRandomCollection(_ db: Database, _ name: String, dimension d: Int, rows: Int, batch: Int,
                                          segmentSize: Int, _ rng: inout SplitMix64) throws -> Collection {
        let c = try db.createCollection(name, dimension: d, metric: .cosine, options: CollectionOptions(index: IndexSettings(segmentSize: segmentSize)))
        for start in stride(from: 0, to: rows, by: batch) {
            try c.upsert((start..<start + batch).map { Document(id: "d\($0)", vector: randomVector(d, &rng)) })
        }
        try db.compact(name)
        return c
    }

    /// A full mutable segment beside a sealed segment five times its size (so its walk takes the
    /// shorter list): the default search stays close to the exact one, and an efSearch as large as
    /// the collection still answers exactly.
    @Test func aMutableSegmentBesideALargerSealedOneKeepsRecall() throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(state: 1_516)
        let d = 24
        let db = try Database(path: dir.path)
        let c = try Self.compactedRandomCollection(db, "s", dimension: d, rows: 6_000, batch: 1_000, segmentSize: 2_048, &rng)
        try c.upsert((6_000..<7_200).map { Document(id: "d\($0)", vector: randomVector(d, &rng)) })
        let segments = db.segments.segments(c.info.number)!
        #expect(segments.mutable.graph != nil)
        #expect(segments.sealedSnapshot.map { $0.index.any.liveCount }.max() ?? 0 >= 6_000)
        var found = 0, foundInMutable = 0, truthInMutable = 0
        for _ in 0..<40 {
            let q = randomVector(d, &rng)
            let fast = try c.search(vector: q, k: 10)
            let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true))
            let hit = Set(fast.map(\.id)).intersection(exact.map(\.id))
            found += hit.count
            let inMutable = exact.map(\.id).filter { Int($0.dropFirst())! >= 6_000 }
            truthInMutable += inMutable.count
            foundInMutable += hit.intersection(inMutable).count
            let wide = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 7_200))
            #expect(wide.map(\.id) == exact.map(\.id), "a search as wide as the collection is not exact")
        }
        #expect(Double(found) / 400 >= 0.95, "recall@10 \(Double(found) / 400) against the exact search")
        #expect(truthInMutable > 0 && Double(foundInMutable) / Double(truthInMutable) >= 0.9,
                "the mutable segment's rows: \(foundInMutable) of \(truthInMutable) found")
    }

    /// Rows written together on one topic and searched at once: the answers all lie in the small
    /// mutable segment, so its shortened walk is done again with the full list, and the collection
    /// answers as the mutable segment's own walk at the full efSearch does.
    @Test func aSmallSegmentHoldingTheAnswersWalksTheFullList() throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(state: 2_024)
        let d = 24
        let db = try Database(path: dir.path)
        let c = try Self.compactedRandomCollection(db, "t", dimension: d, rows: 16_000, batch: 2_000, segmentSize: 4_096, &rng)
        // The topic: 1,500 rows around one direction, written after the compaction.
        let center = randomVector(d, &rng)
        func nearCenter() -> [Float] { zip(center, randomVector(d, &rng)).map { $0 + 0.15 * $1 } }
        try c.upsert((0..<1_500).map { Document(id: "t\($0)", vector: nearCenter()) })
        let segments = db.segments.segments(c.info.number)!
        #expect(segments.sealedSnapshot.map { $0.index.any.liveCount }.max() ?? 0 >= 16_000)
        #expect(CollectionSegments.segmentEf(32, k: 10, rows: 1_500, largest: 16_000) < 32)
        let parameters = SearchParameters(efSearch: 32)
        for _ in 0..<40 {
            let q = nearCenter()
            let got = try segments.search(q, k: 10, parameters: parameters)
            let own = try q.withUnsafeBufferPointer { try segments.mutable.search($0, k: 10, parameters: parameters) }
            #expect(got.map(\.id) == own.map(\.id), "the topic's rows were walked with the shortened list")
        }
    }
}
