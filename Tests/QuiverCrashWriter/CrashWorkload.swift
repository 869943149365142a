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

/// The crash-point sweep's workload: a fixed list of operations that exercises every
/// durability-relevant step (log appends and fsyncs, LMDB commits, sealing, merging, a payload index,
/// a checkpoint that truncates the log, an IVF-PQ codebook trained, its segments sealed, converted
/// from HNSW and merged, and a second collection whose HNSW segments are sq8, sealed twice and merged). Deterministic, with no background maintenance (the segment
/// size is too large to trigger it; sealing and merging run through `compact`), so that the same
/// crash-point number always lands on the same step.
public enum SweepWorkload {
    public static let collection = "sweep"
    /// The sq8 collection (ids `q…`); the oracle checks its documents together with the first's.
    public static let sq8Collection = "sweep8"
    public static let dimension = 8

    public enum Operation: Sendable {
        case create
        case upsert([Document])
        case delete([String])
        case compact
        case index
        case checkpoint
        case createSQ8
        case upsertSQ8([Document])
        case compactSQ8
    }

    static func docs(_ batch: Int, _ ids: [Int], prefix: String = "s") -> [Document] {
        var rng = SplitMix64(seed: UInt64(batch) &* 7919)
        return ids.map { k in
            Document(id: "\(prefix)\(k)", text: "sweep document \(k) of batch \(batch) " + String(repeating: "word\(k % 5) ", count: 40 * (k % 3)),
                     metadata: ["k": .int(Int64(k)), "batch": .int(Int64(batch))],
                     vector: (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) })
        }
    }

    public static let operations: [Operation] = [
        .create,
        .upsert(docs(1, Array(0..<6))),
        .upsert(docs(2, [6, 7, 8])),
        .compact,
        .delete(["s1", "s7"]),
        .upsert(docs(3, [2, 9, 10, 11])),
        .index,
        .compact,
        .upsert(docs(4, [12, 13])),
        .delete(["s9", "s12", "s0"]),
        .compact,
        .checkpoint,
        .upsert(docs(5, [0, 14])),
        // Enough vectors to train an IVF-PQ codebook: this compaction trains it, seals the mutable
        // segment as IVF-PQ and rebuilds the HNSW segments sealed before (the collection is `ivfpq`),
        // the last one merges on the same codebook.
        .upsert(bulk(6, count: 1_000)),
        .compact,
        .delete(["b1", "b2", "s14"]),
        .upsert(docs(7, [3, 15])),
        .compact,
        // sq8: a seal trains the ranges and writes the codes and the cold float32 section; the second
        // seal and the merge (retrained ranges) rewrite them.
        .createSQ8,
        .upsertSQ8(docs(8, Array(0..<40), prefix: "q")),
        .compactSQ8,
        .upsertSQ8(docs(9, Array(30..<60), prefix: "q")),
        .compactSQ8,
    ]

    /// `count` documents `b0`, `b1`, ... with short texts.
    static func bulk(_ batch: Int, count: Int) -> [Document] {
        var rng = SplitMix64(seed: UInt64(batch) &* 7919)
        return (0..<count).map { k in
            Document(id: "b\(k)", text: "bulk \(k % 10)", metadata: ["k": .int(Int64(100 + k % 50))],
                     vector: (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) })
        }
    }

    /// The documents after the first `count` operations.
    public static func state(after count: Int) -> [String: Document] {
        var state: [String: Document] = [:]
        for op in operations.prefix(count) {
            switch op {
            case .upsert(let d), .upsertSQ8(let d): for x in d { state[x.id] = x }
            case .delete(let ids): for id in ids { state[id] = nil }
            default: break
            }
        }
        return state
    }

    /// Whether operation `i` changes the documents or the collection (the rest only reorganize).
    public static func changesDocuments(_ i: Int) -> Bool {
        switch operations[i] {
        case .create, .upsert, .delete, .createSQ8, .upsertSQ8: return true
        case .compact, .index, .checkpoint, .compactSQ8: return false
        }
    }

    /// The documents after the operations whose indices are in `applied` (in order).
    public static func state(applying applied: Set<Int>) -> [String: Document] {
        var state: [String: Document] = [:]
        for (i, op) in operations.enumerated() where applied.contains(i) {
            switch op {
            case .upsert(let d), .upsertSQ8(let d): for x in d { state[x.id] = x }
            case .delete(let ids): for id in ids { state[id] = nil }
            default: break
            }
        }
        return state
    }

    /// Runs operation `i` on `db`.
    public static func perform(_ i: Int, on db: Database) throws {
        switch operations[i] {
        case .create:
            try db.createCollection(collection, dimension: dimension,
                                    options: CollectionOptions(index: IndexSettings(kind: .ivfpq, segmentSize: 1_000_000, pqBytes: 2)))
        case .upsert(let d): try db.collection(collection).upsert(d)
        case .delete(let ids): try db.collection(collection).delete(ids: ids)
        case .compact: try db.compact(collection)
        case .index: try db.collection(collection).createPayloadIndex("k", type: .integer)
        case .checkpoint: try db.checkpoint()
        case .createSQ8:
            try db.createCollection(sq8Collection, dimension: dimension,
                                    options: CollectionOptions(index: IndexSettings(kind: .hnsw, segmentSize: 1_000_000, quantization: .sq8)))
        case .upsertSQ8(let d): try db.collection(sq8Collection).upsert(d)
        case .compactSQ8: try db.compact(sq8Collection)
        }
    }

    /// Runs the workload on `db`, calling `acknowledged(i)` after operation i returns.
    public static func run(_ db: Database, acknowledged: (Int) -> Void) throws {
        for i in operations.indices {
            try perform(i, on: db)
            acknowledged(i)
        }
    }
}
