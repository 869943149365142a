// BM25Bench: BM25 quality and speed on SciFact (BEIR) or a set in its layout, in memory.
//
//   swift run -c release BM25Bench [--data DIR] [--k1 1.5] [--b 0.75]
//       [--stopwords english|none] [--stem|--no-stem] [--min-length N] [--fold]
//       [--matrix] [--dump-tokens FILE] [--results FILE] [--json]
//       [--engine --vectors FILE.fvecs [--db DIR] [--encoder-queries 200] [--rounds 3]]
//
// Indexes `title + " " + text` of every corpus.jsonl document, runs the queries of queries.jsonl
// that have judgments in qrels_test.tsv (a header line, then query-id, corpus-id, score), and prints
// nDCG@10 (linear gain, log2 discount, ideal from the judgments, as pytrec_eval computes it; no
// result is dropped for having the query's id) with indexing and query throughput. Without a
// qrels_test.tsv (the WordNet glosses of tools/bm25/build_wordnet_glosses.py) every query runs and
// there is no nDCG. Throughput is by the thread's CPU time: queries/s from query text to ranked ids
// (analysis included), and on terms already analyzed (the part bm25s times, tools/bm25).
// --results writes each query's top 10 corpus ids as JSON, for the agreement check of tools/bm25.
// --engine adds the figures through the engine (EngineRun.swift).
// --matrix evaluates every combination of stop words x stemming x minimum length 1/2.
// --dump-tokens writes the analyzed corpus and queries as JSON, so that tools/bm25 can score exactly
// these terms with bm25s and check the ranking arithmetic apart from the tokenizers.
import BenchmarkSupport
import Foundation
import QuiverText

struct Options {
    var data = "../shared/data/scifact"
    var bm25 = BM25()
    var analyzer = Analyzer.default
    var matrix = false
    var dumpTokens: String?
    var results: String?
    var json = false
    var engine = false
    var vectors: String?
    var database = NSTemporaryDirectory() + "/quiver-bm25bench"
    var encoderQueries = 200
    var rounds = 3
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case data(String)
    var description: String {
        switch self {
        case .usage(let m): return "usage: \(m)"
        case .data(let m): return "data: \(m)"
        }
    }
}

func parseOptions() throws -> Options {
    var o = Options()
    var stop = Analyzer.StopWordList.english
    var stem = o.analyzer.stemsEnglish
    var minLength = o.analyzer.minimumLength
    var fold = o.analyzer.foldsDiacritics
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) throws -> String {
        guard let v = args.popFirst() else { throw BenchError.usage("\(name) needs a value") }
        return v
    }
    func number(_ name: String) throws -> Double {
        let v = try value(name)
        guard let d = Double(v) else { throw BenchError.usage("\(name) takes a number, not '\(v)'") }
        return d
    }
    while let a = args.popFirst() {
        switch a {
        case "--data": o.data = try value(a)
        case "--k1": o.bm25.k1 = try number(a)
        case "--b": o.bm25.b = try number(a)
        case "--stopwords":
            switch try value(a) {
            case "english": stop = .english
            case "none": stop = .none
            case let v: throw BenchError.usage("--stopwords takes english or none, not '\(v)'")
            }
        case "--stem": stem = true
        case "--no-stem": stem = false
        case "--min-length": minLength = Int(try number(a))
        case "--fold": fold = true
        case "--matrix": o.matrix = true
        case "--dump-tokens": o.dumpTokens = try value(a)
        case "--results": o.results = try value(a)
        case "--engine": o.engine = true
        case "--vectors": o.vectors = try value(a)
        case "--db": o.database = try value(a)
        case "--encoder-queries": o.encoderQueries = Int(try number(a))
        case "--rounds": o.rounds = Int(try number(a))
        case "--json": o.json = true
        case "-h", "--help":
            print("swift run -c release BM25Bench [--data DIR] [--k1 X] [--b X] [--stopwords english|none] [--stem|--no-stem] [--min-length N] [--fold] [--matrix] [--dump-tokens FILE] [--results FILE] [--json] [--engine --vectors FILE.fvecs [--db DIR] [--encoder-queries N] [--rounds N]]")
            exit(0)
        default: throw BenchError.usage("unknown option \(a)")
        }
    }
    if o.engine && o.vectors == nil { throw BenchError.usage("--engine needs --vectors FILE.fvecs (row i: corpus document i)") }
    if o.encoderQueries < 1 || o.rounds < 1 { throw BenchError.usage("--encoder-queries and --rounds take a positive number") }
    o.analyzer = Analyzer(stopWords: stop, stemsEnglish: stem, minimumLength: minLength, foldsDiacritics: fold)
    return o
}

