import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver

/// Range search through a collection (`SearchOptions.minScore` / `maxDistance`): the exact scan is
/// the oracle, the segment search (sealed HNSW segments and the mutable one) finds the bound, and
/// every wrong use is refused with a message naming it.
struct RangeSearchCollectionTests {
    /// A collection of `n` clustered points in 16-d with a `g` field (i % 3), sealed into HNSW segments
    /// of 400 with the last rows left in the mutable segment.
    static func collection(_ dir: TemporaryDirectory, metric: QuiverCore.Metric, n: Int = 2_100) throws -> (Database, Collection, [[Float]]) {
        var rng = SplitMix64(state: 5)
        let db = try Database(path: dir.path)
        let c = try db.createCollection("r", dimension: 16, metric: metric,
                                        options: CollectionOptions(index: IndexSettings(kind: .hnsw, segmentSize: 400)))
        let centers = (0..<12).map { _ in randomVector(16, &rng).map { $0 * 3 } }
        let points = (0..<n).map { _ in IndexKindTests.near(centers[Int.random(in: 0..<12, using: &rng)], 0.6, &rng) }
        try c.insert(points.enumerated().map { Document(id: "p\($0.offset)", metadata: ["g": .int(Int64($0.offset % 3))], vector: $0.element) })
        db.waitForMaintenance()
        return (db, c, points)
    }

    @Test(arguments: [QuiverCore.Metric.cosine, .l2, .dot])
    func rangeMatchesTheExactScan(metric: QuiverCore.Metric) throws {
        let dir = TemporaryDirectory()
        let (db, c, points) = try Self.collection(dir, metric: metric)
        #expect(try db.stats().collections[0].index!.byKind.contains { $0.kind == .hnsw })
        var found = 0, wanted = 0
        for (i, q) in points.prefix(30).enumerated() {
            // A bound around the exact 5th, 60th or 250th neighbour's score.
            let edge = try c.search(vector: q, k: [5, 60, 250][i % 3], options: SearchOptions(exact: true)).last!.score
            var options = SearchOptions()
            if metric == .l2 { options.maxDistance = edge } else { options.minScore = edge }
            let filter: Filter? = i % 2 == 0 ? nil : .field("g", .equal(.int(1)))
            options.filter = filter
            var exactOptions = options
            exactOptions.exact = true
            let exact = try c.search(vector: q, options: exactOptions)
            // The oracle is every document inside the bound (and the filter), best first.
            let all = try c.search(vector: q, k: points.count, options: SearchOptions(exact: true, filter: filter))
            #expect(exact.map(\.id) == all.filter { metric == .l2 ? $0.score <= edge : $0.score >= edge }.map(\.id))
            let fast = try c.search(vector: q, options: options)
            #expect(fast.allSatisfy { metric == .l2 ? $0.score <= edge : $0.score >= edge })
            let scores = fast.map(\.score)
            let ordered: [Float] = metric == .l2 ? scores.sorted() : scores.sorted { $0 > $1 }
            #expect(scores == ordered)
            found += Set(fast.map(\.id)).intersection(exact.map(\.id)).count
            wanted += exact.count
            // k caps a range search at the best k.
            let capped = try c.search(vector: q, k: 3, options: options)
            #expect(capped.map(\.id) == Array(fast.prefix(3)).map(\.id))
        }
        // HNSW is not built for inner products on unnormalized clustered data (see IndexKindTests):
        // its top-k recall, and so its range recall, is lower there.
        #expect(Double(found) / Double(wanted) >= (metric == .dot ? 0.9 : 0.97), "range recall \(found)/\(wanted)")
    }

    @Test func wrongBoundsAreRefused() throws {
        let dir = TemporaryDirectory()
        let (db, c, points) = try Self.collection(dir, metric: .cosine, n: 50)
        let l2 = try db.createCollection("e", dimension: 16, metric: .l2)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let q = points[0]
        #expect(message { _ = try c.search(vector: q, options: SearchOptions()) }.contains("needs a bound"))
        var o = SearchOptions()
        o.maxDistance = 1
        #expect(message { _ = try c.search(vector: q, options: o) }.contains("minScore"))
        o.minScore = 0.5
        #expect(message { _ = try c.search(vector: q, options: o) }.contains("not both"))
        o = SearchOptions()
        o.minScore = 0.5
        #expect(message { _ = try l2.search(vector: q, options: o) }.contains("maxDistance"))
        o.minScore = .nan
        #expect(message { _ = try c.search(vector: q, options: o) }.contains("finite"))
        o = SearchOptions()
        o.maxDistance = -1
        #expect(message { _ = try l2.search(vector: q, options: o) }.contains("at least 0"))
    }

    /// Without k, more than `Limits.maxK` documents inside the bound is an error that says so; with
    /// k the best k come back.
    @Test func theHardCapIsAClearError() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("many", dimension: 2, metric: .cosine, options: CollectionOptions(index: IndexSettings(kind: .flat)))
        try c.insert((0...Limits.maxK).map { Document(id: "d\($0)", vector: [1, Float($0) * 1e-6]) })
        var o = SearchOptions()
        o.minScore = 0.9
        for exact in [false, true] {
            o.exact = exact
            do {
                _ = try c.search(vector: [1, 0], options: o)
                Issue.record("a range holding more than \(Limits.maxK) documents was returned")
            } catch {
                #expect("\(error)".contains("more than \(Limits.maxK) documents") && "\(error)".contains("give k"), "\(error)")
            }
            #expect(try c.search(vector: [1, 0], k: 5, options: o).map(\.id) == ["d0", "d1", "d2", "d3", "d4"])
        }
    }
}
