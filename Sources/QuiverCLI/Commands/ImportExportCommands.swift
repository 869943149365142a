import Foundation
import Quiver

/// Progress on standard error: a bar redrawn in place on a terminal (at once, then at every report
/// and at least every second while the import is busy, so it never looks hung), plain lines every
/// few seconds otherwise (so that logs stay readable). Rates and ETAs are this run's (see
/// `ImportProgress.etaSeconds`), so they stay right after `--resume`.
final class ProgressReporter: @unchecked Sendable {
    let isTerminal: Bool
    let label: String
    private let lock = NSLock()
    private var latest: ImportProgress?
    private var latestAt = 0.0
    private var lastLine = -Double.infinity
    private let started = ProcessInfo.processInfo.systemUptime
    private var timer: DispatchSourceTimer?

    init(label: String, isTerminal: Bool = isatty(2) != 0) {
        self.label = label
        self.isTerminal = isTerminal
    }

    private var now: Double { ProcessInfo.processInfo.systemUptime }

    /// Draws the first line and, on a terminal, starts redrawing every second.
    func start() {
        guard isTerminal else { return }
        lock.lock(); draw(final: false); lock.unlock()
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        t.schedule(deadline: .now() + 0.5, repeating: 0.5)
        t.setEventHandler { [weak self] in
            guard let self else { return }
            self.lock.lock(); defer { self.lock.unlock() }
            if self.timer != nil && self.now - self.lastLine >= 0.9 { self.draw(final: false) }
        }
        lock.lock(); timer = t; lock.unlock()
        t.resume()
    }

    func update(_ p: ImportProgress) {
        lock.lock(); defer { lock.unlock() }
        latest = p
        latestAt = now
        if now - lastLine >= (isTerminal ? 0.1 : 5) { draw(final: false) }
    }

    /// Stops the redrawing and draws the last line (after a failure: ends the bar's line, so the
    /// error starts on a line of its own).
    func finish(rows: Int, skipped: Int, seconds: Double, failed: Bool = false) {
        lock.lock(); defer { lock.unlock() }
        timer?.cancel()
        timer = nil
        if failed {
            if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
            return
        }
        latest = ImportProgress(rowsRead: rows, imported: rows - skipped, skipped: skipped, bytesRead: 1, totalBytes: 1, elapsed: seconds)
        latestAt = now
        draw(final: true)
    }

