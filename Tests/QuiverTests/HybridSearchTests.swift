import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverText
@testable import Quiver

struct HybridSearchTests {
    static let words = ["vitamin", "bone", "density", "protein", "cell", "cancer", "gene", "the", "of", "studies", "studied",
                        "running", "runner", "ran", "blood", "pressure", "Ünïcode", "naïve", "data"]

    static func text(_ rng: inout SplitMix64) -> String {
        (0..<Int.random(in: 1...30, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ")
    }

    /// BM25 from the LMDB postings (kept through inserts, updates and deletes) equals BM25 over an
    /// in-memory inverted index of the live documents, scores and order.
    @Test func lexicalSearchEqualsTheInMemoryIndex() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("t", dimension: 2)
        var rng = SplitMix64(seed: 3)
        var texts: [String: String] = [:]
        try c.insert((0..<300).map { i in
            let t = Self.text(&rng)
            texts["d\(i)"] = t
            return Document(id: "d\(i)", text: t, vector: [1, Float(i)])
        })
        for i in 0..<80 {
            let id = "d\(Int.random(in: 0..<300, using: &rng))"
            if i % 4 == 0 { try c.delete(id: id); texts[id] = nil } else {
                let t = Self.text(&rng)
                try c.upsert(Document(id: id, text: t, vector: [2, Float(i)]))
                texts[id] = t
            }
        }
        try c.upsert(Document(id: "no-text", vector: [0, 0]))
        var memory = InvertedIndex()
        let ids = texts.keys.sorted()
        for (i, id) in ids.enumerated() { memory.add(Int64(i), terms: Analyzer.default.terms(texts[id]!)) }
        for query in ["vitamin bone density", "running studies", "naïve data", "the of", "cancer gene protein blood"] {
            // 20 of each; the first 10 are compared, so that a tie across the cut-off is seen.
            let expected = BM25().search(Analyzer.default.terms(query), in: memory, k: 20)
            let got = try c.search(text: query, k: 20, mode: .lexical)
            // Same documents in the same order, except within ties (which the two order differently:
            // by row id here, by position in the sorted id list there).
            for (i, e) in expected.prefix(10).enumerated() where i < got.count {
                let tied = expected.enumerated().contains { $0.offset != i && abs($0.element.score - e.score) < 1e-6 }
                if !tied { #expect(got[i].id == ids[Int(e.documentID)], "\(query) rank \(i): \(got.map { ($0.id, $0.score) }) vs \(expected.map { (ids[Int($0.documentID)], $0.score) })") }
            }
            for (g, e) in zip(got, expected) { #expect(abs(Double(g.score) - e.score) < 1e-4, "\(query)") }
            #expect(got.count == expected.count)
        }
        // The filter applies to the lexical list.
        var onMissing = SearchOptions(filter: try Filter(text: "exists(x)"))
        onMissing.allowUnknownFields = true  // no document has 'x': allowed, and nothing matches
        let filtered = try c.search(text: "vitamin", k: 50, mode: .lexical, options: onMissing)
        #expect(filtered.isEmpty)
        #expect(try db.verify().ok)
    }

    /// Lexical search reads decoded postings cached per LMDB snapshot: a search after every write,
    /// delete and reopen sees exactly the documents then stored (the same scores, bit for bit, as
    /// an in-memory index of them, and the same documents outside ties), never a cached older state.
    @Test func lexicalSearchFollowsEveryWrite() throws {
        let dir = TemporaryDirectory()
        var db = try Database(path: dir.path)
        var c = try db.createCollection("t", dimension: 2)
        var rng = SplitMix64(seed: 11)
        var texts: [String: String] = [:]
        let queries = ["vitamin bone density", "running studies", "naïve data", "cancer gene protein blood", "cell"]
        func check(_ step: Int) throws {
            var memory = InvertedIndex()
            let ids = texts.keys.sorted()
            for (i, id) in ids.enumerated() { memory.add(Int64(i), terms: Analyzer.default.terms(texts[id]!)) }
            for query in queries {
                // 8 compared; the rest to see ties across the cut-off (the two break ties by other ids).
                let deeper = BM25().search(Analyzer.default.terms(query), in: memory, k: 40)
                let expected = Array(deeper.prefix(8))
                let got = try c.search(text: query, k: 8, mode: .lexical)
                #expect(got.map(\.score) == expected.map { Float($0.score) }, "step \(step), \(query)")
                for (g, e) in zip(got, expected) where !deeper.contains(where: { $0.documentID != e.documentID && $0.score == e.score }) {
                    #expect(g.id == ids[Int(e.documentID)], "step \(step), \(query)")
                }
            }
        }
        for step in 0..<60 {
            let id = "d\(Int.random(in: 0..<40, using: &rng))"
            if step % 5 == 4 {
                try c.delete(id: id)
                texts[id] = nil
            } else {
                let t = Self.text(&rng)
                try c.upsert(Document(id: id, text: t, vector: [1, Float(step)]))
                texts[id] = t
            }
            try check(step)
            if step % 20 == 19 {
                db.close()
                db = try Database(path: dir.path)
                c = try db.collection("t")
                try check(step)
            }
        }
        db.close()
    }

    @Test func reciprocalRankFusion() {
        func r(_ id: String, _ s: Float) -> SearchResult { SearchResult(id: id, score: s, metadata: [:]) }
        let dense = [r("a", 0.9), r("b", 0.8), r("c", 0.7)]
        let lexical = [r("c", 12), r("d", 9), r("a", 3)]
        let rrf = Collection.fuse(dense: dense, lexical: lexical, fusion: .reciprocalRank(k: 60), metric: .cosine)
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie, dense order first), b: 1/62, d: 1/62 (tie, dense order).
        #expect(rrf.map(\.id) == ["a", "c", "b", "d"])
        #expect(abs(Double(rrf[0].score) - (1.0 / 61 + 1.0 / 63)) < 1e-6)
        let weighted = Collection.fuse(dense: dense, lexical: lexical, fusion: .weighted(dense: 0.5), metric: .cosine)
        // Scaled dense: a 1, b 0.5, c 0; lexical: c 1, d 6/9, a 0.
        #expect(weighted.map(\.id) == ["a", "c", "d", "b"])
        // For L2 a smaller distance is better.
        let l2 = Collection.fuse(dense: [r("x", 0.1), r("y", 2)], lexical: [], fusion: .weighted(dense: 1), metric: .l2)
        #expect(l2.map(\.id) == ["x", "y"])
    }

    @Test func hybridWithTheBuiltInEncoder() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("h", encoder: "all-MiniLM-L6-v2")
        try c.insert([
            Document(id: "1", text: "Vitamin D supplementation and bone mineral density in older adults", metadata: ["year": 2019]),
            Document(id: "2", text: "Calcium intake affects skeletal strength", metadata: ["year": 2021]),
            Document(id: "3", text: "Stock markets fell sharply on Monday", metadata: ["year": 2021]),
        ])
        let (hits, plan) = try c.explain(text: "vitamin D bones", k: 3, mode: .hybrid)
        #expect(hits.first?.id == "1" && plan.strategy.hasPrefix("hybrid"))
        let lexical = try c.search(text: "calcium", k: 3, mode: .lexical)
        #expect(lexical.map(\.id) == ["2"])
        let filtered = try c.search(text: "vitamin D bones", k: 3, mode: .hybrid, options: SearchOptions(filter: try Filter(text: "year >= 2020")))
        #expect(Set(filtered.map(\.id)) == ["2", "3"])
    }
}
