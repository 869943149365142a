// The Porter2 ("Snowball English") stemmer, written from the algorithm's published description
// (snowballstem.org, english.sbl), and tested against the Snowball reference output on SciFact's
// vocabulary (Tests/QuiverTextTests/Fixtures/porter2.tsv).
//
// Vowels are a e i o u y; every other scalar (including non-ASCII letters) is a non-vowel, as in
// the reference. A 'Y' marks a y that acts as a consonant; it is turned back into 'y' at the end.
// R1 is the part of the word after the first non-vowel that follows a vowel (or after one of a few
// prefixes such as "gener"), R2 the same region taken again inside R1. Each step finds the LONGEST
// of its suffixes that ends the word and then either applies its rule or does nothing (a failed
// condition never falls back to a shorter suffix).

/// Porter2 (Snowball English) stemming of lowercase words: `"running" -> "run"`,
/// `"generously" -> "generous"`, `"ponies" -> "poni"`. Pure and thread-safe.
public enum EnglishStemmer {
    /// The stem of a lowercase word. Words of fewer than three scalars are returned unchanged.
    public static func stem(_ word: String) -> String {
        if let special = exceptions[word] { return special }
        var w = Array(word.unicodeScalars.lazy.map(\.value))
        if w.count < 3 { return word }
        var s = Porter2Word(w)
        s.run()
        w = s.w
        var out = String.UnicodeScalarView()
        for v in w { if let u = Unicode.Scalar(v) { out.append(u) } }  // always a scalar: input scalars or ASCII
        return String(out)
    }

    /// Whole words with a fixed stem (the reference's `exception1`): irregular forms and words the
    /// rules would over-stem.
    static let exceptions: [String: String] = [
        "skis": "ski", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie",
        "idly": "idl", "gently": "gentl", "ugly": "ugli", "early": "earli", "only": "onli", "singly": "singl",
        "sky": "sky", "news": "news", "howe": "howe", "atlas": "atlas", "cosmos": "cosmos", "bias": "bias", "andes": "andes",
    ]
}

/// One word being stemmed, as scalar values, with its regions.
private struct Porter2Word {
    var w: [UInt32]
    var p1 = 0
    var p2 = 0

    init(_ w: [UInt32]) { self.w = w }

    static func c(_ s: Unicode.Scalar) -> UInt32 { s.value }
    static let Y = c("Y")

    static func isVowel(_ v: UInt32) -> Bool {
        switch v {
        case c("a"), c("e"), c("i"), c("o"), c("u"), c("y"): return true
        default: return false
        }
    }

