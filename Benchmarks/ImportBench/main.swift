// Import throughput end to end, with where the time goes (encoding, log, fsync, LMDB, indexing):
// 1. SciFact's corpus as JSONL text (title + " " + text), embedded on insert by the built-in encoder,
//    next to the bare encoder's throughput on the same texts (the target: import >= 90%).
// 2. A file of >= 100,000 vectors (the WordNet-gloss embeddings when tools/build-wordnet-data ran,
//    else 120,000 random 128-d vectors), including background sealing until it is done.
// Usage: swift run -c release ImportBench [--data ../shared/data/scifact] [--vectors FILE.fvecs]
//                                          [--limit N] [--skip-text] [--skip-vectors]
import Foundation
import Quiver

/// Prints a line unbuffered, so that progress shows (and survives a crash) when piped to a file.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
let data = option("--data") ?? "../shared/data/scifact"
let limit = option("--limit").flatMap(Int.init) ?? Int.max
let scratch = NSTemporaryDirectory() + "/quiver-importbench-\(getpid())"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }

func shares(_ t: WriteTimings, total: Double) -> String {
    func pct(_ x: Double) -> String { String(format: "%.1f%%", 100 * x / total) }
    return "encoding \(pct(t.encodingSeconds)), log \(pct(t.logSeconds)), fsync \(pct(t.fsyncSeconds)), LMDB \(pct(t.lmdbSeconds)), indexing \(pct(t.indexingSeconds))"
}
var summary: [String: Any] = [:]

if !args.contains("--skip-text") {
    // The texts, as the importer will read them.
    var texts: [(String, String)] = []
    for line in try String(contentsOfFile: data + "/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(limit) {
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        texts.append((o["_id"] as! String, (o["title"] as! String) + " " + (o["text"] as! String)))
    }
    var jsonl = Data()
    for (id, text) in texts {
        jsonl.append(try JSONSerialization.data(withJSONObject: ["id": id, "text": text]))
        jsonl.append(0x0A)
    }
    try jsonl.write(to: URL(fileURLWithPath: scratch + "/corpus.jsonl"))

    // The bare encoder on the same texts, in the importer's batch size.
    let encoder = try EncoderRegistry.shared.encoder(named: EncoderRegistry.defaultEncoderName)
    let batch = 256
    var t = Date()
    var i = 0
    while i < texts.count {
        _ = try encoder.encode(documents: texts[i..<min(i + batch, texts.count)].map(\.1))
        i += batch
    }
    let bare = Double(texts.count) / Date().timeIntervalSince(t)

    let db = try Database(path: scratch + "/text.db")
    let c = try db.createCollection("scifact", encoder: EncoderRegistry.defaultEncoderName)
    var options = ImportOptions()
    options.batchSize = batch
    db.resetTimings()
    t = Date()
    let report = try c.importFile(scratch + "/corpus.jsonl", options: options)
    db.waitForMaintenance()
    let seconds = Date().timeIntervalSince(t)
    let rate = Double(report.imported) / seconds
    say(String(format: "text import: %d documents in %.1f s = %.1f docs/s; bare encoder %.1f texts/s; import/encoder = %.3f",
                 report.imported, seconds, rate, bare, rate / bare))
    say("  time: " + shares(db.timings, total: seconds))
    summary["text"] = ["documents": report.imported, "docs_per_second": rate, "bare_encoder_per_second": bare, "ratio": rate / bare,
                       "encoding_s": db.timings.encodingSeconds, "log_s": db.timings.logSeconds, "fsync_s": db.timings.fsyncSeconds,
                       "lmdb_s": db.timings.lmdbSeconds, "indexing_s": db.timings.indexingSeconds, "total_s": seconds]
    db.close()
}

if !args.contains("--skip-vectors") {
    var path = option("--vectors") ?? "Benchmarks/data/wordnet.fvecs"
    var dimension = 384
    if !FileManager.default.fileExists(atPath: path) {
        // 120,000 random 128-d vectors.
        path = scratch + "/random.fvecs"
        dimension = 128
        var out = Data(capacity: 120_000 * (4 + 4 * dimension))
        var state: UInt64 = 1
        for _ in 0..<120_000 {
            withUnsafeBytes(of: Int32(dimension).littleEndian) { out.append(contentsOf: $0) }
            for _ in 0..<dimension {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let f = Float(state >> 40) / Float(1 << 24)
                withUnsafeBytes(of: f.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        }
        try out.write(to: URL(fileURLWithPath: path))
    } else {
        let h = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).readData(ofLength: 4)
        dimension = Int(h.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
    }
    let db = try Database(path: scratch + "/vectors.db")
    let c = try db.createCollection("vectors", dimension: dimension, metric: .cosine)
    var options = ImportOptions()
    options.batchSize = 10_000
    db.resetTimings()
    let t = Date()
    let report = try c.importFile(path, options: options)
    let written = Date().timeIntervalSince(t)
    db.waitForMaintenance()
    let seconds = Date().timeIntervalSince(t)
    say(String(format: "vector import: %d %d-d vectors from %@: written in %.1f s (%.0f rows/s), indexed (sealed) after %.1f s (%.0f rows/s)",
                 report.imported, dimension, path, written, Double(report.imported) / written, seconds, Double(report.imported) / seconds))
    say("  time: " + shares(db.timings, total: seconds) + " (indexing runs in the background, beside the writes)")
    summary["vectors"] = ["rows": report.imported, "dimension": dimension, "written_rows_per_second": Double(report.imported) / written,
                          "indexed_rows_per_second": Double(report.imported) / seconds, "log_s": db.timings.logSeconds,
                          "fsync_s": db.timings.fsyncSeconds, "lmdb_s": db.timings.lmdbSeconds, "indexing_s": db.timings.indexingSeconds, "total_s": seconds]
    db.close()
}
say(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
