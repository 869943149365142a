import Foundation
import QuiverCore

/// Where the next row of an input starts: what an import checkpoint records.
struct SourcePosition: Codable, Equatable, Sendable {
    /// Byte offset in the input file.
    var offset: Int
    /// Rows consumed before it.
    var rows: Int
    /// Lines consumed before it (text formats), or the index of the next vector.
    var line: Int
}

/// One row of an input: a document, or a reason why the row is not one.
enum SourceRow {
    case document(Document, location: Int)
    case bad(location: Int, reason: String)
}

/// A streaming reader of one input format.
protocol RowSource {
    /// "line" for text formats, "vector" for bare vectors.
    var locationKind: String { get }
    var position: SourcePosition { get }
    var totalBytes: Int { get }
    /// The next row, or nil at the end of the input. Damage that makes the rest of the file
    /// unreadable (a bad header, a vector length that breaks the framing) throws.
    mutating func next() throws -> SourceRow?
    /// Continues after `position` (a resumed import).
    mutating func seek(to position: SourcePosition) throws
}

/// The longest JSONL line or CSV record accepted (a longer one is a bad row, read past in bounded memory).
let maxRecordBytes = 64 << 20

// MARK: - JSON Lines

struct JSONLSource: RowSource {
    var stream: ByteStream
    var line = 0
    var rows = 0
    var locationKind: String { "line" }
    var totalBytes: Int { stream.size }
    var position: SourcePosition { SourcePosition(offset: stream.offset, rows: rows, line: line) }

    init(path: String) throws { stream = try ByteStream(path: path) }

    mutating func seek(to p: SourcePosition) throws {
        stream.seek(to: p.offset)
        line = p.line
        rows = p.rows
    }

    mutating func next() throws -> SourceRow? {
        while let (bytes, tooLong) = try stream.line(limit: maxRecordBytes) {
            line += 1
            if tooLong {
                rows += 1
                return .bad(location: line, reason: "the line is longer than \(maxRecordBytes) bytes")
            }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            rows += 1
            do {
                return .document(try Document(json: Data(bytes)), location: line)
            } catch let e as QuiverError {
                return .bad(location: line, reason: e.description)
            }
        }
        return nil
    }
}

// MARK: - CSV

/// RFC 4180 CSV: a header row, fields separated by the delimiter, fields in double quotes may hold
/// delimiters, newlines and doubled quotes. The id, text and vector columns are chosen by name; every
/// other column becomes metadata of a declared or inferred type.
struct CSVSource: RowSource {
    var stream: ByteStream
    let options: ImportOptions
    var header: [String] = []
    var line = 0
    var rows = 0
    var locationKind: String { "line" }
    var totalBytes: Int { stream.size }
    var position: SourcePosition { SourcePosition(offset: stream.offset, rows: rows, line: line) }
    var idIndex = 0
    var textIndex: Int?
    var vectorIndex: Int?

    init(path: String, options: ImportOptions) throws {
        stream = try ByteStream(path: path)
        self.options = options
        guard let (fields, _) = try record() else { throw QuiverError.badInput(file: path, line: 1, reason: "the CSV file is empty (it needs a header row)") }
        header = fields
        guard let id = header.firstIndex(of: options.idColumn) else {
            throw QuiverError.badInput(file: path, line: 1, reason: "the header has no id column '\(options.idColumn)' (columns: \(header.joined(separator: ", ")))")
        }
        idIndex = id
        textIndex = header.firstIndex(of: options.textColumn)
        vectorIndex = header.firstIndex(of: options.vectorColumn)
        if Set(header).count != header.count { throw QuiverError.badInput(file: path, line: 1, reason: "the header repeats a column name") }
    }

    mutating func seek(to p: SourcePosition) throws {
        stream.seek(to: p.offset)
        line = p.line
        rows = p.rows
    }

