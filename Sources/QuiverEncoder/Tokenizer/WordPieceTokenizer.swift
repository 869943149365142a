import Foundation

/// BERT WordPiece tokenization, token for token the same as Hugging Face's `BertTokenizerFast`
/// (the `tokenizers` pipeline `BertNormalizer` → `BertPreTokenizer` → `WordPiece` → `[CLS] A [SEP]`)
/// that sentence-transformers uses for all-MiniLM-L6-v2 and other uncased BERT models.
///
/// The pipeline, in order:
/// 1. Special tokens (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`) written literally in the raw text
///    are matched first and become their own ids, as in Hugging Face (they are "added tokens" that are
///    not normalized).
/// 2. Cleaning: drop U+0000, U+FFFD and control characters (general category C*, except tab, CR, LF);
///    map every White_Space character to a space.
/// 3. CJK ideographs (the CJK Unified Ideographs blocks and extensions, and compatibility ideographs)
///    are surrounded by spaces so each becomes its own word.
/// 4. When lowercasing (uncased models) and unless told otherwise: NFD, drop nonspacing marks (Mn),
///    then lowercase each scalar with its full Unicode mapping (no context, like Rust's
///    `char::to_lowercase`, so a final sigma stays σ).
/// 5. Split on White_Space and isolate every punctuation character (ASCII punctuation, which includes
///    `$+<=>^`|~`, and Unicode P*).
/// 6. Each word: `[UNK]` if over `maxInputCharsPerWord` scalars, else greedy longest-match WordPiece
///    with the `##` prefix for continuations; a word with an unmatched rest is one `[UNK]`.
/// 7. Truncate the pieces to `maxLength - 2` and wrap in `[CLS] ... [SEP]`.
///
/// Thread safety: immutable; share one instance between threads.
public struct WordPieceTokenizer: Sendable {
    /// Options of the normalizer; the defaults are those of uncased BERT.
    public struct Options: Sendable, Equatable {
        /// Lowercase the text (uncased models).
        public var lowercase: Bool = true
        /// Strip accents (NFD, then drop Mn); `nil` follows `lowercase`, as Hugging Face does.
        public var stripAccents: Bool? = nil
        /// Put spaces around CJK ideographs.
        public var handleChineseChars: Bool = true
        /// Drop control characters and map whitespace to spaces.
        public var cleanText: Bool = true
        /// Longer words (in Unicode scalars) become one `[UNK]`.
        public var maxInputCharsPerWord: Int = 100
        /// The prefix of word continuations in the vocabulary.
        public var continuingSubwordPrefix: String = "##"

        /// Uncased BERT defaults.
        public init() {}
    }

    /// Token ids by piece.
    public let vocabulary: [String: Int32]
    /// The normalizer's options.
    public let options: Options
    /// Id of `[CLS]`, which opens every sequence.
    public let clsID: Int32
    /// Id of `[SEP]`, which closes every sequence.
    public let sepID: Int32
    /// Id of `[UNK]`, for words the vocabulary cannot spell.
    public let unknownID: Int32
    /// Id of `[PAD]`.
    public let padID: Int32
    // Special tokens matched literally in the raw text, longest first.
    private let specialTokens: [(text: [Unicode.Scalar], id: Int32)]

    /// A tokenizer over `vocabulary` (piece → id); the special tokens must be in it.
    public init(vocabulary: [String: Int32], options: Options = Options()) throws {
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else {
                throw EncoderError(.invalidModelFolder, "the vocabulary lacks the special token \(token)")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.options = options
        self.clsID = try id("[CLS]")
        self.sepID = try id("[SEP]")
        self.unknownID = try id("[UNK]")
        self.padID = try id("[PAD]")
        self.specialTokens = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]
            .compactMap { t in vocabulary[t].map { (Array(t.unicodeScalars), $0) } }
            .sorted { $0.text.count > $1.text.count }
    }