    /// With `lock` held.
    private func draw(final: Bool) {
        lastLine = now
        let text: String
        var fraction = 0.0
        if let p = latest {
            // Between reports the clock runs on: the elapsed time grows and the ETA shrinks.
            let since = final ? 0 : now - latestAt
            fraction = p.fraction
            let skippedText = p.skipped > 0 ? ", \(p.skipped) skipped" : ""
            let tail: String
            if final {
                tail = String(format: ", %.1f s", p.elapsed)
            } else if let eta = p.etaSeconds {
                let left = Int(max(0, eta - since).rounded())
                tail = String(format: ", ETA %d:%02d", left / 60, left % 60)
            } else {
                tail = ", ETA --:--"
            }
            text = String(format: "%@: %d rows%@, %.1f rows/s, %3.0f%%%@", label, p.rowsDone, skippedText, p.rowsPerSecond, fraction * 100, tail)
        } else {
            text = String(format: "%@: starting (%.0f s)", label, now - started)
        }
        if isTerminal {
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + bar + text + (final ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}

struct ImportCommand: CLICommand {
    static let name = "import"
    static let abstract = "Import documents (JSONL, CSV) or bare vectors (fvecs, bvecs, npy) from a file."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection to import into."),
        PositionalSpec(name: "file", help: "The input file; its extension names the format unless --format does."),
    ]
    static let options = [
        OptionSpec(name: "format", value: "<format>", help: "jsonl, csv, fvecs, bvecs, npy, or settings (a file of `quiver export --format settings`)."),
        OptionSpec(name: "on-error", value: "<policy>", help: "abort (default): stop at the first bad row; skip: report bad rows and go on."),
        OptionSpec(name: "resume", help: "Continue an interrupted import of this file after its last imported row."),
        OptionSpec(name: "upsert", help: "Replace documents whose id exists (default: an existing id is a bad row)."),
        OptionSpec(name: "batch-size", value: "<n>", help: "Documents per atomic write (default 64 into a collection with a text encoder, else 1000)."),
        OptionSpec(name: "id-column", value: "<name>", help: "CSV: the id column (default id)."),
        OptionSpec(name: "text-column", value: "<name>", help: "CSV: the text column (default text)."),
        OptionSpec(name: "vector-column", value: "<name>", help: "CSV: the vector column (default vector)."),
        OptionSpec(name: "type", value: "<col:type>", help: "CSV: a metadata column's type (string, int, float, bool, list); repeatable."),
        OptionSpec(name: "delimiter", value: "<char>", help: "CSV: the field separator (default ,)."),
        OptionSpec(name: "ids", value: "<file>", help: "fvecs/bvecs/npy: a file of ids, one per line (default: the position)."),
        OptionSpec(name: "id-prefix", value: "<text>", help: "fvecs/bvecs/npy: prefix of positional ids."),
    ]
    static let discussion = """
    Files of any size are streamed in bounded memory and written in atomic batches through the
    write-ahead log. Documents without vectors are embedded by the collection's encoder. Each batch
    also records where the import stands, so after a crash or Ctrl-C, --resume continues exactly after
    the last imported row. Bad rows are reported as file:line: reason.
    --format settings applies a collection's exported settings instead: its query adapters and tuned
    defaults, to a collection of the same dimension, metric and encoder (refused, with nothing
    written, otherwise).
    """
    static let examples = [
        "quiver import papers corpus.jsonl",
        "quiver import papers papers.csv --text-column abstract --type year:int --on-error skip",
        "quiver import sift base.fvecs --ids base.ids",
        "quiver import papers corpus.jsonl --resume",
        "quiver import papers papers.settings.json --format settings",
    ]

    let collection: String
    let file: String
    var options = ImportOptions()
    /// --format settings: apply an exported settings file.
    var settings = false

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        file = a.positional(1)!
        if a.value("format") == "settings" {
            for o in ["on-error", "resume", "upsert", "batch-size", "id-column", "text-column", "vector-column", "type", "delimiter", "ids", "id-prefix"]
            where a.value(o) != nil || a.flag(o) {
                throw UsageError(message: "--\(o) is not for --format settings", command: Self.name)
            }
            settings = true
            return
        }
        if let f = a.value("format") {
            guard let format = ImportOptions.Format(rawValue: f) else {
                throw UsageError(message: "--format must be one of \(ImportOptions.Format.allCases.map(\.rawValue).joined(separator: ", ")), not \(MessageText.quoted(f))", command: Self.name)
            }
            options.format = format
        }
        if let p = a.value("on-error") {
            guard let policy = ImportOptions.ErrorPolicy(rawValue: p) else { throw UsageError(message: "--on-error must be abort or skip, not \(MessageText.quoted(p))", command: Self.name) }
            options.onError = policy
        }
        options.resume = a.flag("resume")
        options.upsert = a.flag("upsert")
        if a.value("batch-size") != nil { options.batchSize = try a.int("batch-size", default: 0, range: 1...100_000) }
        options.idColumn = a.value("id-column") ?? "id"
        options.textColumn = a.value("text-column") ?? "text"
        options.vectorColumn = a.value("vector-column") ?? "vector"
        for t in a.values["type"] ?? [] {
            let parts = t.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let type = ImportOptions.ColumnType(named: parts[1]) else {
                throw UsageError(message: "--type takes column:type with type string (or keyword), int (or integer), float (or double), bool (or boolean) or list, not \(MessageText.quoted(t))", command: Self.name)
            }
            options.columnTypes[parts[0]] = type
        }
        if let d = a.value("delimiter") {
            guard d.utf8.count == 1 else { throw UsageError(message: "--delimiter must be one ASCII character", command: Self.name) }
            options.delimiter = d.utf8.first!
        }
        options.idsFile = a.value("ids")
        options.idPrefix = a.value("id-prefix") ?? ""
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let c = try db.collection(collection)
        if settings {
            let n = try c.importSettings(from: file)
            if context.json { try context.printJSON(["adapters": n]); return }
            return context.line("Applied the settings in \(file) to '\(collection)': \(n) query adapter(s) and the tuned defaults")
        }
        let bar = ProgressReporter(label: "import \(file)")
        bar.start()
        let report: ImportReport
        do {
            report = try c.importFile(file, options: options) { p in bar.update(p) }
        } catch {
            bar.finish(rows: 0, skipped: 0, seconds: 0, failed: true)
            throw error
        }
        bar.finish(rows: report.rowsRead, skipped: report.skippedCount, seconds: report.seconds)
        if context.json { try context.printJSON(report); return }
        for s in report.skipped { FileHandle.standardError.write(Data("skipped \(s.file):\(s.line): \(s.reason)\n".utf8)) }
        if report.skippedCount > report.skipped.count {
            FileHandle.standardError.write(Data("... and \(report.skippedCount - report.skipped.count) more skipped rows\n".utf8))
        }
        let resumed = report.resumedAfterRows > 0 ? " (resumed after \(report.resumedAfterRows) rows)" : ""
        context.line("Imported \(report.imported) document(s) into '\(collection)' from \(file)\(resumed); \(report.skippedCount) row(s) skipped")
    }
}

struct ExportCommand: CLICommand {
    static let name = "export"
    static let abstract = "Export a collection to JSONL (documents), npy/fvecs (vectors, with an ids file), a directory for Milvus, or its settings (query adapters, fusion)."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection to export."),
        PositionalSpec(name: "file", help: "The output file (must not exist); its extension names the format unless --format does. For --format milvus, a new directory."),
    ]
    static let options = [
        OptionSpec(name: "format", value: "<format>", help: "jsonl, csv, npy, fvecs, milvus or settings."),
        OptionSpec(name: "ids", value: "<file>", help: "npy/fvecs: where the ids go (default: <file>.ids)."),
        OptionSpec(name: "max-file-bytes", value: "<size>", help: "milvus: the largest row file (default 1G; Milvus 2.3 reads up to 16G per file)."),
    ]
    static let discussion = """
    The export is one consistent snapshot; `quiver import` reads every format but milvus back.
    --format milvus writes JSON row files for Milvus bulk insert and schema.json (the collection schema
    pymilvus creates it from, its indexes, and what does not map and how it was converted);
    tools/milvus-load creates and loads the collection and checks it (docs/scale-out.md).
    --format settings writes the collection's settings as JSON: its dimension, metric and encoder, its
    query adapters and its tuned defaults (adapter, hybrid fusion); `quiver import <c> <file> --format
    settings` applies them to a collection with the same encoder.
    """
    static let examples = ["quiver export papers papers.jsonl", "quiver export sift sift.npy --ids sift.ids", "quiver export papers papers-milvus --format milvus",
                           "quiver export papers papers.settings.json --format settings"]

