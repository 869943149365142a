/// How error messages show text a user supplied (collection names, ids, field names, values,
/// paths): control characters (and the bidirectional controls that can reorder a terminal line)
/// are escaped as `\n`, `\t`, `\r` or `\u{1B}`, and text longer than a limit is cut after the limit
/// and followed by its whole length in bytes, so a 10 KB name is not echoed whole and a name can
/// neither break a message into lines nor send escape sequences to a terminal.
///
/// `QuiverError`'s descriptions use it for every name, id and path they hold; the `quiver` CLI uses
/// it for its own messages and passes every error message through `escapingControls` before
/// printing it.
public enum MessageText {
    /// The characters of a name or value shown before it is cut.
    public static let limit = 64
    /// The characters of a path shown before it is cut.
    public static let pathLimit = 256

    /// `s` escaped and, when longer than `limit` characters, cut: `abc…` followed by ` (10240 bytes)`.
    public static func escaped<S: StringProtocol>(_ s: S, limit: Int = MessageText.limit) -> String {
        guard s.count > limit else { return escapingControls(s) }
        return escapingControls(s.prefix(limit)) + "… (\(s.utf8.count) bytes)"
    }

    /// `s` shortened and escaped as `escaped` does, in single quotes: `'abc'`, or `'abc…' (10240 bytes)`.
    public static func quoted<S: StringProtocol>(_ s: S, limit: Int = MessageText.limit) -> String {
        guard s.count > limit else { return "'" + escapingControls(s) + "'" }
        return "'" + escapingControls(s.prefix(limit)) + "…' (\(s.utf8.count) bytes)"
    }

    /// A path, shortened at `pathLimit` characters and escaped.
    public static func path<S: StringProtocol>(_ s: S) -> String { escaped(s, limit: pathLimit) }

    /// `s` with every control character escaped (nothing cut). With `keepingNewlines`, a line feed
    /// stays as it is (for a whole message that has lines of its own, such as a caret diagnostic).
    public static func escapingControls<S: StringProtocol>(_ s: S, keepingNewlines: Bool = false) -> String {
        guard s.unicodeScalars.contains(where: { needsEscape($0) && !(keepingNewlines && $0 == "\n") }) else { return String(s) }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n" where keepingNewlines: out.unicodeScalars.append(scalar)
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar): out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// C0 and C1 controls, DEL, and the bidirectional embedding, override and isolate controls.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// The candidate closest to `word` by edit distance, when it is close enough to be what was
    /// meant (at most a third of the word's length, at least 1, or `word` is a prefix of it): for
    /// "did you mean" in messages. Nil when nothing is close.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        let w = Array(word.lowercased())
        guard !w.isEmpty else { return nil }
        var best: (String, Int)?
        for c in candidates {
            let d = editDistance(w, Array(c.lowercased()))
            if best == nil || d < best!.1 { best = (c, d) }
        }
        guard let (c, d) = best, d > 0 else { return nil }
        if d <= max(1, w.count / 3) || (w.count >= 3 && c.lowercased().hasPrefix(word.lowercased())) { return c }
        return nil
    }

    /// Levenshtein distance (insertions, deletions, substitutions; a swap of neighbours counts 1).
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var before = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] { d = min(d, before[j - 2] + 1) }
                current[j] = d
            }
            (before, previous, current) = (previous, current, before)
        }
        return previous[b.count]
    }
}
