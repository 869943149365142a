/// Why a filter was rejected, and where.
///
/// `offset` is the 0-based UTF-8 byte offset into the input of the token or JSON value at fault
/// (for an unexpected end of input, the input's length); `line` and `column` are the same place,
/// 1-based, with the column counted in characters (grapheme clusters) so that `caretDiagnostic`
/// can point at it under the input line. For the JSON form `path` names the value at fault
/// (`$or[1].year.$gte`); for the text form it is nil.
public struct FilterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, in one sentence (no position; `description` adds it).
    public let message: String
    /// The 0-based UTF-8 byte offset of the fault in the input.
    public let offset: Int
    /// The 1-based line of the fault (always 1 for single-line input).
    public let line: Int
    /// The 1-based column of the fault on its line, in characters.
    public let column: Int
    /// The JSON path of the value at fault, for the JSON form.
    public let path: String?

    /// An error at `offset`, before its line and column are known (see `located(in:)`).
    init(_ message: String, offset: Int, path: String? = nil) {
        self.message = message
        self.offset = offset
        self.line = 1
        self.column = offset + 1
        self.path = path
    }

    private init(message: String, offset: Int, line: Int, column: Int, path: String?) {
        self.message = message
        self.offset = offset
        self.line = line
        self.column = column
        self.path = path
    }

    /// This error with `line` and `column` computed from `offset` in `input` (the UTF-8 bytes
    /// that were parsed).
    func located(in input: [UInt8]) -> FilterError {
        let end = min(max(offset, 0), input.count)
        var line = 1
        var lineStart = 0
        for i in 0..<end where input[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        let column = String(decoding: input[lineStart..<end], as: UTF8.self).count + 1
        return FilterError(message: message, offset: offset, line: line, column: column, path: path)
    }

    /// `line L, column C: message` (and the JSON path when there is one).
    public var description: String {
        var s = "line \(line), column \(column)"
        if let path { s += " (at \(path))" }
        return s + ": " + message
    }

    /// Two lines for a terminal: the input's line at fault and a caret under the column, e.g.
    /// ```
    /// year >= "x" and lang ~ "en"
    ///                      ^ unexpected character '~'
    /// ```
    public func caretDiagnostic(source: String) -> String {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        let text = line - 1 < lines.count ? String(lines[line - 1]) : ""
        return text + "\n" + String(repeating: " ", count: max(column - 1, 0)) + "^ " + message
    }
}
