/// Writes a document as one line of JSON. Written by hand rather than with `JSONEncoder` so that
/// the types survive a round trip: a float metadata value with an integral value is written `2.0`
/// (JSONEncoder writes `2`, which reads back as an integer).
enum JSONLine {
    static func encode(_ d: Document) -> [UInt8] {
        var out = "{\"id\":"
        string(d.id, into: &out)
        if let t = d.text {
            out += ",\"text\":"
            string(t, into: &out)
        }
        out += ",\"metadata\":{"
        for (i, key) in d.metadata.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            string(key, into: &out)
            out += ":"
            value(d.metadata[key]!, into: &out)
        }
        out += "}"
        if let v = d.vector {
            out += ",\"vector\":"
            vector(v, into: &out)
        }
        out += "}\n"
        return Array(out.utf8)
    }

    /// A metadata value; a float always with a point or an exponent, so that it reads back as one.
    static func value(_ v: MetadataValue, into out: inout String) {
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let n): out += String(n)
        case .double(let x): out += x.description  // "2.0", "0.25", "1e-05": always reads back as a float
        case .string(let s): string(s, into: &out)
        case .stringList(let l): strings(l, into: &out)
        }
    }

    /// A JSON array of strings.
    static func strings(_ l: [String], into out: inout String) {
        out += "["
        for (j, s) in l.enumerated() {
            if j > 0 { out += "," }
            string(s, into: &out)
        }
        out += "]"
    }

    /// A JSON array of floats, each the shortest text that reads back as the same float32.
    static func vector(_ v: [Float], into out: inout String) {
        out += "["
        for (i, x) in v.enumerated() {
            if i > 0 { out += "," }
            out += x.description
        }
        out += "]"
    }

    /// A JSON string literal: `"` and `\` escaped, \n \r \t and the other control characters as
    /// escapes (`\u001f`), every other scalar as it is. The filter forms render strings with it too.
    static func string(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