    /// Refuses a declared type for a column the header does not have: a typo would otherwise leave
    /// the real column's type silently inferred. (The importer checks; the fuzz harness, which
    /// declares types for its seeds' columns, does not.)
    func checkDeclaredColumns() throws {
        if let unknown = options.columnTypes.keys.sorted().first(where: { !header.contains($0) }) {
            throw QuiverError.badInput(file: stream.path, line: 1, reason: "a type is declared (--type, ImportOptions.columnTypes) for column \(MessageText.quoted(unknown)), which the header does not have (columns: \(header.map { MessageText.escaped($0) }.joined(separator: ", ")))")
        }
    }

    /// The next record's fields and whether it broke a rule (an unterminated quote, say).
    private mutating func record() throws -> ([String], String?)? {
        guard try stream.peek() != nil else { return nil }
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false, wasQuoted = false
        var problem: String?
        var size = 0
        line += 1
        while true {
            guard let b = try stream.byte() else {
                if quoted { problem = "a quoted field is not closed before the end of the file" }
                break
            }
            size += 1
            if size > maxRecordBytes && problem == nil { problem = "the record is longer than \(maxRecordBytes) bytes" }
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if try stream.peek() == UInt8(ascii: "\"") { _ = try stream.byte(); if problem == nil { field.append(b) } } else { quoted = false }
                } else {
                    if b == UInt8(ascii: "\n") { line += 1 }
                    if problem == nil { field.append(b) }
                }
            } else if b == UInt8(ascii: "\"") && field.isEmpty && !wasQuoted {
                quoted = true
                wasQuoted = true
            } else if b == options.delimiter {
                fields.append(text(field, &problem))
                field = []
                wasQuoted = false
            } else if b == UInt8(ascii: "\n") {
                break
            } else if b == UInt8(ascii: "\r"), try stream.peek() == UInt8(ascii: "\n") {
                continue
            } else {
                if problem == nil { field.append(b) }
            }
        }
        fields.append(text(field, &problem))
        return (fields, problem)
    }

    /// A field's text; invalid UTF-8 is the record's problem (not silently replaced).
    private func text(_ field: [UInt8], _ problem: inout String?) -> String {
        if let s = String(validating: field, as: UTF8.self) { return s }
        if problem == nil { problem = "invalid UTF-8 in a field" }
        return ""
    }

    mutating func next() throws -> SourceRow? {
        while true {
            let startLine = line + 1
            guard let (fields, problem) = try record() else { return nil }
            if fields.count == 1 && fields[0].isEmpty && problem == nil { continue }  // blank line
            rows += 1
            if let p = problem { return .bad(location: startLine, reason: p) }
            guard fields.count == header.count else {
                return .bad(location: startLine, reason: "\(fields.count) fields; the header has \(header.count)")
            }
            var doc = Document(id: fields[idIndex])
            if let t = textIndex, !fields[t].isEmpty { doc.text = fields[t] }
            if let v = vectorIndex, !fields[v].isEmpty {
                guard let vector = parseVectorCell(fields[v]) else {
                    return .bad(location: startLine, reason: "column '\(header[v])' is not a list of numbers")
                }
                doc.vector = vector
            }
            for (i, name) in header.enumerated() where i != idIndex && i != textIndex && i != vectorIndex {
                switch metadataValue(fields[i], type: options.columnTypes[name]) {
                case .success(let value): doc.metadata[name] = value
                case .failure(let error): return .bad(location: startLine, reason: "column '\(name)': \(error.reason)")
                }
            }
            return .document(doc, location: startLine)
        }
    }

    private func metadataValue(_ cell: String, type: ImportOptions.ColumnType?) -> Result<MetadataValue, ColumnError> {
        if cell.isEmpty { return .success(.null) }
        switch type {
        case .string: return .success(.string(cell))
        case .int:
            guard let i = Int64(cell) else { return .failure(ColumnError("'\(cell)' is not an integer")) }
            return .success(.int(i))
        case .float:
            guard let d = Double(cell), d.isFinite else { return .failure(ColumnError("'\(cell)' is not a finite number")) }
            return .success(.double(d))
        case .bool:
            switch cell.lowercased() {
            case "true": return .success(.bool(true))
            case "false": return .success(.bool(false))
            default: return .failure(ColumnError("'\(cell)' is not true or false"))
            }
        case .list:
            return .success(.stringList(cell.split(separator: "|").map(String.init)))
        case nil:
            if let i = Int64(cell) { return .success(.int(i)) }
            if let d = Double(cell), d.isFinite, cell.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .success(.double(d)) }
            if cell == "true" || cell == "false" { return .success(.bool(cell == "true")) }
            return .success(.string(cell))
        }
    }
}

