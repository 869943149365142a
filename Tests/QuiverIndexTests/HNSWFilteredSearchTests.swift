import QuiverCore
import Testing
@testable import QuiverIndex

/// Filtered HNSW search (`FilteredSearch`): every strategy against the flat oracle, on filters that are
/// independent of the vectors and on filters that follow them. Serialized: the tests force strategies
/// on one shared index (`filteredSearchOverride` is set only while no search runs).
@Suite(.serialized)
struct HNSWFilteredSearchTests {
    static let n = 12_000, nq = 100, d = 32

    /// Clustered base vectors and queries drawn from the same clusters, with a built index and the oracle.
    struct Fixture {
        let base: Matrix
        let queries: Matrix
        let index: HNSWIndex
        let flat: FlatIndex
    }

    static let fixture: Result<Fixture, Error> = Result {
        let all = TestData.clustered(n: n + nq, dimension: d, clusters: 48, seed: 11)
        let base = Matrix(dimension: d, storage: Array(all.storage[0..<(n * d)]))
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        // The serial build: one graph, whatever the machine, so the recall figures are reproducible.
        let index = try HNSWIndex(dimension: d, metric: .l2, parameters: HNSWParameters(buildThreads: 1))
        try index.add(base, ids: HNSWIndexTests.denseIds(n))
        let flat = try FlatIndex(dimension: d, metric: .l2)
        try flat.add(base, ids: HNSWIndexTests.denseIds(n))
        return Fixture(base: base, queries: queries, index: index, flat: flat)
    }

    /// Ids whose multiplicative hash falls below `fraction`: a filter independent of the vectors.
    static func independent(_ fraction: Double) -> Bitset {
        var bits = Bitset(capacity: n)
        for i in 0..<n where Double((UInt64(i) &* 2_654_435_761) % (1 << 32)) < fraction * Double(1 << 32) { bits.insert(i) }
        return bits
    }

    /// The `count` base vectors nearest to base vector `anchor`: a region of the space, as a filter on a
    /// field correlated with the embeddings (a topic, a language) selects.
    static func region(_ f: Fixture, around anchor: Int, count: Int) throws -> Bitset {
        var bits = Bitset(capacity: n)
        for hit in try f.flat.search(f.base[row: anchor], k: count) { bits.insert(Int(hit.id)) }
        return bits
    }

    /// Searches with `strategy` forced (nil = the index's choice); checks that every query got
    /// min(k, allowed) allowed results and returns recall@k against the oracle.
    static func check(_ f: Fixture, _ bits: Bitset, _ strategy: FilteredSearch?, k: Int = 10) throws -> Double {
        f.index.filteredSearchOverride = strategy
        defer { f.index.filteredSearchOverride = nil }
        let allow = AllowFilter.bitset(bits)
        let found = try f.index.search(f.queries, k: k, allow: allow)
        let want = min(k, bits.count)
        for r in found {
            #expect(r.count == want)
            #expect(r.allSatisfy { bits.contains(Int($0.id)) })
        }
        return TestData.recall(found, try HNSWIndexTests.exactTopK(f.flat, f.queries, k: k, allow: allow), k: k)
    }

    /// ACORN keeps recall where the allowed subgraph alone is sparse: 5% and 10% of the nodes,
    /// scattered (below about 3% its recall falls off, and the planner scans instead).
    @Test(arguments: [0.05, 0.1])
    func acornRecallAtLowSelectivity(fraction: Double) throws {
        let f = try Self.fixture.get()
        let bits = Self.independent(fraction)
        let acorn = try Self.check(f, bits, .acorn)
        let chosen = try Self.check(f, bits, nil)
        print("independent \(fraction): acorn recall \(acorn), chosen (\(f.index.filteredSearch(allowed: bits.count))) \(chosen)")
        #expect(acorn >= 0.95)
        #expect(chosen >= 0.95)
    }

