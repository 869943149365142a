import Foundation
import Testing
@testable import QuiverEncoder

/// Hand-made vocabulary cases for each step of the BERT pipeline; the golden test covers the real one.
struct WordPieceTokenizerTests {
    static let pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "un", "##aff",
                         "##able", "cafe", "naive", "中", "文", "a", "##b", "+", "$", "sep", "[", "]", "x", "σ", "ς", "i"]
    static let tokenizer: WordPieceTokenizer = {
        var vocab: [String: Int32] = [:]
        for (i, p) in pieces.enumerated() { vocab[p] = Int32(i) }
        // The pieces above are all valid, so this cannot fail; a failure would surface in every test.
        return (try? WordPieceTokenizer(vocabulary: vocab)) ?? { fatalError("test vocabulary rejected") }()
    }()

    func pieces(_ text: String) -> [String] { Self.tokenizer.tokenize(text) }

    @Test func wrapsInClsAndSep() {
        #expect(Self.tokenizer.encode("hello", maxLength: 10) == [2, 5, 3])
        #expect(Self.tokenizer.encode("", maxLength: 10) == [2, 3])
        #expect(Self.tokenizer.encode(" \t\n ", maxLength: 10) == [2, 3])
    }

    @Test func lowercasesAndSplitsPunctuation() {
        #expect(pieces("Hello, WORLD!") == ["hello", ",", "world", "!"])
        #expect(pieces("a+$") == ["a", "+", "$"])  // ASCII symbols count as punctuation in BERT
    }

    @Test func greedyLongestMatchWithContinuations() {
        #expect(pieces("unaffable") == ["un", "##aff", "##able"])
        #expect(pieces("abbb") == ["a", "##b", "##b", "##b"])
    }

    @Test func wordWithUnmatchedRestIsOneUnknown() {
        #expect(pieces("unaffablex") == ["[UNK]"])
        #expect(pieces("hello zzz world") == ["hello", "[UNK]", "world"])
    }

    @Test func wordsOverOneHundredCharactersAreUnknown() {
        let hundred = "a" + String(repeating: "b", count: 99)
        #expect(pieces(hundred).count == 100)
        #expect(pieces(hundred + "b") == ["[UNK]"])
    }

    @Test func stripsAccentsComposedAndDecomposed() {
        #expect(pieces("Café naïve") == ["cafe", "naive"])
        #expect(pieces("Cafe\u{301} nai\u{308}ve") == ["cafe", "naive"])
    }

    @Test func lowercasesWithoutFinalSigmaContext() {
        // The `tokenizers` crate lowercases scalar by scalar: a word-final Σ becomes σ, not ς.
        #expect(pieces("Σ xΣ") == ["σ", "[UNK]"])
        #expect(pieces("İ") == ["i"])  // U+0130: NFD gives I + U+0307, the mark is stripped
    }

    @Test func splitsCJKIdeographs() {
        #expect(pieces("中文") == ["中", "文"])
        #expect(pieces("a中b") == ["a", "中", "[UNK]"])
    }

    @Test func dropsControlAndFormatCharacters() {
        #expect(pieces("hel\u{0}lo") == ["hello"])
        #expect(pieces("hel\u{7}lo") == ["hello"])
        #expect(pieces("hel\u{200B}lo") == ["hello"])  // zero-width space is Cf
        #expect(pieces("hel\u{AD}lo") == ["hello"])    // soft hyphen is Cf
        #expect(pieces("hel\u{FFFD}lo") == ["hello"])
    }

    @Test func mapsUnicodeWhitespaceToSpaces() {
        #expect(pieces("hello\u{A0}world") == ["hello", "world"])
        #expect(pieces("hello\u{3000}world\r\nx") == ["hello", "world", "x"])
    }

    @Test func isolatesUnicodePunctuation() {
        #expect(pieces("hello—world") == ["hello", "[UNK]", "world"])  // em dash is Pd
        #expect(pieces("«hello»") == ["[UNK]", "hello", "[UNK]"])     // Pi / Pf
    }

    @Test func matchesLiteralSpecialTokensBeforeNormalizing() {
        #expect(Self.tokenizer.encode("hello [SEP] world", maxLength: 10) == [2, 5, 3, 7, 3])
        #expect(Self.tokenizer.encode("x[MASK]x", maxLength: 10) == [2, 23, 4, 23, 3])
        // Only the exact spelling is special; lowercase is ordinary text.
        #expect(pieces("[sep]") == ["[", "sep", "]"])
    }

    @Test func truncatesToMaxLength() {
        let ids = Self.tokenizer.encode("hello world hello world hello", maxLength: 5)
        #expect(ids == [2, 5, 7, 5, 3])
        #expect(Self.tokenizer.encode(String(repeating: "a ", count: 1000), maxLength: 256).count == 256)
    }

    @Test func readsVocabularyFileByLineNumber() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("vocab.txt")
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n".write(to: file, atomically: true, encoding: .utf8)
        let t = try WordPieceTokenizer(vocabularyFile: file.path)
        #expect(t.vocabulary.count == 6)
        #expect(t.encode("Hellos", maxLength: 8) == [2, 4, 5, 3])
    }

    @Test func vocabularyWithoutSpecialTokensIsRejected() {
        #expect(throws: EncoderError.self) { try WordPieceTokenizer(vocabulary: ["hello": 0]) }
    }
}