struct ColumnError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A vector written in one CSV cell: `[0.1, 0.2]` or `0.1 0.2` or `0.1,0.2`.
func parseVectorCell(_ cell: String) -> [Float]? {
    let inner = cell.trimmingCharacters(in: CharacterSet(charactersIn: "[] \t"))
    if inner.isEmpty { return [] }
    var out: [Float] = []
    for part in inner.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
        guard let f = Float(part) else { return nil }
        out.append(f)
    }
    return out
}

// MARK: - Bare vectors: fvecs, bvecs, npy

/// Ids of bare vectors: from a side file (one per line, in order) or from position.
struct IDSource {
    var stream: ByteStream?
    let prefix: String
    let path: String?

    init(path: String?, prefix: String) throws {
        self.path = path
        self.prefix = prefix
        stream = try path.map { try ByteStream(path: $0) }
    }

    /// The id of vector `index` (ids are consumed in order).
    mutating func next(_ index: Int) throws -> String? {
        guard stream != nil else { return prefix + String(index) }
        guard let (line, tooLong) = try stream!.line(limit: 4096), !tooLong else { return nil }
        guard let id = String(validating: line, as: UTF8.self) else {
            throw QuiverError.badInput(file: path ?? "", line: index + 1, reason: "the id is not valid UTF-8")
        }
        return id
    }

    /// Skips the ids of the first `count` vectors (a resumed import).
    mutating func skip(_ count: Int) throws {
        guard stream != nil else { return }
        stream!.seek(to: 0)
        for i in 0..<count { _ = try next(i) }
    }
}

/// A file of bare vectors (fvecs, bvecs, npy): its `index`-th vector is row `index`, and takes the id
/// of line `index` of the ids file (or the id prefix and the index).
protocol VectorFileSource: RowSource {
    var stream: ByteStream { get set }
    var ids: IDSource { get set }
    /// The vector `next()` reads.
    var index: Int { get set }
}

extension VectorFileSource {
    var locationKind: String { "vector" }
    var totalBytes: Int { stream.size }
    var position: SourcePosition { SourcePosition(offset: stream.offset, rows: index, line: index) }

    mutating func seek(to p: SourcePosition) throws {
        stream.seek(to: p.offset)
        index = p.rows
        try ids.skip(p.rows)
    }

    /// The `count` bytes of vector `index`'s components.
    mutating func componentBytes(_ count: Int) throws -> [UInt8] {
        guard let body = try stream.bytes(count) else {
            throw QuiverError.badInput(file: stream.path, line: index, reason: "the file ends inside vector \(index)")
        }
        return body
    }

    /// Vector `index` as a document, with its id.
    mutating func document(_ vector: [Float]) throws -> SourceRow {
        guard let id = try ids.next(index) else {
            throw QuiverError.badInput(file: ids.path ?? "", line: index + 1, reason: "the ids file has no id for vector \(index)")
        }
        return .document(Document(id: id, vector: vector), location: index)
    }
}

struct VecsSource: VectorFileSource {
    var stream: ByteStream
    var ids: IDSource
    let bytes: Bool
    var index = 0

    init(path: String, bytes: Bool, options: ImportOptions) throws {
        stream = try ByteStream(path: path)
        self.bytes = bytes
        ids = try IDSource(path: options.idsFile, prefix: options.idPrefix)
    }

