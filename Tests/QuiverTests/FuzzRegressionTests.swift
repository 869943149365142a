import Foundation
import Testing
import QuiverCore
@testable import QuiverIndex
import QuiverStorage
import QuiverTestSupport
@_spi(Fuzzing) @testable import Quiver

/// The fuzzing of `tools/fuzz/` (docs/reliability.md, "Fuzzing") in the test suite.
///
/// Always: every input kept in `tools/fuzz/regressions/<target>/` (a crasher found by a fuzz target,
/// kept once fixed) goes through the same entry point as in the fuzzer, `FuzzHarness.run`; a
/// regression crashes the test process, as it crashed the fuzzer.
///
/// Opt-in, with QUIVER_FUZZ=1: runs `tools/fuzz-run` for every target, QUIVER_FUZZ_SECONDS each
/// (default 30), and fails if any target finds a crash.
///
/// On request, with QUIVER_FUZZ_WRITE_SEEDS=<directory>: writes the binary seed inputs that need the
/// real writers (a write-ahead log and its records, HNSW and IVF-PQ segment files) into
/// <directory>/<target>/; tools/fuzz/corpus/ holds their output.
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fuzzDirectory = root.appendingPathComponent("tools/fuzz")

    /// "target/file" for every kept regression input.
    static let regressions: [String] = {
        let base = fuzzDirectory.appendingPathComponent("regressions")
        var out: [String] = []
        for target in FuzzTarget.allCases {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(target.rawValue).path)) ?? []
            out += names.filter { !$0.hasPrefix(".") }.sorted().map { target.rawValue + "/" + $0 }
        }
        return out
    }()

    /// The tokenizer target's vocabulary: the installed model's when there is one, as in tools/fuzz-run.
    static var vocabulary: String {
        let env = ProcessInfo.processInfo.environment
        let models = env["QUIVER_MODELS"] ?? (NSHomeDirectory() + "/.local/share/quiver/models")
        let installed = models + "/all-MiniLM-L6-v2/vocab.txt"
        return FileManager.default.fileExists(atPath: installed) ? installed : fuzzDirectory.appendingPathComponent("tokenizer-vocab.txt").path
    }

    @Test func everyRegressionDirectoryNamesATarget() throws {
        let base = Self.fuzzDirectory.appendingPathComponent("regressions")
        for name in try FileManager.default.contentsOfDirectory(atPath: base.path) where !name.hasPrefix(".") {
            #expect(FuzzTarget(rawValue: name) != nil, "tools/fuzz/regressions/\(name) is not a fuzz target")
        }
        #expect(!Self.regressions.isEmpty)
    }

    @Test(arguments: FuzzRegressionTests.regressions)
    func regressionInputReplaysWithoutCrashing(_ name: String) throws {
        let target = try #require(FuzzTarget(rawValue: String(name.split(separator: "/")[0])))
        let bytes = try [UInt8](Data(contentsOf: Self.fuzzDirectory.appendingPathComponent("regressions/" + name)))
        let scratch = TemporaryDirectory()
        let harness = try FuzzHarness(scratch: scratch.path, vocabularyFile: target == .tokenizer ? Self.vocabulary : nil)
        harness.run(target, bytes)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["QUIVER_FUZZ"] == "1", "set QUIVER_FUZZ=1 to run the fuzz targets"))
    func fuzzTargetsFindNoCrash() throws {
        let seconds = ProcessInfo.processInfo.environment["QUIVER_FUZZ_SECONDS"] ?? "30"
        let process = Process()
        process.executableURL = Self.root.appendingPathComponent("tools/fuzz-run")
        process.arguments = ["--time", seconds]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "tools/fuzz-run reported a crash (see .build/fuzz/artifacts/)")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["QUIVER_FUZZ_WRITE_SEEDS"] != nil, "set QUIVER_FUZZ_WRITE_SEEDS=<dir> to write seeds"))
    func writeBinarySeeds() throws {
        let out = ProcessInfo.processInfo.environment["QUIVER_FUZZ_WRITE_SEEDS"]!
        func save(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) throws {
            try FileSystem.createDirectory(out + "/" + target.rawValue)
            try Data(bytes).write(to: URL(fileURLWithPath: out + "/" + target.rawValue + "/" + name))
        }

        // A write-ahead log with every record type. The harness gives collection n dimension n + 1.
        // The import must not checkpoint the log (it would leave the later records in a second file).
        let dir = TemporaryDirectory()
        var options = DatabaseOptions()
        options.checkpointAfterBulkWork = false
        let db = try Database(path: dir.path + "/db", options: options)
        let a = try db.createCollection("a", dimension: 2, metric: .l2)
        #expect(a.info.number == 1)
        try a.insert([Document(id: "x", text: "caf\u{E9}", metadata: ["year": 2021, "tags": ["p", "q"], "s": 0.5, "ok": true, "n": nil], vector: [1, 2]),
                      Document(id: "y", vector: [3, -4])])
        try a.upsert(Document(id: "x", metadata: ["year": 2022], vector: [0.5, 0.25]))
        try a.createPayloadIndex("year", type: .integer)
        _ = try a.delete(ids: ["y", "missing"])
        let lines = dir.path + "/rows.jsonl"
        try Data("{\"id\": \"i1\", \"vector\": [1, 1]}\n{\"id\": \"i2\", \"vector\": [2, 2]}\n".utf8).write(to: URL(fileURLWithPath: lines))
        _ = try a.importFile(lines)
        _ = try db.createCollection("b", dimension: 3)
        try db.dropCollection("b")
        let walFiles = try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/db")
            .filter { WALFormat.firstSequence(fromFileName: ($0 as NSString).lastPathComponent) != nil }.sorted()
        let log = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/db/" + #require(walFiles.first))))
        try save(.walReader, "log.wal", log)
        try save(.walReader, "torn-tail.wal", Array(log.dropLast(5)))
        var offset = WALFormat.fileHeaderSize
        var types = Set<UInt8>()
        while let (record, size) = WALFormat.decodeRecord(log, at: offset) {
            if types.insert(record.type).inserted { try save(.walReader, "record-type-\(record.type)", [record.type] + record.payload) }
            offset += size
        }
        #expect(types == [1, 2, 3, 4, 5, 6])
        db.close()

        // HNSW segments: cosine with dense ids, l2 with sparse ids and tombstones.
        var rng = SplitMix64(seed: 8)
        func vectors(_ n: Int, _ d: Int) -> Matrix {
            Matrix(dimension: d, rows: (0..<n).map { _ in (0..<d).map { _ in Float.random(in: -1...1, using: &rng) } })
        }
        let dense = try HNSWIndex(dimension: 4, metric: .cosine, parameters: HNSWParameters(m: 4, efConstruction: 16, buildThreads: 1))
        try dense.add(vectors(24, 4), ids: (0..<24).map { Int64($0) })
        try save(.segmentHNSW, "cosine-dense.hnsw", HNSWCodec.encode(dense))
        let sparse = try HNSWIndex(dimension: 3, metric: .l2, parameters: HNSWParameters(m: 2, efConstruction: 8, buildThreads: 1))
        try sparse.add(vectors(40, 3), ids: (0..<40).map { Int64($0 * 7 - 100) })
        _ = sparse.markDeleted(-100)
        _ = sparse.markDeleted(40 * 7 - 107)
        try save(.segmentHNSW, "l2-sparse-deleted.hnsw", HNSWCodec.encode(sparse))
        try save(.segmentHNSW, "empty.hnsw", HNSWCodec.encode(try HNSWIndex(dimension: 2, metric: .dot)))
        // sq8 segments: the same graphs quantized (min/max, and a quantile clip with tombstones), and an empty one,
        // with 16-bit links (their counts choose them); the dense graph also with 32-bit links. The corpus's
        // *-v1.sq8 files are kept as written by the build before 16-bit links (format version 1).
        try save(.segmentHNSW, "cosine-dense.sq8", SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: dense)))
        try save(.segmentHNSW, "cosine-dense-wide.sq8", SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: dense, training: .standard, linkWidth: 4)))
        try save(.segmentHNSW, "l2-sparse-deleted-clip.sq8", SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: sparse, training: .clip(0.05))))
        try save(.segmentHNSW, "empty.sq8", SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: try HNSWIndex(dimension: 2, metric: .dot))))

        // IVF-PQ segments.
        let parameters = IVFPQParameters(nlist: 2, subspaces: 2, nprobe: 2, rerank: 0, threads: 1)
        let ivf = try IVFPQIndex(dimension: 4, metric: .l2, parameters: parameters)
        try ivf.train(vectors(256, 4))
        try ivf.add(vectors(16, 4), ids: (0..<16).map { Int64($0 * 3) })
        _ = ivf.markDeleted(3)
        try save(.segmentIVFPQ, "l2.ivfpq", IVFPQCodec.encode(ivf))
        let trainedOnly = try IVFPQIndex(dimension: 2, metric: .cosine, parameters: IVFPQParameters(nlist: 1, subspaces: 1, nprobe: 1, rerank: 0, threads: 1))
        try trainedOnly.train(vectors(256, 2))
        try save(.segmentIVFPQ, "cosine-empty.ivfpq", IVFPQCodec.encode(trainedOnly))
    }
}
