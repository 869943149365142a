// The text-search example of docs/library.md. The test suite checks that the code block in the doc
// is this file's code, compiles it (it is a target of the package) and runs it with the real model.
import Foundation
import Quiver

// The model: an app that ships it keeps the all-MiniLM-L6-v2 folder in a `models` directory beside
// its executable and says so; otherwise Quiver reads $QUIVER_MODELS, else ~/.local/share/quiver/models.
var options = DatabaseOptions()
if let executable = Bundle.main.executableURL {
    let shipped = executable.deletingLastPathComponent().appendingPathComponent("models").path
    if FileManager.default.fileExists(atPath: shipped) { options.modelsDirectory = shipped }
}

let path = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : NSTemporaryDirectory() + "/quiver-text-example"
let db = try Database(path: path, options: options)
defer { db.close() }

// A collection with an encoder: text is embedded on write and on query (384-d, cosine), and a
// BM25 full-text index is kept beside the vectors. Creating it loads the model, so a missing model
// shows here, with where Quiver looked and how to get the model.
let papers: Quiver.Collection
do {
    papers = try (try? db.collection("papers")) ?? db.createCollection("papers", encoder: "all-MiniLM-L6-v2")
} catch {
    print("cannot open the collection: \(error)")
    exit(1)
}

// Payload indexes let filters find matching documents without reading every document.
try papers.createPayloadIndex("year", type: .integer)
try papers.createPayloadIndex("tags", type: .keyword)

// Documents given as text: the encoder makes their vectors. Metadata takes Int and [String] values.
let abstracts: [(id: String, year: Int, tags: [String], text: String)] = [
    ("p1", 2019, ["biology", "plants"], "Photosynthesis turns sunlight, water and carbon dioxide into sugar inside chloroplasts."),
    ("p2", 2021, ["biology", "cells"], "Mitochondria make ATP by oxidative phosphorylation."),
    ("p3", 2020, ["ml", "nlp"], "A transformer encodes each sentence as a dense vector for semantic search."),
    ("p4", 2018, ["retrieval"], "BM25 ranks documents by term frequency and inverse document frequency."),
    ("p5", 2022, ["biology", "ocean"], "Coral reefs bleach when the ocean gets warmer."),
    ("p6", 2023, ["retrieval", "ml"], "Hybrid retrieval fuses a lexical ranking and a dense ranking."),
    ("p7", 2021, ["energy"], "Solar panels turn light into electricity with photovoltaic cells."),
    ("p8", 2024, ["biology", "plants"], "Leaves capture light with chlorophyll."),
]
try papers.upsert(abstracts.map { Document(id: $0.id, text: $0.text, metadata: ["year": $0.year, "tags": $0.tags]) })

func show(_ title: String, _ hits: [SearchResult]) {
    print(title)
    for hit in hits { print("  \(hit.id) \(String(format: "%.3f", hit.score)) \(hit.text ?? "")") }
}
let withText = SearchOptions(includeText: true)

// Dense: nearest embeddings, so the words need not match (scores are cosine similarities).
show("dense:", try papers.search(text: "how do plants feed on sunshine", k: 3, mode: .dense, options: withText))

// Lexical: BM25 over the text (scores are BM25 scores).
show("lexical:", try papers.search(text: "light", k: 3, mode: .lexical, options: withText))

// Hybrid: both lists fused, here by reciprocal rank (the default; .weighted(dense: 0.7) weighs scores).
show("hybrid:", try papers.search(text: "ranking documents", k: 3, mode: .hybrid, fusion: .reciprocalRank(k: 60), options: withText))

// A filter applies to every mode; explain says how the search ran.
let recentBiology = try Filter(text: #"year >= 2021 and tags = "biology""#)
let (hits, plan) = try papers.explain(text: "energy for living things", k: 2, mode: .dense,
                                      options: SearchOptions(includeText: true, filter: recentBiology))
show("filtered:", hits)
print("plan: \(plan.strategy); \(plan.allowed) of \(plan.documents) documents allowed; indexes used: \(plan.indexesUsed.joined(separator: ", "))")
