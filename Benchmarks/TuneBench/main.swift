// Query-tower tuning on SciFact through the whole engine (issue 16's acceptance figures).
//
// Usage: TuneBench [--data DIR] [--scratch DIR] [--epochs N] [--adapter linear|lowrank:R]
//   --data     the SciFact folder (default ../shared/data/scifact)
//   --scratch  where the corpus embeddings are cached and the database is built (default .scratch/tune)
//
// The corpus (5,183 abstracts, embedded once by the engine's encoder and cached) goes into a
// collection with BM25 full text. Then, in order: (1) label-free distillation from the 809 training
// claims' texts alone (teacher: the untuned engine's hybrid search), evaluated and set aside; (2)
// supervised tuning from the training claims' judgments (qrels_train.tsv) with fusion tuning.
// Every figure is nDCG@10 on the 300 judged test claims and on the "unseen" test claims (none of
// whose relevant documents is relevant to a training claim). Prints a table, then one JSON line.
import Foundation
import Quiver
import QuiverTuning

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
let data = try SciFactData(folder: option("--data") ?? "../shared/data/scifact")
let scratch = option("--scratch") ?? ".scratch/tune"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
let vectors = try cachedCorpusVectors(data, path: scratch + "/scifact-corpus.f32", scratch: scratch)
if args.contains("--sweep") { try sweep(data, corpusVectors: vectors, scratch: scratch); exit(0) }
let unseen = data.unseenTestClaims
let testIDs = data.testQrels.keys.sorted()
let unseenIDs = testIDs.filter { unseen.contains($0) }
print("corpus \(vectors.count) documents; test claims \(testIDs.count), unseen \(unseenIDs.count); training claims \(data.trainQrels.count)")

func stderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

