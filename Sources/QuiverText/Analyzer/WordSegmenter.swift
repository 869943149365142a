// Word segmentation: a simplified form of Unicode's default word boundaries (UAX #29) for search.
//
// A word is a maximal run of word scalars:
//   - letters (Unicode Alphabetic) and numbers (Nd, Nl, No), and the connector '_' (Pc);
//   - combining marks (Mn, Mc, Me) continue a word but never start one;
//   - an apostrophe (' or U+2019) joins two letters ("don't", "o'neill"); elsewhere it splits;
//   - '.' or ',' joins two digits ("3.5", "1,000"), as UAX #29's MidNum; elsewhere it splits;
//   - everything else splits: spaces, punctuation, symbols, and the hyphen ("covid-19" is
//     "covid" + "19", so that a query for either part finds it).
// Scripts written without spaces are split per character the way Lucene's StandardTokenizer does:
// each Han ideograph and each Hiragana character is a word by itself (a query for "東京" then
// matches documents with both characters). Katakana, Hangul, Thai and the rest keep the run rule.
// Each word is reported as a slice of the input (not yet lowercased).

/// Splits text into words (rules at the top of WordSegmenter.swift). Pure; thread-safe.
public enum WordSegmenter {
    /// One word of the input.
    public struct Word: Sendable, Hashable {
        /// The word exactly as it appears in the input (not lowercased).
        public var text: Substring
        /// Whether it is a single ideograph or Hiragana character (exempt from a minimum length).
        public var isIdeographic: Bool
    }

    /// The words of `text`, in order.
    public static func words(_ text: String) -> [Word] {
        var out: [Word] = []
        let scalars = text.unicodeScalars
        var i = scalars.startIndex
        var wordStart: String.UnicodeScalarView.Index?
        var previous: Unicode.Scalar?  // the last scalar of the current word, when in one

        func close(at end: String.UnicodeScalarView.Index) {
            if let s = wordStart { out.append(Word(text: Substring(scalars[s..<end]), isIdeographic: false)) }
            wordStart = nil
            previous = nil
        }

        while i < scalars.endIndex {
            let c = scalars[i]
            let next = scalars.index(after: i)
            if isSingleCharacterWord(c) {
                close(at: i)
                // A following combining mark belongs to the character (e.g. a dakuten).
                var end = next
                while end < scalars.endIndex, isMark(scalars[end]) { end = scalars.index(after: end) }
                out.append(Word(text: Substring(scalars[i..<end]), isIdeographic: true))
                i = end
                continue
            }
            let kind = classify(c)
            if kind == .word || (kind == .mark && wordStart != nil) {
                if wordStart == nil { wordStart = i }
                previous = c
                i = next
                continue
            }
            // A joiner between two word scalars of the right kinds stays inside the word.
            if wordStart != nil, let p = previous, next < scalars.endIndex {
                let after = scalars[next]
                if isApostrophe(c), p.properties.isAlphabetic, after.properties.isAlphabetic {
                    previous = c
                    i = next
                    continue
                }
                if (c == "." || c == ","), isDigit(p), isDigit(after) {
                    previous = c
                    i = next
                    continue
                }
            }
            close(at: i)
            i = next
        }
        close(at: scalars.endIndex)
        return out
    }

    enum Kind { case word, mark, other }

    static func classify(_ c: Unicode.Scalar) -> Kind {
        if c.isASCII {
            let v = c.value
            if (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) || (v >= 0x30 && v <= 0x39) || v == 0x5F { return .word }
            return .other
        }
        let p = c.properties
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        case .decimalNumber, .letterNumber, .otherNumber, .connectorPunctuation: return .word
        default: return p.isAlphabetic ? .word : .other
        }
    }

    static func isMark(_ c: Unicode.Scalar) -> Bool { !c.isASCII && classify(c) == .mark }

    static func isDigit(_ c: Unicode.Scalar) -> Bool {
        c.isASCII ? (c.value >= 0x30 && c.value <= 0x39) : c.properties.generalCategory == .decimalNumber
    }

    static func isApostrophe(_ c: Unicode.Scalar) -> Bool { c == "'" || c == "\u{2019}" }

    /// Han ideographs and Hiragana: one word per character.
    static func isSingleCharacterWord(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x3040 { return false }
        return c.properties.isIdeographic || (0x3040...0x309F).contains(c.value)
    }
}
