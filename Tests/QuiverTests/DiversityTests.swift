import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver

/// MMR against a naive reference: the same candidates (the plain search's best, with vectors),
/// relevance and cosines recomputed in Double, picked one at a time by the textbook formula.
struct DiversityTests {
    /// The textbook MMR over `candidates` (best first): at each step the unpicked candidate with the
    /// highest (1 - d) * relevance - d * (largest cosine to a picked one; 0 before the first pick),
    /// ties to the better-ranked. Relevance: the cosine score itself, or the scores min-max scaled
    /// to 0...1 (1 best) for other scores.
    static func reference(_ candidates: [SearchResult], k: Int, diversity d: Double, cosineScores: Bool, higherIsBetter: Bool) -> [String] {
        let relevance: [Double]
        if cosineScores {
            relevance = candidates.map { Double($0.score) }
        } else {
            let v = candidates.map { higherIsBetter ? Double($0.score) : -Double($0.score) }
            let lo = v.min() ?? 0, hi = v.max() ?? 0
            relevance = v.map { hi > lo ? ($0 - lo) / (hi - lo) : 1 }
        }
        func cosine(_ a: [Float], _ b: [Float]) -> Double {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for (x, y) in zip(a, b) { ab += Double(x) * Double(y); aa += Double(x) * Double(x); bb += Double(y) * Double(y) }
            return aa == 0 || bb == 0 ? 0 : ab / (aa.squareRoot() * bb.squareRoot())
        }
        var picked: [Int] = []
        while picked.count < min(k, candidates.count) {
            var best = -1, bestValue = -Double.infinity
            for i in candidates.indices where !picked.contains(i) {
                let redundancy = picked.isEmpty ? 0 : picked.map { cosine(candidates[i].vector!, candidates[$0].vector!) }.max()!
                let value = (1 - d) * relevance[i] - d * redundancy
                if value > bestValue { best = i; bestValue = value }
            }
            picked.append(best)
        }
        return picked.map { candidates[$0].id }
    }

    /// A collection of `n` random vectors in clusters (so that diversity changes the answer), with
    /// a `color` field on every document.
    static func clustered(_ db: Database, metric: Metric, n: Int = 400, dimension: Int = 16) throws -> Collection {
        let c = try db.createCollection("c", dimension: dimension, metric: metric)
        var rng = SplitMix64(seed: 11)
        let centers = (0..<8).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
        try c.insert((0..<n).map { i in
            let center = centers[i % centers.count]
            let v = center.map { $0 + Float.random(in: -0.15...0.15, using: &rng) }
            return Document(id: "d\(i)", metadata: ["color": .string(["red", "green", "blue"][i % 3])], vector: v)
        })
        return c
    }

    @Test func denseMMREqualsTheReference() throws {
        for metric in [Metric.cosine, .dot, .l2] { try denseMMREqualsTheReference(metric: metric) }
    }