    mutating func next() throws -> SourceRow? {
        let start = stream.offset
        guard let header = try stream.bytes(4) else {
            if stream.offset > start {
                throw QuiverError.badInput(file: stream.path, line: index, reason: "the file ends inside the header of vector \(index)")
            }
            return nil
        }
        let d = Int(Int32(bitPattern: UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24))
        guard d >= 1 && d <= Limits.maxDimension else {
            throw QuiverError.badInput(file: stream.path, line: index, reason: "vector \(index) at byte \(start) claims dimension \(d); the file is damaged or not \(bytes ? "bvecs" : "fvecs")")
        }
        let body = try componentBytes(d * (bytes ? 1 : 4))
        defer { index += 1 }
        return try document(bytes ? body.map { Float($0) } : float32LE(body, count: d))
    }
}

/// NumPy `.npy` (format versions 1, 2 and 3): a 2-d C-order array of float32 `<f4`, float16 `<f2`,
/// float64 `<f8` (numpy's default; a value beyond float32's range is a bad row) or integers (`|u1`,
/// `|i1`, `<u2`, `<i2`, `<u4`, `<i4`, `<u8`, `<i8`; rounded to the nearest float32).
struct NPYSource: VectorFileSource {
    var stream: ByteStream
    var ids: IDSource
    let rows: Int
    let dimension: Int
    let type: String
    let dataOffset: Int
    var index = 0

    init(path: String, options: ImportOptions) throws {
        stream = try ByteStream(path: path)
        ids = try IDSource(path: options.idsFile, prefix: options.idPrefix)
        let header = try NPYHeader.read(&stream, path: path)
        rows = header.shape.0
        dimension = header.shape.1
        type = header.descr
        dataOffset = stream.offset
        let width = header.itemSize
        let (total, overflow) = rows.multipliedReportingOverflow(by: dimension * width)
        guard !overflow, dataOffset + total == stream.size else {
            throw QuiverError.badInput(file: path, line: 0, reason: "the header promises \(rows) x \(dimension) values of \(width) byte(s) but the file holds \(stream.size - dataOffset) bytes of data")
        }
    }

    mutating func next() throws -> SourceRow? {
        guard index < rows else { return nil }
        let width = NPYHeader.itemSize(type)
        let body = try componentBytes(dimension * width)
        defer { index += 1 }
        func le(_ i: Int, _ width: Int) -> UInt64 {
            var v: UInt64 = 0
            for b in 0..<width { v |= UInt64(body[i * width + b]) << (8 * b) }
            return v
        }
        var vector: [Float]
        switch type {
        case "<f4": vector = float32LE(body, count: dimension)
        case "<f2": vector = (0..<dimension).map { i in halfToFloat(UInt16(le(i, 2))) }
        case "<f8":
            vector = []
            vector.reserveCapacity(dimension)
            for i in 0..<dimension {
                let d = Double(bitPattern: le(i, 8))
                if d.isFinite && abs(d) > Double(Float.greatestFiniteMagnitude) {
                    return .bad(location: index, reason: "component \(i) of vector \(index) is \(d), beyond float32's range")
                }
                vector.append(Float(d))
            }
        case "|i1": vector = body.map { Float(Int8(bitPattern: $0)) }
        case "<u2": vector = (0..<dimension).map { Float(UInt16(le($0, 2))) }
        case "<i2": vector = (0..<dimension).map { Float(Int16(bitPattern: UInt16(le($0, 2)))) }
        case "<u4": vector = (0..<dimension).map { Float(UInt32(le($0, 4))) }
        case "<i4": vector = (0..<dimension).map { Float(Int32(bitPattern: UInt32(le($0, 4)))) }
        case "<u8": vector = (0..<dimension).map { Float(le($0, 8)) }
        case "<i8": vector = (0..<dimension).map { Float(Int64(bitPattern: le($0, 8))) }
        default: vector = body.map { Float($0) }
        }
        return try document(vector)
    }
}

