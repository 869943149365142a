import Foundation
import Testing
import QuiverText

/// Porter2 against the Snowball reference: every pair of Fixtures/porter2.tsv (a sample of
/// SciFact's vocabulary plus classic cases, stemmed by PyStemmer 3.1.0).
struct EnglishStemmerTests {
    @Test func agreesWithTheSnowballReference() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/porter2.tsv")
        let text = try String(contentsOf: url, encoding: .utf8)
        var checked = 0
        var mismatches: [String] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            try #require(f.count == 2, "bad fixture line \(line)")
            let got = EnglishStemmer.stem(String(f[0]))
            if got != f[1] { mismatches.append("\(f[0]): expected \(f[1]), got \(got)") }
            checked += 1
        }
        #expect(checked > 6_000)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
    }

    @Test func classicCases() {
        let cases = ["caresses": "caress", "ponies": "poni", "ties": "tie", "gaps": "gap", "gas": "gas",
                     "hoping": "hope", "hopping": "hop", "generously": "generous", "skies": "sky", "news": "news",
                     "by": "by", "cry": "cri", "say": "say", "added": "add", "internal": "internal", "biologist": "biolog",
                     "knightly": "knight", "yelling": "yell", "é": "é", "naïvely": "naïv"]
        for (word, stem) in cases { #expect(EnglishStemmer.stem(word) == stem, "\(word)") }
    }
}
