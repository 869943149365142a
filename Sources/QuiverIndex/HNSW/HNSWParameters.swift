import QuiverCore
/// The build and search parameters of an `HNSWIndex` (Malkov & Yashunin's names).
///
/// Defaults (M 16, efConstruction 200, efSearch 64) reach recall@10 >= 0.98 on bigann10k and >= 0.95 on
/// 384-d text embeddings (WordNet glosses, all-MiniLM-L6-v2); see docs/benchmarks.md.
/// A plain value (Sendable): safe to share and copy across threads.
public struct HNSWParameters: Sendable, Equatable {
    /// Links per node on the upper layers; layer 0 keeps `2 * m` (`m0`). Range 2...255.
    public var m: Int
    /// Size of the dynamic candidate list while inserting (quality of the graph vs build time).
    public var efConstruction: Int
    /// Default size of the dynamic candidate list while searching (recall vs QPS); a search uses
    /// `max(efSearch, k)`.
    public var efSearch: Int
    /// Seed of the level generator: a build on one thread with the same seed, parameters and input
    /// gives the same graph, byte for byte.
    public var seed: UInt64
    /// Threads `add` uses to link a batch: 0 = one per core, 1 = the deterministic serial build.
    public var buildThreads: Int

    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 0x5155_4956_4552, buildThreads: Int = 0) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
        self.buildThreads = buildThreads
    }

    /// Links per node on layer 0.
    public var m0: Int { 2 * m }

    func validate() throws {
        guard (2...255).contains(m) else { throw IndexError(.invalidParameter, "M must be in 2...255, got \(m)") }
        guard efConstruction >= 1, efConstruction <= 1 << 20 else {
            throw IndexError(.invalidParameter, "efConstruction must be in 1...2^20, got \(efConstruction)")
        }
        guard efSearch >= 1, efSearch <= 1 << 20 else { throw IndexError(.invalidParameter, "efSearch must be in 1...2^20, got \(efSearch)") }
        guard buildThreads >= 0 else { throw IndexError(.invalidParameter, "buildThreads must not be negative") }
    }
}

/// The level generator is QuiverCore's SplitMix64: its whole state is one word, so the codec can
/// store it and a loaded index continues the same level sequence.
extension SplitMix64 {
    init(state: UInt64) { self.init(seed: state) }

    /// A uniform double in (0, 1]: never 0, so -ln(u) is finite.
    mutating func nextUnitInterval() -> Double {
        Double((next() >> 11) + 1) * 0x1.0p-53
    }
}