/// `count` little-endian float32 values from `bytes`.
func float32LE(_ bytes: [UInt8], count: Int) -> [Float] {
    (0..<count).map { i in
        Float(bitPattern: UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24)
    }
}

/// IEEE-754 binary16 to binary32.
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa x 2^-24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// The header of a `.npy` file: magic `\x93NUMPY`, version, header length, and a Python dict
/// literal with `descr`, `fortran_order` and `shape`.
struct NPYHeader {
    var descr: String
    var shape: (Int, Int)
    var itemSize: Int { NPYHeader.itemSize(descr) }

    /// The element types read, as written in `descr` (`<u1` and `<i1` are read as `|u1` and `|i1`).
    static let supported: [String: Int] = ["<f4": 4, "<f2": 2, "<f8": 8, "|u1": 1, "|i1": 1, "<u2": 2, "<i2": 2,
                                           "<u4": 4, "<i4": 4, "<u8": 8, "<i8": 8]

    static func itemSize(_ descr: String) -> Int { supported[descr] ?? 1 }

    static func read(_ stream: inout ByteStream, path: String) throws -> NPYHeader {
        func bad(_ reason: String) -> QuiverError { .badInput(file: path, line: 0, reason: reason) }
        guard let magic = try stream.bytes(8), magic[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw bad("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = magic[6]
        let length: Int
        switch major {
        case 1:
            guard let l = try stream.bytes(2) else { throw bad("the header is cut short") }
            length = Int(l[0]) | Int(l[1]) << 8
        case 2, 3:
            guard let l = try stream.bytes(4) else { throw bad("the header is cut short") }
            length = Int(l[0]) | Int(l[1]) << 8 | Int(l[2]) << 16 | Int(l[3]) << 24
        default:
            throw bad("unsupported .npy format version \(major)")
        }
        guard length <= 1 << 20, let dictBytes = try stream.bytes(length) else { throw bad("the header length \(length) is not plausible") }
        let dict = String(decoding: dictBytes, as: UTF8.self)
        func value(_ key: String) -> String? {
            guard let r = dict.range(of: "'\(key)':") else { return nil }
            return String(dict[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let d = value("descr"), d.hasPrefix("'"), let end = d.dropFirst().firstIndex(of: "'") else { throw bad("the header has no descr") }
        var descr = String(d[d.index(after: d.startIndex)..<end])
        if descr == "<u1" || descr == "<i1" { descr = "|" + descr.dropFirst() }
        guard supported[descr] != nil else {
            throw bad("element type \(descr) is not supported (little-endian floats '<f4', '<f8', '<f2' or integers such as '<i8', '|u1'; convert big-endian or complex arrays with astype('<f4'))")
        }
        guard let f = value("fortran_order"), f.hasPrefix("False") else { throw bad("Fortran-order arrays are not supported; save with C order") }
        guard let s = value("shape"), s.hasPrefix("("), let close = s.firstIndex(of: ")") else { throw bad("the header has no shape") }
        let dims = s[s.index(after: s.startIndex)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard dims.count == 2, let n = Int(dims[0]), let dim = Int(dims[1]), n >= 0, dim >= 1, dim <= Limits.maxDimension else {
            throw bad("the shape \(s[...close]) is not (rows, dimension) with a dimension of 1 to \(Limits.maxDimension)")
        }
        return NPYHeader(descr: descr, shape: (n, dim))
    }
}

/// The row source that reads a file of `format` at `path` (named in its errors as given).
func makeRowSource(_ format: ImportOptions.Format, path: String, options: ImportOptions) throws -> any RowSource {
    switch format {
    case .jsonl: return try JSONLSource(path: path)
    case .csv: return try CSVSource(path: path, options: options)
    case .fvecs: return try VecsSource(path: path, bytes: false, options: options)
    case .bvecs: return try VecsSource(path: path, bytes: true, options: options)
    case .npy: return try NPYSource(path: path, options: options)
    }
}
