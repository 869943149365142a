import QuiverCore
import Testing
@testable import QuiverIndex

/// HNSW against the shipped ground truth and against the flat oracle.
struct HNSWIndexTests {
    static func denseIds(_ n: Int, from start: Int = 0) -> [Int64] { (start..<start + n).map { Int64($0) } }

    static func exactTopK(_ flat: FlatIndex, _ queries: Matrix, k: Int, allow: AllowFilter? = nil) throws -> [[Int64]] {
        try flat.search(queries, k: k, allow: allow).map { $0.map(\.id) }
    }

    /// Issue 4's acceptance bar: recall@10 >= 0.98 on bigann10k with the default parameters (the
    /// parallel build) against the shipped, 0-based ground truth.
    @Test func bigannRecallWithDefaults() throws {
        let data = try TestData.bigann.get()
        let index = try HNSWIndex(dimension: 128, metric: .l2)
        try index.add(data.base, ids: Self.denseIds(data.base.rows))
        #expect(index.count == 10_000)
        let found = try index.search(data.queries, k: 10, allow: nil)
        let truth = data.groundTruth.map { $0.map(Int64.init) }
        let recall = TestData.recall(found, truth, k: 10)
        print("bigann10k recall@10 (defaults, parallel build) = \(recall)")
        #expect(recall >= 0.98)
        // Distances are the squared L2 of the stored vectors.
        let q = data.queries[row: 0]
        let best = found[0][0]
        let v = data.base[row: Int(best.id)]
        let exact = zip(q, v).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        #expect(abs(best.distance - exact) <= 1e-3 * exact)
    }

    /// The serial build (one thread, fixed seed) reaches the same bar.
    @Test func bigannRecallSerialBuild() throws {
        let data = try TestData.bigann.get()
        let index = try HNSWIndex(dimension: 128, metric: .l2, parameters: HNSWParameters(buildThreads: 1))
        try index.add(data.base, ids: Self.denseIds(data.base.rows))
        let recall = TestData.recall(try index.search(data.queries, k: 10, allow: nil), data.groundTruth.map { $0.map(Int64.init) }, k: 10)
        print("bigann10k recall@10 (defaults, serial build) = \(recall)")
        #expect(recall >= 0.98)
    }