struct CorpusDocument: Decodable {
    let _id: String
    let title: String
    let text: String
}

struct Query: Decodable {
    let _id: String
    let text: String
}

struct SciFact {
    var documents: [CorpusDocument]
    var queries: [Query]
    /// query id -> corpus id -> relevance; nil for a set without judgments (every query runs)
    var judgments: [String: [String: Int]]?

    static func load(_ dir: String) throws -> SciFact {
        func lines(_ name: String) throws -> [Substring] {
            let path = dir + "/" + name
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw BenchError.data("cannot read \(path)") }
            return text.split(separator: "\n", omittingEmptySubsequences: true)
        }
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ line: Substring, _ file: String, _ n: Int) throws -> T {
            do { return try decoder.decode(T.self, from: Data(line.utf8)) } catch {
                throw BenchError.data("\(file) line \(n + 1): \(error)")
            }
        }
        let documents: [CorpusDocument] = try lines("corpus.jsonl").enumerated().map { try decode($1, "corpus.jsonl", $0) }
        let allQueries: [Query] = try lines("queries.jsonl").enumerated().map { try decode($1, "queries.jsonl", $0) }
        guard FileManager.default.fileExists(atPath: dir + "/qrels_test.tsv") else {
            return SciFact(documents: documents, queries: allQueries, judgments: nil)
        }
        var judgments: [String: [String: Int]] = [:]
        for (n, line) in try lines("qrels_test.tsv").enumerated().dropFirst() {
            let f = line.split(separator: "\t")
            guard f.count == 3, let rel = Int(f[2]) else { throw BenchError.data("qrels_test.tsv line \(n + 1): expected query-id, corpus-id, score") }
            judgments[String(f[0]), default: [:]][String(f[1])] = rel
        }
        let queries = allQueries.filter { judgments[$0._id] != nil }
        return SciFact(documents: documents, queries: queries, judgments: judgments)
    }
}

/// nDCG@k with linear gain (pytrec_eval's definition).
func ndcg(ranked: [String], judged: [String: Int], k: Int) -> Double {
    var dcg = 0.0
    for (i, id) in ranked.prefix(k).enumerated() { dcg += Double(judged[id] ?? 0) / log2(Double(i) + 2) }
    let ideal = judged.values.sorted(by: >).prefix(k).enumerated().reduce(0.0) { $0 + Double($1.element) / log2(Double($1.offset) + 2) }
    return ideal > 0 ? dcg / ideal : 0
}

struct Result {
    var analyzer: Analyzer
    /// nil without judgments
    var ndcg10: Double?
    var documentsPerSecond: Double
    /// From query text (analysis included) and from analyzed terms, by CPU time.
    var queriesPerSecond: Double
    var termQueriesPerSecond: Double
    var terms: Int
    /// Each query's top 10, as corpus ids.
    var ranked: [[String]]
}

/// Queries per CPU second of `pass` (one pass over `count` queries), repeated until a second of
/// CPU time has been measured.
func queriesPerCPUSecond(_ count: Int, _ pass: () -> Void) -> Double {
    var rounds = 0
    var seconds = 0.0
    repeat {
        let t = threadCPUSeconds()
        pass()
        seconds += threadCPUSeconds() - t
        rounds += 1
    } while seconds < 1 && rounds < 1000
    return Double(count * rounds) / seconds
}