// The collection, built afresh from the cached vectors (the engine embeds nothing here).
let dbPath = scratch + "/bench.db"
try? FileManager.default.removeItem(atPath: dbPath)
let db = try Database(path: dbPath, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
let c = try db.createCollection("scifact", encoder: "all-MiniLM-L6-v2")
for s in stride(from: 0, to: data.corpus.count, by: 512) {
    let part = (s..<min(s + 512, data.corpus.count)).map { Document(id: data.corpus[$0].id, text: data.corpus[$0].text, vector: vectors[$0]) }
    try c.insert(part)
}
try db.compact("scifact")

/// The test claims' query vectors, embedded once by the collection's encoder.
let testVectors = try testIDs.map { try c.embed(data.queries[$0]!) }

/// (whole set, unseen subset) nDCG@10 of a search configuration over the test claims. The exact
/// scan takes each claim's vector through the adapter as `search(text:)` does (`queryAdapter` is
/// the adapter it applies), without embedding the claim again; the others search the text.
func evaluate(_ mode: SearchMode, adapter: AdapterChoice, fusion: Fusion? = nil, exact: Bool = false) throws -> (Double, Double) {
    var whole = 0.0, subset = 0.0
    var options = SearchOptions()
    options.adapter = adapter
    options.exact = exact
    let dense = try c.queryAdapter(adapter)
    for (i, qid) in testIDs.enumerated() {
        let hits = mode == .dense && exact ? try c.search(vector: dense?.apply(testVectors[i]) ?? testVectors[i], k: 10, options: options)
            : try c.search(text: data.queries[qid]!, k: 10, mode: mode, fusion: fusion, depth: 100, options: options)
        let n = ndcg10(hits.map(\.id), relevant: data.testQrels[qid]!)
        whole += n
        if unseen.contains(qid) { subset += n }
    }
    return (whole / Double(testIDs.count), subset / Double(unseenIDs.count))
}

if let spec = option("--sweep-distill") {
    try sweepDistillation(c, data, corpusVectors: vectors, scratch: scratch, grid: try distillationGrid(spec))
    db.close()
    exit(0)
}

var rows: [(String, (Double, Double))] = []
var summary: [String: Any] = [:]
@MainActor func record(_ label: String, _ key: String, _ figures: (Double, Double)) {
    rows.append((label, figures))
    summary[key + "_all"] = figures.0
    summary[key + "_unseen"] = figures.1
    stderr(String(format: "%@: %.4f / %.4f\n", label, figures.0, figures.1))
}

record("untuned dense", "untuned_dense", try evaluate(.dense, adapter: .none))
// The exact scan too: HNSW's approximation moves the 104-claim subset by about 0.01 between builds.
record("untuned dense, exact scan", "untuned_dense_exact", try evaluate(.dense, adapter: .none, exact: true))
record("untuned hybrid (RRF k 60)", "untuned_hybrid", try evaluate(.hybrid, adapter: .none, fusion: .reciprocalRank(k: 60)))
// --hnsw-probe: supervised tuning and the HNSW recall rows only.
let probe = args.contains("--hnsw-probe")

var options = TuneOptions()
if let e = option("--epochs") { options.trainer.epochs = Int(e)! }
if let a = option("--adapter") { options.adapter = QueryAdapter.Kind(a)! }
func show(_ p: TuneProgress) {
    if let e = p.epoch {
        stderr(String(format: "\r%@ epoch %d/%d loss %.4f validation nDCG@10 %.4f (%.1f s)   ", p.phase, e.epoch, p.total, e.loss, e.validationNDCG, e.seconds))
    } else {
        stderr("\r\(p.phase) \(p.done)/\(p.total)   ")
    }
}

// (1) Label-free distillation from the training claims' texts alone.
let trainIDs = data.trainQueries.keys.sorted()
@MainActor func distillation() throws -> TuneReport {
    var distillOptions = TuneOptions.distillation
    distillOptions.trainer.epochs = options.trainer.epochs
    distillOptions.adapter = options.adapter
    distillOptions.name = "distilled"
    let distilled = try c.distill(queries: trainIDs.map { data.trainQueries[$0]! }, options: distillOptions, progress: show)
    stderr("\n")
    let distilledChoice: AdapterChoice = distilled.stored ? .named("distilled") : .none
    record("distilled dense (no labels)\(distilled.stored ? "" : ", not stored")", "distilled_dense", try evaluate(.dense, adapter: distilledChoice))
    record("distilled dense, exact scan", "distilled_dense_exact", try evaluate(.dense, adapter: distilledChoice, exact: true))
    record("distilled hybrid (RRF k 60)", "distilled_hybrid", try evaluate(.hybrid, adapter: distilledChoice, fusion: .reciprocalRank(k: 60)))
    summary["distill_seconds"] = distilled.trainingSeconds
    summary["distill_validation"] = [distilled.validationBefore, distilled.validationAfter]
    try c.setTuningDefaults(adapter: nil)
    return distilled
}
let distilledReport = probe ? nil : try distillation()

// (2) Supervised: pairs from the training judgments, with fusion tuning.
let pairsPath = scratch + "/pairs.jsonl"
var pairsText = ""
for qid in data.trainQrels.keys.sorted() {
    let line: [String: Any] = ["query": data.trainQueries[qid]!, "positive": data.trainQrels[qid]!.sorted()]
    pairsText += String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self) + "\n"
}
try pairsText.write(toFile: pairsPath, atomically: true, encoding: .utf8)
var supervisedOptions = options
supervisedOptions.name = "supervised"
supervisedOptions.fusion = true
let cpu0 = cpuSeconds()
let report = try c.tune(pairsFile: pairsPath, options: supervisedOptions, progress: show)
let cpuTraining = cpuSeconds() - cpu0
stderr("\n")
record("tuned dense (adapter)", "tuned_dense", try evaluate(.dense, adapter: .collectionDefault))
record("tuned dense (adapter), exact scan", "tuned_dense_exact", try evaluate(.dense, adapter: .collectionDefault, exact: true))
if !probe { record("tuned hybrid (adapter, \(report.fusion?.description ?? "RRF k 60"))", "tuned_hybrid", try evaluate(.hybrid, adapter: .collectionDefault)) }
summary["train_seconds"] = report.trainingSeconds
summary["train_cpu_seconds"] = cpuTraining
summary["embed_queries_seconds"] = report.embeddingSeconds
summary["epochs"] = report.epochs
summary["best_epoch"] = report.bestEpoch
summary["validation"] = [report.validationBefore, report.validationAfter]
summary["fusion"] = report.fusion?.description ?? "none"
summary["fusion_validation"] = [report.fusionValidationBefore ?? 0, report.fusionValidationAfter ?? 0]