    func denseMMREqualsTheReference(metric: Metric) throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try Self.clustered(db, metric: metric)
        var rng = SplitMix64(seed: 5)
        for q in 0..<4 {
            let query = (0..<16).map { _ in Float.random(in: -1...1, using: &rng) }
            let filter: Filter? = q % 2 == 0 ? nil : try Filter(text: #"color != "red""#)
            for (d, k) in [(0.0, 10), (0.3, 10), (0.5, 7), (0.8, 10), (1.0, 5)] {
                var options = SearchOptions(diversity: d, candidates: q == 3 ? 40 : nil, filter: filter)
                options.exact = true
                let got = try c.search(vector: query, k: k, options: options)
                let plain = SearchOptions(includeVector: true, exact: true, filter: filter)
                let candidates = try c.search(vector: query, k: q == 3 ? 40 : 5 * k, options: plain)
                let expected = Self.reference(candidates, k: k, diversity: d, cosineScores: metric == .cosine,
                                              higherIsBetter: metric.higherScoreIsCloser)
                #expect(got.map(\.id) == expected, "\(metric) query \(q) diversity \(d)")
                // The scores are the plain search's, and no vector comes back unless asked for.
                let scores = Dictionary(uniqueKeysWithValues: candidates.map { ($0.id, $0.score) })
                #expect(got.allSatisfy { $0.score == scores[$0.id] && $0.vector == nil })
                if filter != nil { #expect(got.allSatisfy { $0.metadata["color"] != .string("red") }) }
                // Diversity 0 is the plain ranking.
                if d == 0 { #expect(got.map(\.id) == candidates.prefix(k).map(\.id)) }
            }
        }
        // Diversity changes the answer on clustered data (so the test above is not vacuous).
        let query = [Float](repeating: 0.2, count: 16)
        let plain = try c.search(vector: query, k: 8, options: SearchOptions(exact: true))
        let diverse = try c.search(vector: query, k: 8, options: SearchOptions(diversity: 0.7))
        #expect(plain.map(\.id) != diverse.map(\.id))
    }

    @Test func explainReportsItAndBadValuesAreRefused() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try Self.clustered(db, metric: .cosine, n: 60)
        let query = [Float](repeating: 0.1, count: 16)
        let (hits, plan) = try c.explain(vector: query, k: 4, options: SearchOptions(diversity: 0.5))
        #expect(hits.count == 4 && plan.returned == 4)
        #expect(plan.diversity?.contains("diversity 0.5") == true && plan.diversity?.contains("20 candidate(s)") == true, "\(plan)")
        // Fewer documents than candidates: all of them are candidates.
        #expect(try c.search(vector: query, k: 60, options: SearchOptions(diversity: 0.5)).count == 60)
        for (bad, message) in [(-0.1, "between 0"), (1.5, "between 0"), (Double.nan, "between 0")] {
            #expect { try c.search(vector: query, k: 4, options: SearchOptions(diversity: bad)) } throws: { "\($0)".contains(message) }
        }
        #expect { try c.search(vector: query, k: 10, options: SearchOptions(diversity: 0.5, candidates: 5)) } throws: { "\($0)".contains("between k (10)") }
        #expect { try c.search(vector: query, k: 10, options: SearchOptions(diversity: 0.5, candidates: 20_000)) } throws: { "\($0)".contains("10000") }
        #expect { try c.search(vector: query, k: 4, options: SearchOptions(groupBy: "color")) } throws: { "\($0)".contains("searchGroups") }
        #expect { try c.search(vector: query, k: 20_000, options: SearchOptions(diversity: 0.5)) } throws: { "\($0)".contains("k must be between 1 and 10000") }
    }

    /// Hybrid: relevance is the fused score scaled to 0...1 over the candidates; text queries are
    /// embedded by the built-in encoder, over the docs' example papers.
    @Test func hybridAndLexicalMMREqualTheReference() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try Self.papersCollection(db)
        for mode in [SearchMode.hybrid, .lexical, .dense] {
            for query in ["vitamin D and bone density", "sleep and memory"] {
                for d in [0.0, 0.5, 0.9] {
                    let got = try c.search(text: query, k: 4, mode: mode, options: SearchOptions(diversity: d, candidates: 12))
                    let candidates = try c.search(text: query, k: 12, mode: mode, options: SearchOptions(includeVector: true))
                    let expected = Self.reference(candidates, k: 4, diversity: d, cosineScores: mode == .dense, higherIsBetter: true)
                    #expect(got.map(\.id) == expected, "\(mode) \(query) \(d)")
                }
            }
        }
        let (_, plan) = try c.explain(text: "vitamin D", k: 3, mode: .hybrid, options: SearchOptions(diversity: 0.5))
        #expect(plan.diversity?.contains("scaled to 0...1") == true && plan.fusion != nil)
    }

    /// A collection "papers" with the built-in encoder holding docs/examples/papers.jsonl.
    static func papersCollection(_ db: Database) throws -> Collection {
        let c = try db.createCollection("papers", encoder: "all-MiniLM-L6-v2")
        try c.insert(try papers())
        return c
    }

    /// docs/examples/papers.jsonl as documents.
    static func papers() throws -> [Document] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/examples/papers.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let m = o["metadata"] as! [String: Any]
            return Document(id: o["id"] as! String, text: o["text"] as? String,
                            metadata: ["year": .int(Int64(m["year"] as! Int)), "venue": .string(m["venue"] as! String)])
        }
    }
}