    /// HNSW against the flat index for every metric, on clustered data, built in several batches
    /// (so that the graph grows across `add` calls) with non-dense ids.
    @Test(arguments: Metric.allCases)
    func matchesFlatOracle(metric: Metric) throws {
        let n = 4000, d = 48
        // Queries from the same mixture as the data (held-out points), as real queries are.
        let all = TestData.clustered(n: n + 200, dimension: d, seed: 7)
        let data = Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d]))
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        let ids = (0..<n).map { Int64($0) * 7 + 1_000_000 }
        let hnsw = try HNSWIndex(dimension: d, metric: metric, parameters: HNSWParameters(efSearch: 100))
        let flat = try FlatIndex(dimension: d, metric: metric)
        for start in stride(from: 0, to: n, by: 1000) {
            let rows = Matrix(dimension: d, storage: Array(data.storage[start * d ..< (start + 1000) * d]))
            try hnsw.add(rows, ids: Array(ids[start ..< start + 1000]))
        }
        try flat.add(data, ids: ids)
        let found = try hnsw.search(queries, k: 10, allow: nil)
        let recall = TestData.recall(found, try Self.exactTopK(flat, queries, k: 10), k: 10)
        print("\(metric) recall@10 vs flat = \(recall)")
        #expect(recall >= 0.95)
        // Distances agree with the oracle's for the same ids.
        let exact = try flat.search(queries, k: 1, allow: nil)
        for (h, f) in zip(found, exact) where h[0].id == f[0].id {
            #expect(abs(h[0].distance - f[0].distance) <= 1e-4 * max(1, abs(f[0].distance)))
        }
    }

    /// A filter that admits 1% of the vectors still yields exactly k results, all allowed: through the
    /// exact scan (bitset) and through the graph with the scan as fallback (predicate).
    @Test func selectiveFilterReturnsKAllowed() throws {
        let data = try TestData.bigann.get()
        let n = data.base.rows
        let index = try HNSWIndex(dimension: 128, metric: .l2)
        try index.add(data.base, ids: Self.denseIds(n))
        let flat = try FlatIndex(dimension: 128, metric: .l2)
        try flat.add(data.base, ids: Self.denseIds(n))
        var bits = Bitset(capacity: n)
        for i in stride(from: 3, to: n, by: 100) { bits.insert(i) }   // 100 of 10,000 allowed
        let allowedBits = bits
        let filters: [AllowFilter] = [.bitset(bits), .predicate { allowedBits.contains(Int($0)) }]
        for filter in filters {
            let found = try index.search(data.queries, k: 10, allow: filter)
            let truth = try Self.exactTopK(flat, data.queries, k: 10, allow: filter)
            for r in found {
                #expect(r.count == 10)
                #expect(r.allSatisfy { bits.contains(Int($0.id)) })
            }
            #expect(TestData.recall(found, truth, k: 10) >= 0.99)
        }
        // Fewer allowed than k: all of them.
        var few = Bitset(capacity: n)
        for i in [5, 50, 500] { few.insert(i) }
        let r = try index.search(data.queries[row: 0], k: 10, allow: .bitset(few))
        #expect(Set(r.map(\.id)) == [5, 50, 500])
    }

    /// A filter admitting ~30% goes through the graph; results must be allowed and near-exact.
    @Test func moderateFilterThroughTheGraph() throws {
        let data = try TestData.bigann.get()
        let index = try HNSWIndex(dimension: 128, metric: .l2)
        try index.add(data.base, ids: Self.denseIds(data.base.rows))
        let flat = try FlatIndex(dimension: 128, metric: .l2)
        try flat.add(data.base, ids: Self.denseIds(data.base.rows))
        let filter = AllowFilter.predicate { $0 % 10 < 3 }
        let found = try index.search(data.queries, k: 10, allow: filter)
        #expect(found.allSatisfy { $0.count == 10 && $0.allSatisfy { $0.id % 10 < 3 } })
        let recall = TestData.recall(found, try Self.exactTopK(flat, data.queries, k: 10, allow: filter), k: 10)
        #expect(recall >= 0.97)
    }

    /// Tombstoned vectors are never returned, the graph still routes through them, and the results
    /// match the oracle over the live vectors.
    @Test func tombstonesNeverReturned() throws {
        let data = try TestData.bigann.get()
        let n = data.base.rows
        let index = try HNSWIndex(dimension: 128, metric: .l2)
        try index.add(data.base, ids: Self.denseIds(n))
        let flat = try FlatIndex(dimension: 128, metric: .l2)
        try flat.add(data.base, ids: Self.denseIds(n))
        // Delete the true nearest neighbours of every query, plus every third vector.
        var deleted = Set<Int64>()
        for row in data.groundTruth { for id in row.prefix(5) { deleted.insert(Int64(id)) } }
        for id in stride(from: 0, to: Int64(n), by: 3) { deleted.insert(id) }
        for id in deleted {
            #expect(index.markDeleted(id))
            flat.markDeleted(id)
        }
        #expect(!index.markDeleted(Array(deleted)[0]))
        #expect(!index.markDeleted(Int64(n + 5)))
        #expect(index.liveCount == n - deleted.count)
        #expect(!index.contains(Array(deleted)[0]))
        let found = try index.search(data.queries, k: 10, allow: nil)
        for r in found {
            #expect(r.count == 10)
            #expect(r.allSatisfy { !deleted.contains($0.id) })
        }
        let recall = TestData.recall(found, try Self.exactTopK(flat, data.queries, k: 10), k: 10)
        #expect(recall >= 0.97)
        // With a filter too.
        let f = try index.search(data.queries, k: 10, allow: .predicate { $0 % 2 == 0 })
        #expect(f.allSatisfy { $0.count == 10 && $0.allSatisfy { !deleted.contains($0.id) && $0.id % 2 == 0 } })
        // Deleting everything leaves nothing to return.
        let tiny = try HNSWIndex(dimension: 2, metric: .l2)
        try tiny.add(Matrix(dimension: 2, rows: [[0, 0], [1, 1]]), ids: [4, 9])
        tiny.markDeleted(4); tiny.markDeleted(9)
        #expect(try tiny.search([0, 0], k: 3).isEmpty)
    }

    /// One thread and one seed give the same graph, byte for byte.
    @Test func serialBuildIsDeterministic() throws {
        let data = TestData.clustered(n: 2000, dimension: 16, seed: 3)
        func build() throws -> [UInt8] {
            let index = try HNSWIndex(dimension: 16, metric: .cosine, parameters: HNSWParameters(seed: 42, buildThreads: 1))
            try index.add(data, ids: Self.denseIds(2000))
            return HNSWCodec.encode(index)
        }
        #expect(try build() == build())
    }

    @Test func smallAndEdgeCases() throws {
        let index = try HNSWIndex(dimension: 3, metric: .l2)
        #expect(try index.search([1, 2, 3], k: 5).isEmpty)
        try index.add(Matrix(dimension: 3, rows: [[0, 0, 0]]), ids: [42])
        #expect(try index.search([1, 1, 1], k: 5).map(\.id) == [42])
        try index.add(Matrix(dimension: 3, rows: [[1, 1, 1], [2, 2, 2]]), ids: [-1, 7])
        #expect(try index.search([1.9, 2, 2], k: 5).map(\.id) == [7, -1, 42])
        #expect(try index.search([1, 1, 1], k: 0).isEmpty)
        #expect(throws: IndexError.self) { try index.search([1, 1], k: 1) }
        #expect(throws: IndexError.self) { try index.search([1, 1, 1], k: -1) }
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 3, rows: [[1, 1, 1]]), ids: [7]) }
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 3, rows: [[1, 1, 1], [2, 2, 2]]), ids: [8, 8]) }
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 2, rows: [[1, 1]]), ids: [9]) }
        #expect(index.count == 3)
        #expect(throws: IndexError.self) { try HNSWIndex(dimension: 3, metric: .l2, parameters: HNSWParameters(m: 1)) }
    }

    /// Concurrent searches on one index agree with serial ones.
    @Test func concurrentSearchesAgree() async throws {
        let data = try TestData.bigann.get()
        let index = try HNSWIndex(dimension: 128, metric: .l2)
        try index.add(data.base, ids: Self.denseIds(data.base.rows))
        let serial = try (0..<data.queries.rows).map { try index.search(data.queries[row: $0], k: 10) }
        let queries = data.queries
        let parallel = try await withThrowingTaskGroup(of: (Int, [Neighbor]).self) { group in
            for i in 0..<queries.rows {
                group.addTask { (i, try index.search(queries[row: i], k: 10)) }
            }
            var out = [[Neighbor]](repeating: [], count: queries.rows)
            for try await (i, r) in group { out[i] = r }
            return out
        }
        #expect(parallel == serial)
    }
}

