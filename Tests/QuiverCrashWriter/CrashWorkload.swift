import Quiver
import QuiverCore

/// The deterministic workload of the kill -9 harness: batch `n` of seed `s` is always the same,
/// so the test can rebuild what the killed writer acknowledged from the batch numbers alone.
public struct CrashWorkload: Sendable {
    public static let collection = "crash"
    public static let dimension = 8
    public static let idPool = 60

    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// One batch: documents to upsert, or ids to delete.
    public enum Batch: Sendable, Equatable {
        case upsert([Document])
        case delete([String])
    }

    public func batch(_ n: Int) -> Batch {
        var rng = SplitMix64(seed: seed &* 31 &+ UInt64(n))
        if n % 5 == 4 {
            let count = Int.random(in: 1...3, using: &rng)
            return .delete((0..<count).map { _ in "doc-\(Int.random(in: 0..<CrashWorkload.idPool, using: &rng))" })
        }
        let count = Int.random(in: 1...12, using: &rng)
        var ids = Set<Int>()
        while ids.count < count { ids.insert(Int.random(in: 0..<CrashWorkload.idPool, using: &rng)) }
        return .upsert(ids.sorted().map { k in
            let words = Int.random(in: 0...400, using: &rng)  // long texts pass the compression threshold
            let text = (0..<words).map { "w\(($0 * 7 + n) % 97)" }.joined(separator: " ")
            let vector = (0..<CrashWorkload.dimension).map { _ in Float.random(in: -1...1, using: &rng) }
            return Document(id: "doc-\(k)", text: text, metadata: ["batch": .int(Int64(n)), "k": .int(Int64(k))], vector: vector)
        })
    }

    /// The documents present after batches 0..<count, by id.
    public func state(after count: Int) -> [String: Document] {
        var state: [String: Document] = [:]
        for n in 0..<count { apply(batch(n), to: &state) }
        return state
    }

    public func apply(_ batch: Batch, to state: inout [String: Document]) {
        switch batch {
        case .upsert(let docs): for d in docs { state[d.id] = d }
        case .delete(let ids): for id in ids { state[id] = nil }
        }
    }
}
