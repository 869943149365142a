import Foundation
import Testing
import QuiverCore
@testable import QuiverIndex

/// The range primitive of every index kind against the exact answer: the flat index's scan, itself
/// checked against a brute-force filter of every distance.
struct RangeSearchTests {
    static let data = TestData.clustered(n: 3_000, dimension: 24, clusters: 20, seed: 11)
    static let queries = TestData.clustered(n: 40, dimension: 24, clusters: 20, seed: 11)

    /// A bound holding about `inside` vectors for query `q`: the exact `inside`-th distance.
    static func bound(_ flat: FlatIndex, _ q: [Float], inside: Int) throws -> Float {
        try flat.search(q, k: inside).last!.distance
    }

    static func flat(_ metric: Metric) throws -> FlatIndex {
        let f = try FlatIndex(dimension: 24, metric: metric)
        try f.add(data, ids: (0..<Int64(data.rows)).map { $0 })
        return f
    }

    @Test(arguments: [Metric.cosine, .l2, .dot])
    func flatRangeIsEveryVectorInsideTheBound(metric: Metric) throws {
        let f = try Self.flat(metric)
        for i in 0..<10 {
            let q = Self.queries[row: i]
            let r = try Self.bound(f, q, inside: 30)
            let all = try f.search(q, k: Self.data.rows)
            let got = try f.rangeSearch(q, maxDistance: r, limit: 10_000)
            #expect(got.neighbors == all.filter { $0.distance <= r })
            #expect(!got.truncated && got.rounds == 1)
            // A limit keeps the closest and says there were more.
            let capped = try f.rangeSearch(q, maxDistance: r, limit: 7)
            #expect(capped.neighbors == Array(got.neighbors.prefix(7)) && capped.truncated)
            let exactFit = try f.rangeSearch(q, maxDistance: r, limit: got.neighbors.count)
            #expect(exactFit.neighbors == got.neighbors && !exactFit.truncated)
        }
    }

    /// The widening loop over an exact top-k search gives the exact range answer, whatever the
    /// number inside (none, fewer than the first k, many rounds' worth, more than the limit).
    @Test func wideningOverAnExactSearchIsExact() throws {
        let f = try Self.flat(.l2)
        let q = Self.queries[row: 3]
        for inside in [1, 5, 16, 17, 100, 700] {
            let r = try Self.bound(f, q, inside: inside)
            for limit in [3, 16, 500, 10_000] {
                let widened = try RangeSearch.widening(maxDistance: r, limit: limit, live: f.liveCount, base: SearchParameters()) { k, p in
                    try q.withUnsafeBufferPointer { try f.search($0, k: k, parameters: p) }
                }
                let exact = try f.rangeSearch(q, maxDistance: r, limit: limit)
                #expect(widened.neighbors == exact.neighbors && widened.truncated == exact.truncated, "inside \(inside), limit \(limit)")
            }
        }
        let none = try RangeSearch.widening(maxDistance: -1, limit: 10, live: f.liveCount, base: SearchParameters()) { k, p in
            try q.withUnsafeBufferPointer { try f.search($0, k: k, parameters: p) }
        }
        #expect(none.neighbors.isEmpty && none.rounds == 1)
        #expect(throws: IndexError.self) { try f.rangeSearch(q, maxDistance: .nan, limit: 10) }
        #expect(throws: IndexError.self) { try f.rangeSearch(q, maxDistance: 1, limit: -1) }
    }

    /// HNSW widens its search until the bound is passed: recall of the in-bound set above 0.97 at
    /// the default efSearch, for sets from a handful to several widening rounds, and filters apply.
    @Test(arguments: [Metric.cosine, .l2])
    func hnswRangeFindsTheBound(metric: Metric) throws {
        let f = try Self.flat(metric)
        let h = try HNSWIndex(dimension: 24, metric: metric)
        try h.add(Self.data, ids: (0..<Int64(Self.data.rows)).map { $0 })
        var found = 0, wanted = 0
        let even = AllowFilter.predicate { $0 % 2 == 0 }
        for i in 0..<Self.queries.rows {
            let q = Self.queries[row: i]
            let r = try Self.bound(f, q, inside: [3, 40, 150][i % 3])
            for allow in [nil, even] {
                let p = SearchParameters(allow: allow)
                let exact = Set(try f.rangeSearch(q, maxDistance: r, limit: 10_000, parameters: p).neighbors.map(\.id))
                let got = try h.rangeSearch(q, maxDistance: r, limit: 10_000, parameters: p)
                #expect(got.neighbors.allSatisfy { $0.distance <= r && (allow?.allows($0.id) ?? true) })
                #expect(got.neighbors.map(\.distance) == got.neighbors.map(\.distance).sorted())
                found += got.neighbors.filter { exact.contains($0.id) }.count
                wanted += exact.count
            }
        }
        #expect(Double(found) / Double(wanted) >= 0.97, "HNSW range recall \(found)/\(wanted)")
    }

    /// IVF-PQ probing every list and re-ranking every candidate is exact, so its range answer is.
    @Test func ivfpqRangeWithEveryListIsExact() throws {
        let f = try Self.flat(.l2)
        let index = try IVFPQIndex(dimension: 24, metric: .l2, parameters: IVFPQParameters(nlist: 16, subspaces: 4, nprobe: 16, rerank: 4_000))
        try index.train(Self.data)
        try index.add(Self.data, ids: (0..<Int64(Self.data.rows)).map { $0 })
        index.vectorSource = MatrixVectorSource(Self.data)
        for i in 0..<8 {
            let q = Self.queries[row: i]
            let r = try Self.bound(f, q, inside: [2, 60][i % 2])
            let got = try index.rangeSearch(q, maxDistance: r, limit: 10_000)
            let want = try f.rangeSearch(q, maxDistance: r, limit: 10_000).neighbors
            #expect(got.neighbors.map(\.id) == want.map(\.id), "\(got.neighbors.suffix(3)) vs \(want.suffix(3))")
        }
    }
}
