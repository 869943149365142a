import Foundation
import Testing
import QuiverCore
@testable import QuiverText

/// BM25 scores on a corpus small enough to compute by hand, removal, and the statistics seam.
struct BM25Tests {
    /// d1 = "cat sat" (2 terms), d2 = "cat cat dog" (3), d3 = "bird" (1): N = 3, avgdl = 2.
    func tiny() -> InvertedIndex {
        var index = InvertedIndex()
        index.add(1, terms: ["cat", "sat"])
        index.add(2, terms: ["cat", "cat", "dog"])
        index.add(3, terms: ["bird"])
        return index
    }

    func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

    @Test func handComputedScores() {
        let index = tiny()
        #expect(index.documentCount == 3 && index.totalTermCount == 6 && index.averageDocumentLength == 2)
        let bm25 = BM25()  // k1 1.5, b 0.75
        // cat: df 2, idf = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln 1.6
        // d1: tf 1, |d| 2: 1 / (1 + 1.5 * (0.25 + 0.75 * 2/2)) = 1 / 2.5
        // d2: tf 2, |d| 3: 2 / (2 + 1.5 * (0.25 + 0.75 * 3/2)) = 2 / 4.0625
        let cat = bm25.scores(for: ["cat"], in: index)
        #expect(cat.count == 2)
        #expect(close(cat[1]!, log(1.6) / 2.5) && close(cat[2]!, log(1.6) * 2 / 4.0625))
        // The same figures from bm25s 0.3.16 (float32): 0.18800145, 0.23138641.
        #expect(close(cat[1]!, 0.18800145, 1e-7) && close(cat[2]!, 0.23138641, 1e-7))
        // dog: df 1, idf = ln(1 + 2.5 / 1.5) = ln(8/3); d2: 1 / (1 + 2.0625)
        let catDog = bm25.scores(for: ["cat", "dog"], in: index)
        #expect(close(catDog[2]!, log(1.6) * 2 / 4.0625 + log(8.0 / 3.0) / 3.0625))
        #expect(close(catDog[2]!, 0.55165720, 1e-7))
        // A repeated query term counts twice; an unknown one adds nothing.
        let twice = bm25.scores(for: ["cat", "cat", "unicorn"], in: index)
        #expect(close(twice[1]!, 2 * cat[1]!) && close(twice[2]!, 2 * cat[2]!))
        // Ranking: best first, documents without a query term absent.
        let hits = bm25.search(["cat", "dog"], in: index, k: 10)
        #expect(hits.map(\.documentID) == [2, 1])
        #expect(bm25.search(["unicorn"], in: index, k: 10).isEmpty)
        #expect(bm25.search(["cat"], in: index, k: 0).isEmpty)
        // b = 0: no length normalization, so d1 (tf 1) scores ln 1.6 * 1 / (1 + 1.5).
        let flat = BM25(k1: 1.5, b: 0).scores(for: ["cat"], in: index)
        #expect(close(flat[1]!, log(1.6) / 2.5) && close(flat[2]!, log(1.6) * 2 / 3.5))
    }

    @Test func tiesGoToTheSmallerID() {
        var index = InvertedIndex()
        for id in [9, 4, 7, 1] as [Int64] { index.add(id, terms: ["same", "words"]) }
        let hits = BM25().search(["same"], in: index, k: 3)
        #expect(hits.map(\.documentID) == [1, 4, 7])
    }

    @Test func removeThenSearch() {
        var index = tiny()
        let removed = index.remove(2)
        let removedAgain = index.remove(2)
        #expect(removed && !removedAgain && !index.contains(2))
        // Now N = 2, avgdl = 1.5; cat: df 1, idf = ln(1 + 1.5 / 1.5) = ln 2;
        // d1: 1 / (1 + 1.5 * (0.25 + 0.75 * 2 / 1.5)) = 1 / 2.875
        let hits = BM25().search(["cat", "dog"], in: index, k: 10)
        #expect(hits.map(\.documentID) == [1])
        #expect(close(hits[0].score, log(2) / 2.875))
        #expect(index.documentFrequency(of: "dog") == 0 && index.postings["dog"] == nil)
        // The same as an index that never had d2.
        var fresh = InvertedIndex()
        fresh.add(1, terms: ["cat", "sat"])
        fresh.add(3, terms: ["bird"])
        #expect(index.postings == fresh.postings && index.documentLengths == fresh.documentLengths && index.totalTermCount == fresh.totalTermCount)
        // Re-adding an id replaces the document.
        index.add(1, terms: ["dog"])
        #expect(index.documentCount == 2 && index.documentFrequency(of: "cat") == 0 && index.totalTermCount == 2)
    }

    @Test func textIndexAnalyzesDocumentsAndQueriesAlike() {
        var text = TextIndex()
        text.add(10, text: "Vitamin C deficiency causes scurvy.")
        text.add(11, text: "Running a marathon: the runners' hearts.")
        text.add(12, text: "東京の天気")
        #expect(text.search("scurvy", k: 5).map(\.documentID) == [10])
        #expect(text.search("RUN", k: 5).map(\.documentID) == [11])
        #expect(text.search("天気", k: 5).map(\.documentID) == [12])
        #expect(text.search("the a", k: 5).isEmpty)  // stop words only
        let removed = text.remove(11)
        #expect(removed && text.search("run", k: 5).isEmpty && text.documentCount == 2)
    }

