import Testing
import QuiverText

/// The analyzer's documented steps, on Unicode, accents, CJK and punctuation.
struct AnalyzerTests {
    /// Lowercase and split only: no stop words, no stemming, any length.
    let bare = Analyzer(stopWords: .none, stemsEnglish: false, minimumLength: 1)

    @Test func punctuationNumbersAndJoiners() {
        #expect(bare.terms("Hello, World! It's 3.5 mg/kg — COVID-19 (p<0.05)") ==
                ["hello", "world", "it", "3.5", "mg", "kg", "covid", "19", "p", "0.05"])
        #expect(bare.terms("1,000,000 cells; version 2.5.3, not 2. or .5") == ["1,000,000", "cells", "version", "2.5.3", "not", "2", "or", "5"])
        #expect(bare.terms("snake_case state-of-the-art e.g. U.S.A.") == ["snake_case", "state", "of", "the", "art", "e", "g", "u", "s", "a"])
        #expect(bare.terms("'quoted' rock 'n' roll don’t O'Neill") == ["quoted", "rock", "n", "roll", "don't", "o'neill"])
        #expect(bare.terms("the cell's membrane, the cells’ walls") == ["the", "cell", "membrane", "the", "cells", "walls"])
        #expect(bare.terms("") == [] && bare.terms("  \n\t—!?  ") == [])
        #expect(bare.terms("I ❤️ NY 🇫🇷 α+β=γ") == ["i", "ny", "α", "β", "γ"])
    }

    @Test func unicodeLettersAndAccents() {
        #expect(bare.terms("Café NAÏVE Ångström") == ["café", "naïve", "ångström"])
        // A decomposed accent (e + U+0301) stays inside its word.
        #expect(bare.terms("cafe\u{301} au lait") == ["cafe\u{301}", "au", "lait"])
        #expect(bare.terms("STRASSE Straße") == ["strasse", "straße"])
        #expect(bare.terms("Москва и Санкт-Петербург") == ["москва", "и", "санкт", "петербург"])
        #expect(bare.terms("العربية עברית हिन्दी") == ["العربية", "עברית", "हिन्दी"])
        let folding = Analyzer(stopWords: .none, stemsEnglish: false, minimumLength: 1, foldsDiacritics: true)
        #expect(folding.terms("Café NAÏVE Ångström cafe\u{301} Straße") == ["cafe", "naive", "angstrom", "cafe", "straße"])
    }

    @Test func cjkIsSplitPerCharacterExceptKatakanaAndHangul() {
        #expect(bare.terms("東京タワーに行く") == ["東", "京", "タワー", "に", "行", "く"])
        #expect(bare.terms("中文分词abc测试") == ["中", "文", "分", "词", "abc", "测", "试"])
        #expect(bare.terms("안녕하세요 세계") == ["안녕하세요", "세계"])
        // Single ideographs survive a minimum length.
        let min2 = Analyzer(stopWords: .none, stemsEnglish: false, minimumLength: 2)
        #expect(min2.terms("東京 a b cd") == ["東", "京", "cd"])
    }

    @Test func stopWordsAndStemming() {
        let stop = Analyzer(stopWords: .english, stemsEnglish: false, minimumLength: 1)
        #expect(stop.terms("The effect of THE drug is not such that it works") == ["effect", "drug", "works"])
        let custom = Analyzer(stopWords: .custom(["drug"]), stemsEnglish: false, minimumLength: 1)
        #expect(custom.terms("The drug") == ["the"])
        #expect(Analyzer.default.terms("Running runners ran easily; the generously-funded studies") ==
                ["run", "runner", "ran", "easili", "generous", "fund", "studi"])
        // Stop words are matched before stemming: "is" goes, "this" goes, "thing" is stemmed.
        #expect(Analyzer.default.terms("this is things") == ["thing"])
    }

    @Test func deterministicIdentity() {
        #expect(Analyzer.default.identity == "quiver-analyzer/1 stop=english stem=porter2 min=1 fold=no")
        #expect(Analyzer.plain.identity == "quiver-analyzer/1 stop=english stem=none min=2 fold=no")
        let a = Analyzer(stopWords: .custom(["x", "y"]), stemsEnglish: false)
        let b = Analyzer(stopWords: .custom(["y", "x"]), stemsEnglish: false)
        let c = Analyzer(stopWords: .custom(["y", "z"]), stemsEnglish: false)
        #expect(a.identity == b.identity && a.identity != c.identity && a.identity.hasPrefix("quiver-analyzer/1 stop=custom:"))
    }
}