// HNSW against the exact scan, with and without the adapter: recall@10 of the dense search's top
// ten (the share of the exact scan's top ten it finds) over the test claims, at the collection's
// efSearch and wider, and the nDCG@10 each gives. The query vectors are embedded once.
func recall(_ choice: AdapterChoice, ef: Int?) throws -> (Double, Double, Double) {
    let adapter = try c.queryAdapter(choice)
    var o = SearchOptions()
    o.efSearch = ef
    var exact = o
    exact.exact = true
    var hit = 0.0, whole = 0.0, subset = 0.0
    for (i, qid) in testIDs.enumerated() {
        let v = adapter?.apply(testVectors[i]) ?? testVectors[i]
        let approx = try c.search(vector: v, k: 10, options: o).map(\.id)
        let truth = Set(try c.search(vector: v, k: 10, options: exact).map(\.id))
        hit += Double(approx.filter(truth.contains).count) / Double(max(truth.count, 1))
        let n = ndcg10(approx, relevant: data.testQrels[qid]!)
        whole += n
        if unseen.contains(qid) { subset += n }
    }
    return (hit / Double(testIDs.count), whole / Double(testIDs.count), subset / Double(unseenIDs.count))
}
var recallRows: [String] = []
for (label, choice) in [("untuned", AdapterChoice.none), ("tuned", .collectionDefault)] {
    for ef in [nil, 96, 128, 256] as [Int?] {
        let (r, w, u) = try recall(choice, ef: ef)
        let line = String(format: "HNSW recall@10 against exact, %@, efSearch %@: %.4f (nDCG@10 %.4f / %.4f)", label, ef.map(String.init) ?? "default", r, w, u)
        recallRows.append(line)
        stderr(line + "\n")
        summary["recall_\(label)_ef\(ef ?? 0)"] = r
    }
}
if probe {
    for line in recallRows { print(line) }
    db.close()
    exit(0)
}
let distilled = distilledReport!

// Search cost with and without the adapter: CPU seconds of the same 300 text searches, alternated
// over three rounds so that the load of the machine falls on both alike.
var cpuWith = 0.0, cpuWithout = 0.0
for _ in 0..<3 {
    for choice in [AdapterChoice.none, .collectionDefault] {
        var o = SearchOptions()
        o.adapter = choice
        let t = cpuSeconds()
        for qid in testIDs { _ = try c.search(text: data.queries[qid]!, k: 10, options: o) }
        if choice == .none { cpuWithout += cpuSeconds() - t } else { cpuWith += cpuSeconds() - t }
    }
}
summary["search_cpu_ratio"] = cpuWith / cpuWithout

print(String(format: "\n%-52@ %10@ %10@", "nDCG@10", "all (\(testIDs.count))", "unseen (\(unseenIDs.count))"))
for (label, f) in rows { print(String(format: "%-52@ %10.4f %10.4f", label, f.0, f.1)) }
print(String(format: "training: %d pairs (%d validation), %d epochs (best %d), %.1f s wall, %.1f s CPU; validation nDCG@10 %.4f -> %.4f",
             report.trainingExamples, report.validationExamples, report.epochs, report.bestEpoch, report.trainingSeconds, cpuTraining,
             report.validationBefore, report.validationAfter))
print(String(format: "fusion: %@ (validation hybrid %.4f -> %.4f)", report.fusion?.description ?? "none",
             report.fusionValidationBefore ?? 0, report.fusionValidationAfter ?? 0))
print(String(format: "distillation: %d epochs, %.1f s; validation agreement with the teacher %.4f -> %.4f",
             distilled.epochs, distilled.trainingSeconds, distilled.validationBefore, distilled.validationAfter))
for line in recallRows { print(line) }
print(String(format: "search CPU with the adapter / without: %.3f (300 text searches x 3 rounds)", cpuWith / cpuWithout))
db.close()
print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