    /// Loads `vocab.txt`: one piece per line, the id is the line number (from 0).
    public init(vocabularyFile path: String, options: Options = Options()) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EncoderError(.invalidModelFolder, "cannot read the vocabulary", path: path)
        }
        var vocabulary: [String: Int32] = [:]
        var id: Int32 = 0
        // Split on LF only and drop a trailing CR, like Hugging Face's `load_vocab` (rstrip("\n")).
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var bytes = line
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            let piece = String(decoding: bytes, as: UTF8.self)
            if vocabulary[piece] == nil { vocabulary[piece] = id }
            id += 1
        }
        // A final newline leaves one empty "line" that is not a piece.
        if data.last == UInt8(ascii: "\n") { vocabulary.removeValue(forKey: "") }
        try self.init(vocabulary: vocabulary, options: options)
    }

    /// The token ids of `text`: `[CLS]`, at most `maxLength - 2` pieces, `[SEP]`.
    public func encode(_ text: String, maxLength: Int) -> [Int32] {
        precondition(maxLength >= 2, "maxLength must leave room for [CLS] and [SEP]")
        var ids: [Int32] = [clsID]
        let budget = maxLength - 2
        var pieces: [Int32] = []
        pieces.reserveCapacity(min(budget, text.utf8.count + 1))
        forEachSegment(of: text) { segment, specialID in
            if pieces.count >= budget { return false }
            if let specialID {
                pieces.append(specialID)
            } else {
                for word in words(of: normalize(segment)) {
                    appendWordPieces(of: word, to: &pieces)
                    if pieces.count >= budget { return false }
                }
            }
            return true
        }
        ids.append(contentsOf: pieces.prefix(budget))
        ids.append(sepID)
        return ids
    }

    /// The pieces of `text` as strings, without `[CLS]`/`[SEP]` and untruncated. For tests and debugging:
    /// it inverts the vocabulary on every call.
    public func tokenize(_ text: String) -> [String] {
        var byID: [Int32: String] = [:]
        for (piece, id) in vocabulary { byID[id] = piece }
        var pieces: [Int32] = []
        forEachSegment(of: text) { segment, specialID in
            if let specialID { pieces.append(specialID) } else {
                for word in words(of: normalize(segment)) { appendWordPieces(of: word, to: &pieces) }
            }
            return true
        }
        return pieces.map { byID[$0] ?? "[UNK]" }
    }

    // MARK: - Pipeline steps

    // Splits the raw text around literal special tokens; `body` returns false to stop early.
    private func forEachSegment(of text: String, _ body: ([Unicode.Scalar], Int32?) -> Bool) {
        let scalars = Array(text.unicodeScalars)
        // Fast path: no "[" means no special token.
        guard scalars.contains("[") else { _ = body(scalars, nil); return }
        var start = 0, i = 0
        while i < scalars.count {
            if scalars[i] == "[", let match = specialTokens.first(where: { token in
                i + token.text.count <= scalars.count && scalars[i..<(i + token.text.count)].elementsEqual(token.text)
            }) {
                if start < i, !body(Array(scalars[start..<i]), nil) { return }
                if !body([], match.id) { return }
                i += match.text.count
                start = i
            } else {
                i += 1
            }
        }
        if start < scalars.count { _ = body(Array(scalars[start...]), nil) }
    }

    /// Steps 2-4: cleaning, CJK spacing, accent stripping and lowercasing.
    func normalize(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(input.count + 8)
        var asciiOnly = true
        for c in input {
            if options.cleanText {
                if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
                if Self.isWhitespace(c) { out.append(" "); continue }
            }
            if options.handleChineseChars && Self.isCJK(c) {
                out.append(" "); out.append(c); out.append(" ")
                asciiOnly = false
                continue
            }
            if !c.isASCII { asciiOnly = false }
            out.append(c)
        }
        let strip = options.stripAccents ?? options.lowercase
        if asciiOnly {
            // ASCII has no marks and lowercases to ASCII: skip the Unicode machinery.
            if options.lowercase {
                for i in out.indices where out[i].value >= 65 && out[i].value <= 90 {
                    out[i] = Unicode.Scalar(out[i].value + 32)!
                }
            }
            return out
        }
        if strip {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: out)
            let decomposed = String(s).decomposedStringWithCanonicalMapping
            out = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if options.lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(out.count)
            for c in out {
                if c.isASCII {
                    lowered.append(c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32)! : c)
                } else {
                    lowered.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
                }
            }
            out = lowered
        }
        return out
    }

    /// Step 5: whitespace split with punctuation isolated.
    func words(of text: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for i in text.indices {
            let c = text[i]
            if c.properties.isWhitespace {
                if start < i { words.append(text[start..<i]) }
                start = i + 1
            } else if Self.isPunctuation(c) {
                if start < i { words.append(text[start..<i]) }
                words.append(text[i...i])
                start = i + 1
            }
        }
        if start < text.count { words.append(text[start...]) }
        return words
    }

    /// Step 6: greedy longest-match-first WordPiece of one word.
    func appendWordPieces(of word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        guard word.count <= options.maxInputCharsPerWord else { ids.append(unknownID); return }
        let chars = Array(word)
        var pieces: [Int32] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: Int32? = nil
            while start < end {
                var candidate = start > 0 ? options.continuingSubwordPrefix : ""
                candidate.unicodeScalars.append(contentsOf: chars[start..<end])
                if let id = vocabulary[candidate] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unknownID); return }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }

    // MARK: - Character classes (those of the `tokenizers` crate's BERT normalizer and pre-tokenizer)

    /// Control: general category Cc, Cf, Cn, Co or Cs, except tab, LF and CR (which count as whitespace).
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// Whitespace: tab, LF, CR or any White_Space character.
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    /// Punctuation: ASCII punctuation (33-47, 58-64, 91-96, 123-126) or Unicode P*.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        if v < 128 { return false }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK ideograph blocks BERT splits character by character (Hangul and kana are not among them).
    static func isCJK(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