    static func ascii(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    /// Prefixes after which R1 starts (the reference's exceptional R1 forms).
    static let r1Prefixes = ["gener", "commun", "arsen", "past", "univers", "later", "emerg", "organ", "inter"].map(ascii)
    /// Words left alone after step 1a (the reference's `exception2`).
    static let invariantAfter1a: Set<[UInt32]> = Set(["inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed", "evening"].map(ascii))

    func ends(with suffix: [UInt32]) -> Bool {
        w.count >= suffix.count && w[(w.count - suffix.count)...].elementsEqual(suffix)
    }

    /// The longest of `suffixes` that ends the word, with its index in `suffixes`.
    func longestSuffix(_ suffixes: [[UInt32]]) -> (index: Int, start: Int)? {
        var best: (index: Int, start: Int)?
        for (i, s) in suffixes.enumerated() where ends(with: s) {
            if best.map({ s.count > suffixes[$0.index].count }) ?? true { best = (i, w.count - s.count) }
        }
        return best
    }

    mutating func replaceSuffix(from start: Int, with replacement: String) {
        w.removeSubrange(start...)
        w.append(contentsOf: Self.ascii(replacement))
    }

    /// Whether `w[0..<end]` ends in a short syllable.
    func endsInShortSyllable(_ end: Int) -> Bool {
        if end >= 3 {
            let last = w[end - 1]
            if !Self.isVowel(w[end - 3]) && Self.isVowel(w[end - 2]) && !Self.isVowel(last)
                && last != Self.c("w") && last != Self.c("x") && last != Self.Y {
                return true
            }
        }
        return end == 2 && Self.isVowel(w[0]) && !Self.isVowel(w[1])
    }

    func containsVowel(_ range: Range<Int>) -> Bool { w[range].contains(where: Self.isVowel) }

    mutating func run() {
        prelude()
        markRegions()
        step0()
        step1a()
        if Self.invariantAfter1a.contains(w) { finish(); return }
        step1b()
        step1c()
        step2()
        step3()
        step4()
        step5()
        finish()
    }

    mutating func prelude() {
        if w.first == Self.c("'") { w.removeFirst() }
        if w.first == Self.c("y") { w[0] = Self.Y }
        if w.count > 1 {
            for i in 1..<w.count where w[i] == Self.c("y") && Self.isVowel(w[i - 1]) { w[i] = Self.Y }
        }
    }

    /// R1 starts after the first vowel-then-non-vowel (or a listed prefix); R2 likewise inside R1.
    mutating func markRegions() {
        func afterVowelNonVowel(from start: Int) -> Int {
            var i = start
            while i < w.count && !Self.isVowel(w[i]) { i += 1 }
            while i < w.count && Self.isVowel(w[i]) { i += 1 }
            return i < w.count ? i + 1 : w.count
        }
        if let prefix = Self.r1Prefixes.first(where: { w.starts(with: $0) }) {
            p1 = prefix.count
        } else {
            p1 = afterVowelNonVowel(from: 0)
        }
        p2 = afterVowelNonVowel(from: p1)
    }

    static let step0Suffixes = ["'s'", "'s", "'"].map(ascii)
    mutating func step0() {
        if let m = longestSuffix(Self.step0Suffixes) { w.removeSubrange(m.start...) }
    }

    static let step1aSuffixes = ["sses", "ied", "ies", "us", "ss", "s"].map(ascii)
    mutating func step1a() {
        guard let m = longestSuffix(Self.step1aSuffixes) else { return }
        switch m.index {
        case 0: replaceSuffix(from: m.start, with: "ss")
        case 1, 2: replaceSuffix(from: m.start, with: m.start > 1 ? "i" : "ie")
        case 5:
            // Delete the s if a vowel occurs before the letter just ahead of it (gaps -> gap, gas stays).
            if m.start >= 1 && containsVowel(0..<(m.start - 1)) { w.removeLast() }
        default: break
        }
    }

    static let step1bSuffixes = ["eedly", "ingly", "edly", "eed", "ing", "ed"].map(ascii)
    static let addEAfter = ["at", "bl", "iz"].map(ascii)
    static let doubles = ["bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"].map(ascii)
    mutating func step1b() {
        guard let m = longestSuffix(Self.step1bSuffixes) else { return }
        if m.index == 0 || m.index == 3 {
            if m.start >= p1 { replaceSuffix(from: m.start, with: "ee") }
            return
        }
        guard containsVowel(0..<m.start) else { return }
        w.removeSubrange(m.start...)
        if Self.addEAfter.contains(where: { ends(with: $0) }) {
            w.append(Self.c("e"))
        } else if Self.doubles.contains(where: { ends(with: $0) }) {
            // Undouble (hopp -> hop), except a vowel-initial three-letter stem (add, ebb, egg).
            if !(w.count == 3 && Self.isVowel(w[0])) { w.removeLast() }
        } else if p1 == w.count && endsInShortSyllable(w.count) {
            w.append(Self.c("e"))
        }
    }

    mutating func step1c() {
        let n = w.count
        guard n > 2, w[n - 1] == Self.c("y") || w[n - 1] == Self.Y, !Self.isVowel(w[n - 2]) else { return }
        w[n - 1] = Self.c("i")
    }

    static let step2Rules: [(String, String)] = [
        ("ization", "ize"), ("ogist", "og"), ("ational", "ate"), ("fulness", "ful"), ("ousness", "ous"), ("iveness", "ive"),
        ("tional", "tion"), ("biliti", "ble"), ("lessli", "less"),
        ("entli", "ent"), ("ation", "ate"), ("alism", "al"), ("aliti", "al"), ("ousli", "ous"), ("iviti", "ive"), ("fulli", "ful"),
        ("enci", "ence"), ("anci", "ance"), ("abli", "able"), ("izer", "ize"), ("ator", "ate"), ("alli", "al"),
        ("bli", "ble"), ("ogi", "og"), ("li", ""),
    ]
    static let step2Suffixes = step2Rules.map { ascii($0.0) }
    static let validLiEndings = Set("cdeghkmnrt".unicodeScalars.map(\.value))
    mutating func step2() {
        guard let m = longestSuffix(Self.step2Suffixes), m.start >= p1 else { return }
        let (suffix, replacement) = Self.step2Rules[m.index]
        if suffix == "ogi" && !(m.start >= 1 && w[m.start - 1] == Self.c("l")) { return }
        if suffix == "li" && !(m.start >= 1 && Self.validLiEndings.contains(w[m.start - 1])) { return }
        replaceSuffix(from: m.start, with: replacement)
    }

    static let step3Rules: [(String, String)] = [
        ("ational", "ate"), ("tional", "tion"), ("alize", "al"), ("icate", "ic"), ("iciti", "ic"),
        ("ative", ""), ("ical", "ic"), ("ness", ""), ("ful", ""),
    ]
    static let step3Suffixes = step3Rules.map { ascii($0.0) }
    mutating func step3() {
        guard let m = longestSuffix(Self.step3Suffixes), m.start >= p1 else { return }
        let (suffix, replacement) = Self.step3Rules[m.index]
        if suffix == "ative" && m.start < p2 { return }
        replaceSuffix(from: m.start, with: replacement)
    }

    static let step4Suffixes = ["ement", "ance", "ence", "able", "ible", "ment", "ant", "ent", "ism", "ate", "iti",
                                "ous", "ive", "ize", "ion", "al", "er", "ic"].map(ascii)
    static let step4IonIndex = step4Suffixes.firstIndex(of: ascii("ion")) ?? -1
    mutating func step4() {
        guard let m = longestSuffix(Self.step4Suffixes), m.start >= p2 else { return }
        if m.index == Self.step4IonIndex {
            guard m.start >= 1, w[m.start - 1] == Self.c("s") || w[m.start - 1] == Self.c("t") else { return }
        }
        w.removeSubrange(m.start...)
    }

    mutating func step5() {
        guard let last = w.last else { return }
        let start = w.count - 1
        if last == Self.c("e") {
            if start >= p2 || (start >= p1 && !endsInShortSyllable(start)) { w.removeLast() }
        } else if last == Self.c("l") {
            if start >= p2 && start >= 1 && w[start - 1] == Self.c("l") { w.removeLast() }
        }
    }

    mutating func finish() {
        for i in w.indices where w[i] == Self.Y { w[i] = Self.c("y") }
    }
}
