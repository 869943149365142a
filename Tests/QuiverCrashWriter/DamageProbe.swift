import Foundation
import Quiver
import QuiverCore
import QuiverStorage

/// The damage sweep's database and its probe (Tests/QuiverTests/DamageSweepTests.swift).
///
/// `build` makes a small database with every kind of file: LMDB (`data.mdb`, `lock.mdb`), several
/// log files whose last record LMDB has not applied (an unreplayed tail), HNSW segment files
/// (collection `h`, 48-vector segments, a payload index) and an IVF-PQ segment file (collection
/// `q`, 1,100 vectors), plus a backup with its `BACKUP` manifest.
///
/// `probe` runs, in one process, everything a user could run on it and summarises each result as
/// a digest, so that the parent compares a damaged copy's summary with the undamaged one's. Two
/// phases on a database: `read-only` (a read-only open) then `writable` (a writable open, which
/// replays the log); each: get of every document, ids, count, index and exact searches of fixed
/// queries (and a filtered one), export, verify. On a backup, `restore` first, then both phases
/// on the restored database.
public enum DamageFixture {
    public static let dimension = 8
    public static let hnsw = "h"
    public static let ivfpq = "q"

    static func vector(_ rng: inout SplitMix64) -> [Float] { (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

    static func hnswDocs(_ range: Range<Int>, seed: UInt64) -> [Document] {
        var rng = SplitMix64(seed: seed)
        return range.map { i in
            Document(id: "h\(i)", text: i % 8 == 0 ? String(repeating: "long \(i % 7) ", count: 90) : i % 2 == 0 ? "doc \(i)" : nil,
                     metadata: ["k": .int(Int64(i % 10)), "tag": .string("t\(i % 3)")], vector: vector(&rng))
        }
    }

    static func ivfpqDocs(_ range: Range<Int>, seed: UInt64) -> [Document] {
        var rng = SplitMix64(seed: seed)
        return range.map { i in Document(id: "q\(i)", text: i % 100 == 0 ? "bulk \(i)" : nil, metadata: ["k": .int(Int64(i % 50))], vector: vector(&rng)) }
    }

    /// Log files of 16 KiB and no automatic checkpoint (nor one after compact), so that several
    /// log files stay.
    public static var options: DatabaseOptions {
        var o = DatabaseOptions(durability: .full)
        o.walFileSize = 16 << 10
        o.checkpointBytes = 1 << 30
        o.checkpointAfterBulkWork = false
        return o
    }

    /// Builds the database at `path` and its backup at `backup`.
    public static func build(at path: String, backup: String) throws {
        let db = try Database(path: path, options: options)
        let h = try db.createCollection(hnsw, dimension: dimension, metric: .l2,
                                        options: CollectionOptions(index: IndexSettings(kind: .hnsw, m: 8, efConstruction: 64, segmentSize: 1_000_000)))
        try h.createPayloadIndex("k", type: .integer)
        for b in 0..<4 {
            _ = try h.upsert(hnswDocs((b * 40)..<(b * 40 + 40), seed: UInt64(b + 1)))
            try db.compact(hnsw)
        }
        _ = try h.delete(ids: ["h3", "h50", "h121"])
        let q = try db.createCollection(ivfpq, dimension: dimension,
                                        options: CollectionOptions(index: IndexSettings(kind: .ivfpq, segmentSize: 1_000_000, pqBytes: 2)))
        for b in 0..<3 { _ = try q.upsert(ivfpqDocs((b * 400)..<(b * 400 + 400), seed: UInt64(100 + b))) }
        try db.compact(ivfpq)
        _ = try q.delete(ids: ["q7", "q800"])
        _ = try h.upsert(hnswDocs(160..<170, seed: 9))  // the mutable segment
        // A text that zstd cannot shrink below a page: a value on LMDB overflow pages.
        var rng = SplitMix64(seed: 4)
        let long = String((0..<12_000).map { _ in Character(Unicode.Scalar(UInt8.random(in: 33...126, using: &rng))) })
        _ = try h.upsert(Document(id: "h0", text: long, metadata: ["k": 0], vector: [Float](repeating: 0.25, count: dimension)))
        try db.backup(to: backup)
        db.close()
        // The unreplayed tail: one more write whose LMDB commit is then undone, as a crash after
        // the log's fsync and before LMDB's commit was durable leaves it (the write was never
        // acknowledged: with `full` durability that waits for both); the writable open replays it
        // from the log, or may drop it if the record is damaged.
        let lmdb = path + "/lmdb/data.mdb", saved = path + "/data.mdb.before-tail"
        try FileManager.default.copyItem(atPath: lmdb, toPath: saved)
        let again = try Database(path: path, options: options)
        _ = try again.collection(hnsw).upsert(hnswDocs(170..<173, seed: 10) + [Document(id: "h1", text: "replaced", vector: [Float](repeating: 0.5, count: dimension))])
        again.close()
        try FileSystem.remove(lmdb)
        try FileSystem.rename(saved, lmdb)
    }

    /// The ids `get` asks for: every id the database held at any point, so that a document that
    /// vanishes or appears shows.
    public static var probedIDs: [String: [String]] {
        [hnsw: (0..<175).map { "h\($0)" }, ivfpq: (0..<1_200).map { "q\($0)" }]
    }

    public static let queries: [[Float]] = {
        var rng = SplitMix64(seed: 77)
        return (0..<3).map { _ in vector(&rng) }
    }()

    /// The summary of one run: per phase, whether it opened, the digest or error of each
    /// operation, and verify's findings.
    public struct Summary: Codable, Equatable, Sendable {
        public struct Phase: Codable, Equatable, Sendable {
            public var name: String
            public var openError: String?
            /// Operation name -> digest of its result.
            public var results: [String: String] = [:]
            /// Operation name -> the error it threw.
            public var errors: [String: String] = [:]
            /// nil when verify threw (see `errors["verify"]`).
            public var verifyProblems: [String]?
        }
        public var phases: [Phase] = []
    }

    static func digest(bytes: some Sequence<UInt8>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    static func digest(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return digest(bytes: try encoder.encode(value))
    }

    /// Runs every operation on the database at `path`; `scratch` is a directory for exports.
    static func phase(_ name: String, path: String, readOnly: Bool, scratch: String) -> Summary.Phase {
        var out = Summary.Phase(name: name)
        let db: Database
        do {
            var o = options
            o.readOnly = readOnly
            o.createIfMissing = false
            db = try Database(path: path, options: o)
        } catch {
            out.openError = "\(error)"
            return out
        }
        defer { db.close() }
        func run(_ op: String, _ body: () throws -> String) {
            do { out.results[op] = try body() } catch { out.errors[op] = "\(error)" }
        }
        for (cname, ids) in probedIDs.sorted(by: { $0.key < $1.key }) {
            let c: Collection
            do { c = try db.collection(cname) } catch {
                out.errors["\(cname).collection"] = "\(error)"
                continue
            }
            run("\(cname).get") { try digest(try c.get(ids: ids)) }
            run("\(cname).ids") { try digest(try c.ids().sorted()) }
            run("\(cname).count") { String(try c.count()) }
            for (i, q) in queries.enumerated() {
                run("\(cname).search\(i)") { try digest(try c.search(vector: q, k: 10, options: SearchOptions(includeText: true, includeVector: true))) }
                run("\(cname).exact\(i)") { try digest(try c.search(vector: q, k: 10, options: SearchOptions(includeText: true, includeVector: true, exact: true))) }
            }
            run("\(cname).filtered") {
                try digest(try c.search(vector: queries[0], k: 10, options: SearchOptions(filter: try Filter(text: "k >= 3 and k <= 5"))))
            }
            run("\(cname).export") {
                let file = scratch + "/\(cname)-\(readOnly ? "ro" : "rw").jsonl"
                _ = try c.export(to: file, format: .jsonl)
                return digest(bytes: try Data(contentsOf: URL(fileURLWithPath: file)))
            }
        }
        do { out.verifyProblems = try db.verify().problems } catch { out.errors["verify"] = "\(error)" }
        return out
    }

    /// The probe of a database: the read-only phase, then the writable one.
    public static func probe(database path: String, scratch: String) -> Summary {
        Summary(phases: [phase("read-only", path: path, readOnly: true, scratch: scratch),
                         phase("writable", path: path, readOnly: false, scratch: scratch)])
    }

    /// The probe of a backup: restore it into `scratch`, then both phases on the restored database.
    public static func probe(backup: String, scratch: String) -> Summary {
        let restored = scratch + "/restored"
        do { try Database.restore(backup: backup, to: restored) } catch {
            return Summary(phases: [Summary.Phase(name: "restore", openError: "\(error)")])
        }
        return Summary(phases: [phase("restored, read-only", path: restored, readOnly: true, scratch: scratch),
                                phase("restored, writable", path: restored, readOnly: false, scratch: scratch)])
    }
}
