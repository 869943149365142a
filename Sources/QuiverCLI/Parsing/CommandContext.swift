import Foundation
import Quiver

/// What a running command needs: where output goes and which database to open.
final class CommandContext {
    let json: Bool
    let databasePath: String
    var standardOutput: (String) -> Void = { print($0, terminator: "") }

    init(json: Bool, databasePath: String) {
        self.json = json
        self.databasePath = databasePath
    }

    /// Opens the database, which must exist. Commands that only read open it read-only: they take
    /// no lock, so they work beside a writer in another process, and change no file.
    func openDatabase(readOnly: Bool = false, salvageDamagedLog: Bool = false) throws -> Database {
        var options = DatabaseOptions()
        options.createIfMissing = false
        options.readOnly = readOnly
        options.salvageDamagedLog = salvageDamagedLog
        let db = try Database(path: databasePath, options: options)
        // What the open found that the user must know about, whatever the command.
        if let u = db.openReport.unappliedRecord {
            FileHandle.standardError.write(Data("quiver: warning: log record \(u.sequence) (\(u.summary)) cannot be applied: \(u.reason); reads work, writes are refused until `quiver repair`\n".utf8))
        }
        for d in db.openReport.damagedSegments {
            FileHandle.standardError.write(Data("quiver: warning: \(d)\(readOnly ? "" : "; rebuilding it now (or run `quiver repair`)")\n".utf8))
        }
        return db
    }

    func write(_ s: String) { standardOutput(s) }

    func line(_ s: String = "") { standardOutput(s + "\n") }

    /// Prints `value` as pretty JSON (keys sorted), one document.
    func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        line(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// Prints rows as an aligned table under `headers`.
    func table(_ headers: [String], _ rows: [[String]]) {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func format(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        line(format(headers))
        line(format(widths.map { String(repeating: "-", count: $0) }))
        for r in rows { line(format(r)) }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// Formats a byte count for people (`12.3 MiB`).
func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Reads a byte count: digits, optionally followed by K, M, G or T (powers of 1024), optionally
/// followed by B or iB (`512M`, `4GiB`, `1000000`). Nil for anything else or an overflow.
func parseByteCount(_ text: String) -> Int? {
    var s = Substring(text.trimmingCharacters(in: .whitespaces).uppercased())
    if s.hasSuffix("IB") { s = s.dropLast(2) } else if s.hasSuffix("B") { s = s.dropLast() }
    var unit = 1
    if let last = s.last, let power = ["K": 10, "M": 20, "G": 30, "T": 40][String(last)] {
        unit = 1 << power
        s = s.dropLast()
    }
    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else { return nil }
    let (product, overflow) = n.multipliedReportingOverflow(by: unit)
    return overflow ? nil : product
}
