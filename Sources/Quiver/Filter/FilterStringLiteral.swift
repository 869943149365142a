// The quoted strings of both filter forms (and of documents' JSON, which the JSON reader also reads).
// One reader serves both; the dialect decides the three places where they differ:
//
//                      JSON (RFC 8259)                       text form
//   quotes             "                                     " or '
//   raw control bytes  refused (must be escaped)             kept
//   escapes            \" \\ \/ \b \f \n \r \t \uXXXX         the same, plus \' and \u{X...}
//   \uXXXX             UTF-16: a high surrogate must be      one scalar by itself (a surrogate is
//                      followed by an escaped low one        not a scalar: refused)
//
// The decoded bytes must be valid UTF-8.

/// The rules a quoted string is read by (see the table at the top of FilterStringLiteral.swift).
enum FilterStringDialect {
    case json
    case text
}

/// A reader positioned in UTF-8 input: the JSON reader and the text-form lexer.
protocol FilterByteReader {
    var bytes: [UInt8] { get }
    var position: Int { get set }
}

extension FilterByteReader {
    /// The string whose opening quote is at `position` (it also closes it), escapes decoded;
    /// `position` ends past the closing quote.
    mutating func readQuotedString(_ dialect: FilterStringDialect) throws(FilterError) -> String {
        let start = position
        let quote = bytes[position]
        position += 1
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else { throw FilterError("this string is not closed", offset: start) }
            let b = bytes[position]
            if b == quote { position += 1; break }
            if b < 0x20, dialect == .json {
                throw FilterError("a control character must be escaped inside a string", offset: position)
            }
            if b != UInt8(ascii: "\\") { out.append(b); position += 1; continue }
            let escapeStart = position
            position += 1
            guard position < bytes.count else { throw FilterError("this string is not closed", offset: start) }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "'") where dialect == .text: out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let u = dialect == .json ? try readUTF16Escape(escapeStart) : try readScalarEscape(escapeStart)
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw FilterError("unknown escape '\\\(Character(Unicode.Scalar(e)))' in a string", offset: escapeStart)
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw FilterError("a string is not valid UTF-8", offset: start) }
        return s
    }

    /// JSON's `\uXXXX` after the `u` (a high surrogate takes the `\uXXXX` low surrogate after it).
    private mutating func readUTF16Escape(_ escapeStart: Int) throws(FilterError) -> Unicode.Scalar {
        var scalar = try readHex4(escapeStart)
        if scalar >= 0xD800 && scalar < 0xDC00 {
            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                throw FilterError("a \\u high surrogate must be followed by a low surrogate", offset: escapeStart)
            }
            position += 2
            let low = try readHex4(escapeStart)
            guard low >= 0xDC00 && low < 0xE000 else { throw FilterError("a \\u high surrogate must be followed by a low surrogate", offset: escapeStart) }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if scalar >= 0xDC00 && scalar < 0xE000 {
            throw FilterError("a \\u low surrogate without a high surrogate", offset: escapeStart)
        }
        guard let u = Unicode.Scalar(scalar) else { throw FilterError("invalid \\u escape", offset: escapeStart) }
        return u
    }

    private mutating func readHex4(_ escapeStart: Int) throws(FilterError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw FilterError("a \\u escape needs four hex digits", offset: escapeStart) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw FilterError("a \\u escape needs four hex digits", offset: escapeStart)
            }
            v = v * 16 + d
            position += 1
        }
        return v
    }

    /// The text form's `\u{X...}` (up to eight hex digits) or `\uXXXX` after the `u`: one scalar.
    private mutating func readScalarEscape(_ escapeStart: Int) throws(FilterError) -> Unicode.Scalar {
        var hex = ""
        if position < bytes.count, bytes[position] == UInt8(ascii: "{") {
            position += 1
            while position < bytes.count, bytes[position] != UInt8(ascii: "}"), hex.count <= 8 {
                hex.append(Character(Unicode.Scalar(bytes[position])))
                position += 1
            }
            guard position < bytes.count, bytes[position] == UInt8(ascii: "}") else {
                throw FilterError("a \\u{...} escape is not closed", offset: escapeStart)
            }
            position += 1
        } else {
            guard position + 4 <= bytes.count else { throw FilterError("a \\u escape needs four hex digits", offset: escapeStart) }
            hex = String(decoding: bytes[position..<position + 4], as: UTF8.self)
            position += 4
        }
        guard let v = UInt32(hex, radix: 16), let u = Unicode.Scalar(v) else {
            throw FilterError("'\\u\(hex)' is not a Unicode scalar", offset: escapeStart)
        }
        return u
    }
}