    /// The statistics seam: a naive store that recomputes everything from the raw term lists (as
    /// an LMDB-backed one would from its tables) ranks exactly like `InvertedIndex`, through random
    /// adds, replacements and removals.
    @Test func anyStatisticsSourceGivesTheSameScores() {
        struct Scan: BM25Statistics {
            var documents: [Int64: [String]] = [:]
            var documentCount: Int { documents.count }
            var totalTermCount: Int { documents.values.reduce(0) { $0 + $1.count } }
            func documentFrequency(of term: String) -> Int { documents.values.filter { $0.contains(term) }.count }
            func forEachPosting(of term: String, _ body: (Int64, Int, Int) -> Void) {
                for (id, terms) in documents {
                    let tf = terms.filter { $0 == term }.count
                    if tf > 0 { body(id, tf, terms.count) }
                }
            }
        }
        var rng = SplitMix64(seed: 42)
        let vocabulary = (0..<30).map { "t\($0)" }
        var index = InvertedIndex()
        var scan = Scan()
        for step in 0..<400 {
            let id = Int64(rng.next() % 60)
            if rng.next() % 4 == 0 {
                let removed = index.remove(id)
                let wasThere = scan.documents.removeValue(forKey: id) != nil
                #expect(removed == wasThere)
            } else {
                let terms = (0..<Int(rng.next() % 12)).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
                index.add(id, terms: terms)
                scan.documents[id] = terms
            }
            if step % 20 == 0 {
                let query = (0..<3).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
                let a = BM25().scores(for: query, in: index)
                let b = BM25().scores(for: query, in: scan)
                #expect(Set(a.keys) == Set(b.keys))
                for (id, s) in a { #expect(close(s, b[id]!, 1e-9)) }
            }
        }
        #expect(index.documentCount == scan.documentCount && index.totalTermCount == scan.totalTermCount)
    }

    /// The score table starts at the size the document frequencies promise and grows when a source
    /// understates them: the scores stay those of a plain sum per document, in query-term order.
    @Test func scoresSurviveAnUnderstatedDocumentFrequency() {
        struct Understated: BM25Statistics {
            var documentCount: Int { 5000 }
            var totalTermCount: Int { 5000 * 7 }
            func documentFrequency(of term: String) -> Int { 1 }
            func forEachPosting(of term: String, _ body: (Int64, Int, Int) -> Void) {
                let step = Int64(term.count)
                for i in 0..<Int64(3000) { body(i * step - 4000, Int(i % 5) + 1, Int(i % 13) + 1) }
            }
        }
        let bm25 = BM25(k1: 1.2, b: 0.7)
        let terms = ["ab", "abc", "ab", "abcde"]
        var expected: [Int64: Double] = [:]
        let idf = bm25.inverseDocumentFrequency(documentFrequency: 1, documentCount: 5000)
        for term in terms {
            Understated().forEachPosting(of: term) { id, tf, length in
                let f = Double(tf)
                expected[id, default: 0] += idf * f / (f + 1.2 * (1 - 0.7) + 1.2 * 0.7 / 7 * Double(length))
            }
        }
        #expect(bm25.scores(for: terms, in: Understated()) == expected)
        let top = bm25.search(terms, in: Understated(), k: 25)
        #expect(top == BM25.best(expected, k: 25))
        #expect(top.count == 25 && zip(top, top.dropFirst()).allSatisfy { $0.score > $1.score || ($0.score == $1.score && $0.documentID < $1.documentID) })
        let odd = bm25.search(terms, in: Understated(), k: 25, where: { $0 % 2 != 0 })
        #expect(odd == BM25.best(expected.filter { $0.key % 2 != 0 }, k: 25))
    }

    /// Scoring sums into an array over the query's id range when the source gives bounds and the
    /// range is narrow, else into a hash table: both give the same scores and hits, and bounds that
    /// a source states wrongly (ids outside them) still give them.
    @Test func directAndHashedScoreTablesAgree() {
        struct Bounded: BM25Statistics {
            var index: InvertedIndex
            /// Added to each term's true lower bound (a positive shift states it wrongly).
            var shift: Int64 = 0
            var bounds = true
            var documentCount: Int { index.documentCount }
            var totalTermCount: Int { index.totalTermCount }
            func documentFrequency(of term: String) -> Int { index.documentFrequency(of: term) }
            func forEachPosting(of term: String, _ body: (Int64, Int, Int) -> Void) { index.forEachPosting(of: term, body) }
            func documentIDBounds(of term: String) -> ClosedRange<Int64>? {
                guard bounds, let b = index.documentIDBounds(of: term) else { return nil }
                return min(b.lowerBound + shift, b.upperBound)...b.upperBound
            }
        }
        var rng = SplitMix64(seed: 7)
        let vocabulary = (0..<12).map { "w\($0)" }
        var index = InvertedIndex()
        for id in Int64(1000)..<1600 where rng.next() % 3 != 0 {
            index.add(id, terms: (0..<Int(rng.next() % 9 + 1)).map { _ in vocabulary[Int(rng.next() % 12)] })
        }
        let query = ["w1", "w2", "w3", "w1", "w7", "w11", "absent"]
        #expect(BM25.directSpan([index.documentIDBounds(of: "w1"), index.documentIDBounds(of: "w2")], postings: 400) != nil)
        let hashed = Bounded(index: index, bounds: false)
        let expected = BM25().scores(for: query, in: hashed)
        for source in [Bounded(index: index), Bounded(index: index, shift: 300)] {
            #expect(BM25().scores(for: query, in: source) == expected)
            #expect(BM25().search(query, in: source, k: 30) == BM25().search(query, in: hashed, k: 30))
            #expect(BM25().search(query, in: source, k: 30) == BM25.best(expected, k: 30))
        }
        #expect(BM25.directSpan([1...10, nil], postings: 100) == nil)
        #expect(BM25.directSpan([1...1000], postings: 100) == nil)
        #expect(BM25.directSpan([Int64.min...Int64.max], postings: 100) == nil)
    }
}