/// A node with no layer-0 link pointing at it cannot be found by any search; the repair links it.
struct HNSWReachabilityTests {
    @Test func unreachableNodesAreLinkedAgain() throws {
        var rng = SplitMix64(seed: 12)
        let n = 600, d = 8
        let data = Matrix(dimension: d, storage: (0..<(n * d)).map { _ in Float.random(in: -1...1, using: &rng) })
        let index = try HNSWIndex(dimension: d, metric: .l2, parameters: HNSWParameters(m: 8, efConstruction: 64, efSearch: 64))
        try index.add(data, ids: (0..<n).map { Int64($0) })
        // Even a fresh graph can leave nodes without in-links (4 of these 600 at M 8); once linked, none.
        let fresh = index.linkUnreachableNodes()
        print("unreachable nodes in a fresh graph of \(n): \(fresh)")
        #expect(index.linkUnreachableNodes() == 0)
        // Cut every layer-0 link to a node of layer 0 (not the entry point).
        let g = index.graph
        let victim = try #require((0..<n).first { g.levels[$0] == 0 && UInt32($0) != index.entryPoint })
        for s in 0..<n {
            let list = g.links(UInt32(s), 0)
            let c = Int(list[0])
            var kept: [UInt32] = []
            if c > 0 { for t in 1...c where list[t] != UInt32(victim) { kept.append(list[t]) } }
            for (i, v) in kept.enumerated() { list[i + 1] = v }
            list[0] = UInt32(kept.count)
        }
        let query = Matrix(dimension: d, storage: Array(data[row: victim]))
        #expect(try index.search(query, k: 1, ef: n, allow: nil)[0].first?.id != Int64(victim), "the cut node is unreachable")
        #expect(index.linkUnreachableNodes() >= 1)
        #expect(try index.search(query, k: 1, ef: n, allow: nil)[0].first?.id == Int64(victim))
        #expect(index.linkUnreachableNodes() == 0)
    }
}
