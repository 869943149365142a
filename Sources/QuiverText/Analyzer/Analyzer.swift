import Foundation  // decomposedStringWithCanonicalMapping, for the optional diacritic folding

/// Turns text into the terms that BM25 counts: the same function for documents and queries.
///
/// The steps, in order (each word from `WordSegmenter`, whose rules say what a word is):
/// 1. lowercase (Unicode full lowercase mapping; `"İSTANBUL"` gives `"i̇stanbul"`);
/// 2. fold diacritics, if `foldsDiacritics` (canonical decomposition, then combining marks
///    dropped: `"café"` gives `"cafe"`);
/// 3. normalize the apostrophe U+2019 to `'` and drop a possessive `'s` (`"cell's"` gives `"cell"`);
/// 4. drop words shorter than `minimumLength` scalars (a single ideograph or Hiragana character is
///    always kept: in those scripts one character is a word);
/// 5. drop stop words (compared after steps 1-3, before stemming);
/// 6. stem with the Porter2 English stemmer, if `stemsEnglish`.
///
/// Deterministic: the output depends only on the text and the settings, and `identity` names the
/// settings, so that an index can record which analyzer built it and refuse a different one.
/// Thread safety: a value type; `terms` may run concurrently from any thread.
public struct Analyzer: Sendable, Hashable {
    /// Words removed after lowercasing (step 5); empty for none.
    public var stopWords: Set<String>
    /// Whether to stem with Porter2 (step 6).
    public var stemsEnglish: Bool
    /// The shortest word kept, in Unicode scalars (step 4).
    public var minimumLength: Int
    /// Whether to remove diacritics (step 2).
    public var foldsDiacritics: Bool
    /// Which stop-word list `stopWords` holds, for `identity` ("english", "none" or "custom").
    public let stopWordsName: String

    /// Quiver's default, chosen on SciFact (nDCG@10 over 300 queries, k1 1.5, b 0.75; measured with
    /// `swift run -c release BM25Bench --matrix`; bm25s agrees within 0.0005, `tools/bench-bm25`): English stop words,
    /// Porter2 stemming, words of any length, no diacritic folding.
    /// - stemming: 0.6616 -> 0.6874 (+0.026), the one setting that matters;
    /// - stop words: +0.000 to +0.002, and queries run 2-3x faster (no "the"/"of" posting lists);
    /// - keeping one-character words ("type 2", "vitamin c") rather than dropping them as
    ///   scikit-learn and bm25s do: +0.001 (0.6874 -> 0.6886);
    /// - folding diacritics: off, as in Lucene's StandardAnalyzer, because it merges distinct words
    ///   in many languages (Spanish "año"/"ano"); SciFact is English and does not tell.
    public static let `default` = Analyzer(stopWords: .english, stemsEnglish: true, minimumLength: 1, foldsDiacritics: false)

    /// The analyzer that matches bm25s's default tokenizer on English text: lowercase, words of two
    /// or more characters, English stop words, no stemming.
    public static let plain = Analyzer(stopWords: .english, stemsEnglish: false, minimumLength: 2, foldsDiacritics: false)

    /// A stop-word choice.
    public enum StopWordList: Sendable, Hashable {
        /// No stop words.
        case none
        /// `EnglishStopWords.words`.
        case english
        /// Your own list (compared with lowercased words).
        case custom(Set<String>)
    }

    /// Creates an analyzer; see the properties for each setting.
    public init(stopWords: StopWordList = .english, stemsEnglish: Bool = true, minimumLength: Int = 1, foldsDiacritics: Bool = false) {
        switch stopWords {
        case .none: self.stopWords = []; stopWordsName = "none"
        case .english: self.stopWords = EnglishStopWords.words; stopWordsName = "english"
        case .custom(let words): self.stopWords = words; stopWordsName = "custom"
        }
        self.stemsEnglish = stemsEnglish
        self.minimumLength = max(minimumLength, 1)
        self.foldsDiacritics = foldsDiacritics
    }

    /// A stable description of the settings, e.g. `quiver-analyzer/1 stop=english stem=porter2 min=2 fold=no`.
    /// Persisted indexes store it; a custom stop list adds a checksum of its sorted words.
    public var identity: String {
        var stop = stopWordsName
        if stopWordsName == "custom" {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a over the sorted words, NUL-separated
            for w in stopWords.sorted() { for b in w.utf8 + [0] { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
            stop += ":" + String(h, radix: 16)
        }
        return "quiver-analyzer/1 stop=\(stop) stem=\(stemsEnglish ? "porter2" : "none") min=\(minimumLength) fold=\(foldsDiacritics ? "yes" : "no")"
    }

    /// The terms of `text`, in order, repeats kept (a document's term frequencies count them).
    public func terms(_ text: String) -> [String] {
        var out: [String] = []
        for word in WordSegmenter.words(text) {
            var t = word.text.lowercased()
            if foldsDiacritics && !t.utf8.allSatisfy({ $0 < 0x80 }) {
                var folded = String.UnicodeScalarView()
                for s in t.decomposedStringWithCanonicalMapping.unicodeScalars where !WordSegmenter.isMark(s) { folded.append(s) }
                t = String(folded)
                if t.isEmpty { continue }
            }
            if t.unicodeScalars.contains("\u{2019}") {
                t = String(String.UnicodeScalarView(t.unicodeScalars.map { $0 == "\u{2019}" ? "'" : $0 }))
            }
            if t.hasSuffix("'s") { t.removeLast(2) }
            if !word.isIdeographic && t.unicodeScalars.count < minimumLength { continue }
            if stopWords.contains(t) { continue }
            out.append(stemsEnglish ? EnglishStemmer.stem(t) : t)
        }
        return out
    }
}