    let collection: String
    let file: String
    let format: ExportFormat?
    /// --format settings: the collection's settings, not its documents.
    let settings: Bool
    let ids: String?
    let maxFileBytes: Int

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        file = a.positional(1)!
        let name = a.value("format") ?? (file as NSString).pathExtension.lowercased()
        settings = name == "settings"
        if settings {
            format = nil
            if a.value("ids") != nil || a.value("max-file-bytes") != nil {
                throw UsageError(message: "--ids and --max-file-bytes are not for --format settings", command: Self.name)
            }
        } else if name == "milvus" {
            format = nil
            if a.value("ids") != nil { throw UsageError(message: "--ids is for npy and fvecs, not milvus", command: Self.name) }
        } else {
            guard let f = ExportFormat(rawValue: name) else {
                throw UsageError(message: "name the format with --format (jsonl, csv, npy, fvecs, milvus, settings); \(MessageText.quoted(name)) is not one", command: Self.name)
            }
            format = f
            if a.value("max-file-bytes") != nil { throw UsageError(message: "--max-file-bytes is for --format milvus", command: Self.name) }
        }
        ids = a.value("ids")
        if let text = a.value("max-file-bytes") {
            guard let n = parseByteCount(text), n >= 1024 else {
                throw UsageError(message: "--max-file-bytes must be a size of at least 1K (like 512M or 1G), not \(MessageText.quoted(text))", command: Self.name)
            }
            maxFileBytes = n
        } else {
            maxFileBytes = 1 << 30
        }
    }

    func run(_ context: CommandContext) throws {
        if FileManager.default.fileExists(atPath: file) { throw CLIError("\(file) exists; export writes a new \(format == nil ? "directory" : "file")") }
        let db = try context.openDatabase(readOnly: true)
        if settings {
            let n = try db.collection(collection).exportSettings(to: file)
            if context.json { try context.printJSON(["adapters": n]); return }
            return context.line("Exported the settings of '\(collection)' to \(file): \(n) query adapter(s) and the tuned defaults")
        }
        guard let format else { return try runMilvus(db.collection(collection), context) }
        let n = try db.collection(collection).export(to: file, format: format, idsPath: ids)
        if context.json { try context.printJSON(["exported": n]); return }
        context.line("Exported \(n) document(s) from '\(collection)' to \(file)" + (format == .jsonl || format == .csv ? "" : " (ids in \(ids ?? file + ".ids"))"))
    }

    private func runMilvus(_ c: Collection, _ context: CommandContext) throws {
        let bar = ProgressReporter(label: "export \(collection)")
        let started = ProcessInfo.processInfo.systemUptime
        bar.start()
        let options = MilvusExportOptions(maxFileBytes: maxFileBytes) { written, total in
            bar.update(ImportProgress(rowsRead: written, imported: written, skipped: 0, bytesRead: written, totalBytes: max(total, 1),
                                      elapsed: ProcessInfo.processInfo.systemUptime - started))
        }
        let summary: MilvusExportSummary
        do {
            summary = try c.exportMilvus(to: file, options: options)
        } catch {
            bar.finish(rows: 0, skipped: 0, seconds: 0, failed: true)
            throw error
        }
        bar.finish(rows: summary.documents, skipped: 0, seconds: ProcessInfo.processInfo.systemUptime - started)
        if context.json { try context.printJSON(summary); return }
        context.line("Exported \(summary.documents) document(s) from '\(collection)' to \(file): schema.json and \(summary.files.count) row file(s)")
        context.line("What does not map, and how it was converted:")
        for c in summary.conversions { context.line("  - " + c) }
        context.line("Load it with: tools/milvus-load \(file)")
    }
}
