import Foundation
import Testing
import QuiverCore
import QuiverIndex
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

/// Collections whose sealed HNSW segments are sq8 (`IndexSettings.quantization`), and collections on
/// the int8 encoder, through the segment lifecycle: the interleaving property tests of SegmentTests,
/// with the quantization's recall bound at the default efSearch, the settings' checks, and the sealed
/// files' kind and memory.
struct QuantizedCollectionTests {
    static let sq8 = CollectionOptions(index: IndexSettings(segmentSize: 40, maxSegmentVectors: 10_000, rewriteDeletedShare: 0.3,
                                                            quantization: .sq8))

    /// With efSearch above every segment's size, an sq8 search re-scores every reachable node with its
    /// float32 vector, so it equals the oracle exactly; at the default efSearch its recall stays >= 0.95.
    @Test(arguments: [QuiverCore.Metric.cosine, .l2, .dot])
    func sq8EqualsTheOracleUnderRandomInterleavings(metric: QuiverCore.Metric) throws {
        try SegmentTests.interleavings(metric: metric, options: Self.sq8, seed: 2025, dimension: 8, recallBound: 0.95) { id, rng in
            Document(id: id, vector: randomVector(8, &rng))
        }
    }

    static let words = ("river mountain quantum protein market election violin harbor glacier neuron algebra "
        + "poetry engine volcano orchard satellite enzyme theatre desert comet").split(separator: " ").map(String.init)

    /// The int8 encoder's collection, with sq8 segments too: texts embedded at write time; the same
    /// property holds.
    @Test func int8EncoderCollectionEqualsTheOracle() throws {
        for options in [SegmentTests.small, Self.sq8] {
            try SegmentTests.interleavings(metric: .cosine, options: options, seed: 7, dimension: 384,
                                           encoder: "all-MiniLM-L6-v2:int8", steps: 40, recallBound: 0.95) { id, rng in
                let n = Int.random(in: 3...8, using: &rng)
                return Document(id: id, text: (0..<n).map { _ in Self.words[Int.random(in: 0..<Self.words.count, using: &rng)] }.joined(separator: " "))
            }
        }
    }

    /// Sealed segments are sq8 files, kept so by compaction, and report only their hot memory.
    @Test func sealedSegmentsAreSQ8() throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(state: 3)
        let db = try Database(path: dir.path)
        let c = try db.createCollection("q", dimension: 64, metric: .l2, options: CollectionOptions(index: IndexSettings(segmentSize: 300, quantization: .sq8)))
        for _ in 0..<4 { try c.insert((0..<300).map { _ in Document(id: UUID().uuidString, vector: randomVector(64, &rng)) }) }
        db.waitForMaintenance()
        try db.compact("q")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/segments").flatMap {
            try FileManager.default.contentsOfDirectory(atPath: dir.path + "/segments/" + $0)
        }
        #expect(!files.isEmpty && files.allSatisfy { $0.hasSuffix(".sq8") }, "\(files)")
        let stats = try db.stats().collections[0].index!
        let hnsw = stats.byKind.first { $0.kind == .hnsw }!
        // 64 codes + 66 bytes of 16-bit links (segments under 65,536 vectors) + 13 of side arrays and the
        // upper layers' share: below the 209 that 32-bit links would take, far below the 256 bytes of
        // the float32 vector alone.
        #expect(hnsw.bytesPerVector < 170, "\(hnsw.bytesPerVector)")
        #expect(try db.stats().collections[0].index!.quantization == .sq8 && hnsw.sq8Segments == hnsw.segments && hnsw.segments > 0)
        #expect(try db.verify().ok)
        db.close()
        // `quiver stats` names the quantization of the HNSW segments, and gives it with --json.
        let cli = CLI(db: dir.path)
        let table = try cli.run(["stats"])
        #expect(table.status == 0 && table.stdout.contains("hnsw sq8"), "\(table.stdout)")
        let json = try cli.run(["stats", "--json"])
        #expect(json.stdout.contains("\"quantization\" : \"sq8\"") && json.stdout.contains("\"sq8Segments\" : \(hnsw.segments)"), "\(json.stdout)")
    }

    /// quantization is refused where it means nothing, and old catalogs decode to none.
    @Test func settingsAreChecked() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        for kind in [IndexKind.ivfpq, .flat, .auto] {
            #expect(throws: QuiverError.self) {
                try db.createCollection("bad", dimension: 8, options: CollectionOptions(index: IndexSettings(kind: kind, quantization: .sq8)))
            }
        }
        let old = #"{"m":16,"efConstruction":200,"efSearch":64}"#
        #expect(try JSONDecoder().decode(IndexSettings.self, from: Data(old.utf8)).quantization == Quantization.none)
        let round = try JSONDecoder().decode(IndexSettings.self, from: JSONEncoder().encode(IndexSettings(quantization: .sq8)))
        #expect(round.quantization == .sq8)
    }

    /// `quiver create --quantization sq8` stores the setting; other values and other kinds are refused
    /// with a usage error naming the option.
    @Test func theCLICreatesSQ8Collections() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        let created = try cli.run(["create", "edge", "--dimension", "8", "--quantization", "sq8"])
        #expect(created.status == 0, "\(created.stderr)")
        for bad in [["--quantization", "sq4"], ["--index", "ivfpq", "--quantization", "sq8"], ["--index", "flat", "--quantization", "sq8"]] {
            let refused = try cli.run(["create", "x", "--dimension", "8"] + bad)
            #expect(refused.status == 2 && refused.stderr.contains("--quantization"), "\(bad): \(refused.stderr)")
        }
        let help = try cli.run(["create", "--help"])
        #expect(help.stdout.contains("--quantization"))
        let db = try Database(path: dir.path + "/db")
        #expect(try db.collection("edge").info.index?.quantization == .sq8)
    }
}
