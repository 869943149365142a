import Foundation

/// How `Collection.importFile` reads a file and what it does with bad rows.
public struct ImportOptions: Sendable {
    /// The input formats.
    public enum Format: String, Sendable, CaseIterable {
        /// One JSON document per line: `{"id", "text", "metadata", "vector"}`.
        case jsonl
        /// Comma-separated values with a header row.
        case csv
        /// Bare float32 vectors: per vector, int32 dimension then the floats (little-endian).
        case fvecs
        /// Bare uint8 vectors: per vector, int32 dimension then the bytes.
        case bvecs
        /// A NumPy `.npy` array of shape (n, d): float32, float16 or uint8, C order.
        case npy

        /// The format a file name's extension implies.
        public init?(path: String) {
            switch (path as NSString).pathExtension.lowercased() {
            case "jsonl", "ndjson", "json": self = .jsonl
            case "csv": self = .csv
            case "fvecs": self = .fvecs
            case "bvecs": self = .bvecs
            case "npy": self = .npy
            default: return nil
            }
        }
    }

    /// What to do with a row that cannot be imported.
    public enum ErrorPolicy: String, Sendable {
        /// Stop at the first bad row (rows before it stay imported).
        case abort
        /// Report the row (file, line, reason) and go on.
        case skip
    }

    /// The value type of a CSV column that becomes metadata.
    public enum ColumnType: String, Sendable {
        case string, int, float, bool, list

        /// The type a name of the one vocabulary that the CLI accepts everywhere names: `string`
        /// (or `keyword`), `int` (or `integer`), `float` (or `double`), `bool` (or `boolean`), `list`.
        public init?(named name: String) {
            switch name.lowercased() {
            case "string", "keyword": self = .string
            case "int", "integer": self = .int
            case "float", "double": self = .float
            case "bool", "boolean": self = .bool
            case "list": self = .list
            default: return nil
            }
        }
    }

    /// The format (default: from the file's extension).
    public var format: Format?
    /// Documents per write (each write is atomic and fsynced, and is when other processes see the
    /// rows). Default (nil): 64 for a collection with a text encoder, so that a batch being embedded
    /// commits within a few seconds, else 1,000.
    public var batchSize: Int?
    /// The batch size of collections without an encoder.
    public static let defaultBatchSize = 1_000
    /// The batch size of collections with a text encoder (64 texts take about 1-6 s to embed with
    /// all-MiniLM-L6-v2 on a laptop core).
    public static let defaultEncoderBatchSize = 64
    /// What to do with bad rows.
    public var onError: ErrorPolicy = .abort
    /// Replace documents whose id exists (default: a stored id is a bad row, so a repeated import
    /// never silently overwrites).
    public var upsert = false
    /// Continue an interrupted import of the same file from its last committed row.
    public var resume = false
    /// CSV: the column holding the id (default `id`).
    public var idColumn = "id"
    /// CSV: the column holding the text (default `text`; a missing column means no text).
    public var textColumn = "text"
    /// CSV: the column holding the vector as a JSON array or comma/space-separated numbers
    /// (default `vector`; a missing column means the collection's encoder makes the vectors).
    public var vectorColumn = "vector"
    /// CSV: declared types of metadata columns; undeclared ones are inferred per value
    /// (integer, then float, then true/false, else string; an empty cell is null).
    public var columnTypes: [String: ColumnType] = [:]
    /// CSV: the field separator (default `,`).
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// Bare vectors (fvecs, bvecs, npy): a file of ids, one per line, in vector order; without one
    /// the id of vector i (from 0) is `idPrefix` followed by i.
    public var idsFile: String?
    /// Bare vectors: the prefix of positional ids.
    public var idPrefix = ""
    /// The clock of elapsed times and rates, in seconds (tests inject one; default: monotonic).
    var clock: (@Sendable () -> Double)?

    public init(format: Format? = nil, onError: ErrorPolicy = .abort, resume: Bool = false) {
        self.format = format
        self.onError = onError
        self.resume = resume
    }
}