    /// A filter that selects a region of the space (here 6% of the points, around one point), with
    /// queries from every cluster: most queries lie far from every allowed node, the case where a walk
    /// restricted to allowed nodes must still get from the query's neighbourhood to the region.
    @Test func correlatedFilterOnClusteredData() throws {
        let f = try Self.fixture.get()
        for anchor in [0, 777] {
            let bits = try Self.region(f, around: anchor, count: Self.n * 6 / 100)
            for strategy in [FilteredSearch.acorn, .graph, nil] {
                let recall = try Self.check(f, bits, strategy)
                print("region around \(anchor), \(strategy?.rawValue ?? "chosen"): recall \(recall)")
                #expect(recall >= 0.95)
            }
        }
    }

    /// Every strategy returns min(k, allowed live) results, all allowed and live, from a filter of none
    /// to a filter of many, with tombstones among the allowed; with at most k allowed, exactly those.
    @Test func kResultsWheneverKMatch() throws {
        let data = TestData.clustered(n: 3000, dimension: 16, seed: 5)
        let index = try HNSWIndex(dimension: 16, metric: .cosine)
        try index.add(data, ids: HNSWIndexTests.denseIds(3000))
        var deleted = Set<Int>()
        for i in stride(from: 0, to: 3000, by: 7) {
            index.markDeleted(Int64(i))
            deleted.insert(i)
        }
        let queries = TestData.clustered(n: 20, dimension: 16, seed: 6)
        for size in [0, 3, 10, 11, 12, 40, 300, 1500] {
            var bits = Bitset(capacity: 3000)
            var i = 1
            while bits.count < size {
                bits.insert(i)
                i = (i + 1_237) % 3000
            }
            let live = (0..<3000).filter { bits.contains($0) && !deleted.contains($0) }
            for strategy in FilteredSearch.allCases {
                index.filteredSearchOverride = strategy
                for row in 0..<queries.rows {
                    let r = try index.search(queries[row: row], k: 10, allow: .bitset(bits))
                    #expect(r.count == min(10, live.count), "\(strategy) with \(size) allowed")
                    #expect(r.allSatisfy { bits.contains(Int($0.id)) && !deleted.contains(Int($0.id)) })
                    if live.count <= 10 { #expect(Set(r.map(\.id)) == Set(live.map(Int64.init))) }
                }
            }
            index.filteredSearchOverride = nil
        }
    }

    /// The planner's thresholds: a scan up to 2 * ef * M0 allowed, the plain walk from 30% of the live
    /// vectors, ACORN in between, with a list that grows (at most twice) as the filter narrows. (At
    /// ef 64 and M0 32 the scan reaches 4,096 allowed: in an index of 12,000, beyond the 30% from which
    /// the plain walk is chosen, so ACORN starts to be chosen in larger indexes or at smaller ef.)
    @Test func strategyByAllowedCount() throws {
        let f = try Self.fixture.get()
        let index = f.index
        let scanLimit = 2 * 16 * index.m0
        #expect(index.filteredSearch(allowed: 0, ef: 16) == .scan)
        #expect(index.filteredSearch(allowed: scanLimit, ef: 16) == .scan)
        #expect(index.filteredSearch(allowed: scanLimit + 1, ef: 16) == .acorn)
        #expect(index.filteredSearch(allowed: Self.n * 3 / 10 - 1, ef: 16) == .acorn)
        #expect(index.filteredSearch(allowed: Self.n * 3 / 10, ef: 16) == .graph)
        #expect(index.filteredSearch(allowed: Self.n, ef: 16) == .graph)
        #expect(index.filteredSearch(allowed: 4_096) == .scan)
        #expect(index.filteredSearch(allowed: 4_097) == .graph)
        #expect(index.acornListSize(64, allowed: Self.n / 100) == 128)
        #expect(index.acornListSize(64, allowed: Self.n / 5) == 64)
        let mid = index.acornListSize(64, allowed: Self.n / 10)
        #expect(mid > 64 && mid < 128)
    }
}
