import Foundation
import QuiverStorage

/// Formats `Collection.export` writes.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// One JSON document per line, `{"id", "text", "metadata", "vector"}`: what `importFile` reads back.
    case jsonl
    /// A NumPy float32 array of shape (n, d), with the ids in a side file (one per line).
    case npy
    /// fvecs (int32 dimension + float32 values per vector), with the ids in a side file.
    case fvecs
    /// RFC 4180 CSV with a header: `id`, `text`, one column per metadata field (sorted), `vector`
    /// (`[0.1, 0.2]`). What `importFile` reads back, with two losses CSV imposes: an empty string and
    /// null are both an empty cell (read back as null), and a list of strings is written `a|b`,
    /// which reads back as a list only when the column is declared one (`--type tags:list`).
    case csv
}

/// Buffered sequential writes to a new file.
struct FileWriter {
    let file: File
    var offset = 0
    var buffer: [UInt8] = []

    init(path: String) throws {
        file = try File(path: path, mode: .createNew)
        buffer.reserveCapacity(1 << 20)
    }

    mutating func write<C: Swift.Collection>(_ bytes: C) throws where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        try file.write(buffer, at: offset)
        offset += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, fsyncs and closes.
    mutating func finish() throws {
        try flush()
        try file.sync()
        file.close()
    }
}

extension Collection {
    /// Writes every document of one snapshot to `path` (atomically: a temporary file, then a rename).
    /// For `npy` and `fvecs` the ids go to `idsPath` (default: `path` + `.ids`), one per line, in
    /// vector order. Returns the number of documents written.
    @discardableResult
    public func export(to path: String, format: ExportFormat, idsPath: String? = nil) throws -> Int {
        let tmp = path + ".tmp-export"
        let idsFinal = idsPath ?? path + ".ids"
        let idsTmp = idsFinal + ".tmp-export"
        try? FileSystem.remove(tmp)
        try? FileSystem.remove(idsTmp)
        let count: Int = try database.readTransaction { txn in
            try checkExists(txn)
            let total = Int(try Counters.read(info.number, collection: name, txn: txn, tables: database.tables)?.liveDocuments ?? 0)
            var out = try wrapStorage { try FileWriter(path: tmp) }
            var ids = format == .jsonl || format == .csv ? nil : try wrapStorage { try FileWriter(path: idsTmp) }
            if format == .npy { try out.write(npyHeader(rows: total, dimension: info.dimension)) }
            // CSV: the header needs every metadata field of the snapshot first.
            var fields: [String] = []
            if format == .csv {
                var seen = Set<String>()
                try txn.forEach(database.tables.documents, prefix: Keys.collection(info.number)) { k, v in
                    seen.formUnion(try DocumentRecord(stored: v, key: k, collection: name, withText: false).metadata.keys)
                    return true
                }
                fields = seen.filter { !["id", "text", "vector"].contains($0) }.sorted()
                if fields.count < seen.count {
                    throw QuiverError.invalidArgument("'\(name)' has a metadata field named id, text or vector, which CSV cannot tell from those columns; export as jsonl")
                }
                try out.write(CSVLine.encode(["id", "text"] + fields + ["vector"]))
            }
            var n = 0
            try forEachStoredDocument(txn, withText: format == .jsonl || format == .csv) { id, record, vector in
                switch format {
                case .jsonl:
                    try out.write(JSONLine.encode(Document(id: id, text: record.text, metadata: record.metadata, vector: vector)))
                case .csv:
                    let cells = fields.map { CSVLine.cell(record.metadata[$0]) }
                    try out.write(CSVLine.encode([id, record.text ?? ""] + cells + ["[" + vector.map { "\($0)" }.joined(separator: ", ") + "]"]))
                case .npy, .fvecs:
                    if format == .fvecs { try out.write(withUnsafeBytes(of: Int32(info.dimension).littleEndian) { Array($0) }) }
                    try vector.withUnsafeBytes { try out.write($0) }
                    try ids!.write(Array(id.utf8) + [UInt8(ascii: "\n")])
                }
                n += 1
            }
            guard n == total else { throw QuiverError.storage(StorageError(.corrupt, "'\(name)' counts \(total) documents but holds \(n)")) }
            try wrapStorage {
                try out.finish()
                try ids?.finish()
            }
            return n
        }
        try wrapStorage {
            try FileSystem.rename(tmp, path)
            if format == .npy || format == .fvecs { try FileSystem.rename(idsTmp, idsFinal) }
            try FileSystem.syncDirectory(FileSystem.parentDirectory(of: URL(fileURLWithPath: path).standardizedFileURL.path))
        }
        return count
    }
}

extension Collection {
    /// Calls `body` with every document of the snapshot `txn` in id order: its id, its stored record
    /// (with its text when `withText`) and its vector.
    func forEachStoredDocument(_ txn: LMDBTransaction, withText: Bool, _ body: (String, DocumentRecord, [Float]) throws -> Void) throws {
        try txn.forEach(database.tables.documents, prefix: Keys.collection(info.number)) { k, v in
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)
            let record = try DocumentRecord(stored: v, key: k, collection: name, withText: withText)
            guard let vector = try vectorTable.read(record.row, txn: txn) else {
                throw QuiverError.storage(StorageError(.corrupt, "collection '\(name)': document '\(id)' has no stored vector; run `quiver verify`"))
            }
            try body(id, record, vector)
            return true
        }
    }
}

/// A version 1.0 `.npy` header for a little-endian float32 C-order (rows, dimension) array, padded
/// with spaces so that the data starts at a multiple of 64 bytes.
func npyHeader(rows: Int, dimension: Int) -> [UInt8] {
    var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(dimension)), }"
    let unpadded = 10 + dict.utf8.count + 1
    dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let length = UInt16(dict.utf8.count)
    out += [UInt8(length & 0xFF), UInt8(length >> 8)]
    out += Array(dict.utf8)
    return out
}

/// CSV records as `CSVSource` reads them: comma-separated, a field quoted when it holds a comma,
/// a quote, a line break or leading or trailing spaces (quotes doubled inside).
enum CSVLine {
    static func encode(_ fields: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, f) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            let needsQuotes = f.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }
                || f.first == " " || f.last == " "
            if needsQuotes {
                out.append(UInt8(ascii: "\""))
                for b in f.utf8 {
                    if b == UInt8(ascii: "\"") { out.append(b) }
                    out.append(b)
                }
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(contentsOf: f.utf8)
            }
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// A metadata value's cell: floats always with a point or an exponent (so that an import infers
    /// a float, not an integer), lists joined with `|`, null (and a missing field) empty.
    static func cell(_ value: MetadataValue?) -> String {
        switch value {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .double(let d)?: let t = "\(d)"; return t.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? t : t + ".0"
        case .bool(let b)?: return b ? "true" : "false"
        case .stringList(let l)?: return l.joined(separator: "|")
        case .null?, nil: return ""
        }
    }
}