func evaluate(_ data: SciFact, analyzer: Analyzer, bm25: BM25) -> Result {
    let texts = data.documents.map { $0.title + " " + $0.text }
    let t0 = threadCPUSeconds()
    var index = TextIndex(analyzer: analyzer, bm25: bm25)
    for (i, text) in texts.enumerated() { index.add(Int64(i), text: text) }
    let indexSeconds = threadCPUSeconds() - t0

    var hits: [[BM25.Hit]] = []
    let qps = queriesPerCPUSecond(data.queries.count) { hits = data.queries.map { index.search($0.text, k: 10) } }
    let queryTerms = data.queries.map { analyzer.terms($0.text) }
    var termHits: [[BM25.Hit]] = []
    let termQPS = queriesPerCPUSecond(data.queries.count) { termHits = queryTerms.map { bm25.search($0, in: index.index, k: 10) } }
    precondition(termHits == hits, "searching analyzed terms ranked differently from searching the text")
    let ranked = hits.map { $0.map { data.documents[Int($0.documentID)]._id } }
    var ndcg10: Double?
    if let judgments = data.judgments {
        ndcg10 = zip(data.queries, ranked).reduce(0.0) { $0 + ndcg(ranked: $1.1, judged: judgments[$1.0._id]!, k: 10) } / Double(data.queries.count)
    }
    return Result(analyzer: analyzer, ndcg10: ndcg10, documentsPerSecond: Double(texts.count) / indexSeconds,
                  queriesPerSecond: qps, termQueriesPerSecond: termQPS, terms: index.index.termCount, ranked: ranked)
}

func dumpTokens(_ data: SciFact, analyzer: Analyzer, to path: String) throws {
    struct Dump: Encodable {
        var analyzer: String
        var corpusIDs: [String]
        var corpus: [[String]]
        var queryIDs: [String]
        var queries: [[String]]
    }
    let dump = Dump(analyzer: analyzer.identity,
                    corpusIDs: data.documents.map(\._id), corpus: data.documents.map { analyzer.terms($0.title + " " + $0.text) },
                    queryIDs: data.queries.map(\._id), queries: data.queries.map { analyzer.terms($0.text) })
    try JSONEncoder().encode(dump).write(to: URL(fileURLWithPath: path))
}

do {
    let o = try parseOptions()
    let data = try SciFact.load(o.data)
    if let path = o.dumpTokens { try dumpTokens(data, analyzer: o.analyzer, to: path) }
    var analyzers = [o.analyzer]
    if o.matrix {
        analyzers = []
        for stop in [Analyzer.StopWordList.none, .english] {
            for stem in [false, true] {
                for minLength in [1, 2] {
                    analyzers.append(Analyzer(stopWords: stop, stemsEnglish: stem, minimumLength: minLength, foldsDiacritics: o.analyzer.foldsDiacritics))
                }
            }
        }
    }
    if !o.json {
        print("\(o.data): \(data.documents.count) documents, \(data.queries.count) queries; BM25 k1 \(o.bm25.k1), b \(o.bm25.b); CPU time")
    }
    for a in analyzers {
        let r = evaluate(data, analyzer: a, bm25: o.bm25)
        if let path = o.results {
            let ids = data.queries.map(\._id)
            try JSONSerialization.data(withJSONObject: ["queryIDs": ids, "results": r.ranked]).write(to: URL(fileURLWithPath: path))
        }
        if o.json {
            print("{\"analyzer\":\"\(a.identity)\",\"ndcg10\":\(r.ndcg10.map { "\($0)" } ?? "null"),\"docs_per_s\":\(Int(r.documentsPerSecond)),\"queries_per_s\":\(Int(r.queriesPerSecond)),\"term_queries_per_s\":\(Int(r.termQueriesPerSecond))}")
        } else {
            print(String(format: "nDCG@10 %@  index %6.0f docs/s  search %6.0f queries/s (%6.0f from terms)  %6d terms  %@",
                         r.ndcg10.map { String(format: "%.5f", $0) } ?? "-", r.documentsPerSecond, r.queriesPerSecond,
                         r.termQueriesPerSecond, r.terms, a.identity))
        }
    }
    if o.engine, let vectors = o.vectors {
        printEngine(try engineRun(data, vectors: vectors, database: o.database, queries: o.encoderQueries, rounds: o.rounds,
                                  bm25: o.bm25, analyzer: o.analyzer), json: o.json)
    }
} catch {
    FileHandle.standardError.write(Data("BM25Bench: \(error)\n".utf8))
    exit(1)
}