/// A row that was not imported.
public struct SkippedRow: Sendable, Codable, Equatable {
    /// The input file.
    public var file: String
    /// The 1-based line (JSONL, CSV: the line the record starts on) or the 0-based vector index
    /// (fvecs, bvecs, npy), as `location` says.
    public var line: Int
    /// "line" or "vector".
    public var location: String
    /// Why it was not imported.
    public var reason: String
}

/// The outcome of an import.
public struct ImportReport: Sendable, Codable, Equatable {
    public var file: String
    public var format: String
    /// Rows read in this run (after the resume point).
    public var rowsRead = 0
    /// Documents written in this run.
    public var imported = 0
    /// Rows skipped in this run, each with its reason (all of them; also counted in `skippedCount`).
    public var skipped: [SkippedRow] = []
    public var skippedCount = 0
    /// Rows already imported by the interrupted run this one resumed (0 when not resuming).
    public var resumedAfterRows = 0
    public var seconds = 0.0
}

/// A progress report during an import: after each batch, and, while a collection's encoder embeds
/// a batch, after each chunk of it (every 32 texts, or about every 0.75 s when the encoder is faster).
public struct ImportProgress: Sendable {
    /// Rows read from the input in this run (a batch is read before it is embedded).
    public var rowsRead: Int
    /// Documents written in this run.
    public var imported: Int
    /// Rows skipped in this run.
    public var skipped: Int
    /// Bytes of the input consumed so far (an offset in the file, so after `resume` it counts the
    /// bytes of the earlier run too), and in all.
    public var bytesRead: Int
    public var totalBytes: Int
    /// Seconds since this run started.
    public var elapsed: Double
    /// Rows of this run that are processed: written, skipped, or embedded and waiting for their batch
    /// to commit.
    public var rowsDone: Int
    /// The input offset up to which rows are processed.
    public var bytesDone: Int
    /// The input offset this run started at (where a resumed import picked up; else 0).
    public var startBytes: Int
    /// Rows imported by the earlier run this one resumed (0 when not resuming).
    public var resumedAfterRows: Int
    /// Seconds of `elapsed` spent loading the collection's encoder (once per process), which the
    /// rate and the ETA leave out.
    public var setupSeconds: Double

    public init(rowsRead: Int, imported: Int, skipped: Int, bytesRead: Int, totalBytes: Int, elapsed: Double,
                rowsDone: Int? = nil, bytesDone: Int? = nil, startBytes: Int = 0, resumedAfterRows: Int = 0,
                setupSeconds: Double = 0) {
        self.rowsRead = rowsRead
        self.imported = imported
        self.skipped = skipped
        self.bytesRead = bytesRead
        self.totalBytes = totalBytes
        self.elapsed = elapsed
        self.rowsDone = rowsDone ?? rowsRead
        self.bytesDone = bytesDone ?? bytesRead
        self.startBytes = startBytes
        self.resumedAfterRows = resumedAfterRows
        self.setupSeconds = setupSeconds
    }

    /// The seconds this run has spent on rows (`elapsed` less `setupSeconds`).
    public var workingSeconds: Double { max(0, elapsed - setupSeconds) }

    /// Rows processed per second in this run (rows of an earlier run that this one resumed do not count).
    public var rowsPerSecond: Double { workingSeconds > 0 ? Double(rowsDone) / workingSeconds : 0 }

    /// The fraction of the whole input processed, 0 to 1 (earlier runs included).
    public var fraction: Double { totalBytes > 0 ? min(1, Double(bytesDone) / Double(totalBytes)) : 0 }

    /// Seconds until the import ends: the bytes left over this run's rate of bytes processed (over
    /// `workingSeconds`), or nil before this run has processed anything (or when the input's size is
    /// unknown).
    public var etaSeconds: Double? {
        let done = bytesDone - startBytes
        guard totalBytes > 0, workingSeconds > 0, done > 0 else { return nil }
        return Double(max(0, totalBytes - bytesDone)) / (Double(done) / workingSeconds)
    }
}
