import Foundation
import Quiver

/// An error of a command's own (a file it cannot read, a malformed line), with exit code 1.
struct CLIError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

struct InitCommand: CLICommand {
    static let name = "init"
    static let abstract = "Create an empty database in a directory."
    static let positionals = [PositionalSpec(name: "dir", help: "The directory (default: --db, $QUIVER_DB or ./quiver.db).", optional: true)]
    static let options: [OptionSpec] = []
    static let examples = ["quiver init ./vectors.db", "QUIVER_DB=./vectors.db quiver init"]

    let dir: String?
    init(_ a: ParsedArguments) { dir = a.positional(0) }

    func run(_ context: CommandContext) throws {
        let path = dir ?? context.databasePath
        // An empty data.mdb is not a database: Database decides whether it is a creation that
        // stopped inside LMDB's initialisation (then it creates the database) or a lost file.
        if let size = (try? FileManager.default.attributesOfItem(atPath: path + "/lmdb/data.mdb"))?[.size] as? Int, size > 0 {
            throw CLIError("a database already exists at \(path)")
        }
        let db = try Database(path: path)
        db.close()
        if context.json { try context.printJSON(["created": path]) } else { context.line("Created an empty database at \(path)") }
    }
}

struct CreateCommand: CLICommand {
    static let name = "create"
    static let abstract = "Create a collection of vectors of one dimension and metric."
    static let positionals = [PositionalSpec(name: "collection", help: "The new collection's name (letters, digits, '_', '-', '.').")]
    static let options = [
        OptionSpec(name: "dimension", value: "<n>", help: "The vectors' dimension, 1 to 65536 (required without --encoder)."),
        OptionSpec(name: "encoder", value: "<name>", help: "A text encoder (all-MiniLM-L6-v2, or all-MiniLM-L6-v2:int8 for its int8 version) that embeds documents' text on write and queries' text on search."),
        OptionSpec(name: "metric", value: "<metric>", help: "cosine (default), dot or l2."),
        OptionSpec(name: "compress-above", value: "<bytes>", help: "Store texts longer than this zstd-compressed (default 512)."),
        OptionSpec(name: "index", value: "<kind>", help: "Sealed segments' index: hnsw (default), ivfpq (compact codes, re-ranked from LMDB), flat (exact scans only) or auto (HNSW, IVF-PQ past --memory-budget or 2,000,000 vectors)."),
        OptionSpec(name: "m", value: "<n>", help: "HNSW links per node (default 16)."),
        OptionSpec(name: "ef-construction", value: "<n>", help: "HNSW build candidate list (default 200)."),
        OptionSpec(name: "ef-search", value: "<n>", help: "HNSW search candidate list (default 64)."),
        OptionSpec(name: "segment-size", value: "<n>", help: "Vectors in the mutable segment before it is sealed (default 8192)."),
        OptionSpec(name: "nlist", value: "<n>", help: "IVF-PQ inverted lists (default: chosen from the collection's size, about 4 sqrt(n))."),
        OptionSpec(name: "pq-bytes", value: "<n>", help: "IVF-PQ bytes per vector code; must divide the dimension (default about dimension / 8)."),
        OptionSpec(name: "nprobe", value: "<n>", help: "IVF-PQ lists probed per search (default 32)."),
        OptionSpec(name: "rerank", value: "<n>", help: "IVF-PQ candidates re-ranked with full vectors (default 100)."),
        OptionSpec(name: "quantization", value: "<q>", help: "With --index hnsw: none (default, float32 in memory) or sq8 (8-bit codes in memory, scores re-computed exactly from float32 on disk)."),
        OptionSpec(name: "memory-budget", value: "<bytes>", help: "With --index auto: HNSW memory allowed before IVF-PQ is used (e.g. 512M, 4G)."),
    ]
    static let examples = [
        "quiver create papers --encoder all-MiniLM-L6-v2",
        "quiver create embeddings --dimension 384",
        "quiver create sift --dimension 128 --metric l2",
        "quiver create archive --dimension 384 --index ivfpq --pq-bytes 48",
        "quiver create notes --encoder all-MiniLM-L6-v2 --index auto --memory-budget 2G",
        "quiver create edge --encoder all-MiniLM-L6-v2:int8 --quantization sq8",
    ]

    let collection: String
    let dimension: Int?
    let encoder: String?
    let metric: Metric
    let threshold: Int
    let index: IndexSettings

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        encoder = a.value("encoder")
        let d = IndexSettings()
        let kindName = a.value("index") ?? d.kind.rawValue
        guard let kind = IndexKind(rawValue: kindName) else {
            throw UsageError(message: "--index must be hnsw, ivfpq, flat or auto, not \(MessageText.quoted(kindName))", command: Self.name)
        }
        var budget: Int?
        if let b = a.value("memory-budget") {
            guard let bytes = parseByteCount(b) else {
                throw UsageError(message: "--memory-budget must be a byte count such as 536870912, 512M or 4G, not \(MessageText.quoted(b))", command: Self.name)
            }
            budget = bytes
        }
        if budget != nil && kind != .auto {
            throw UsageError(message: "--memory-budget applies to --index auto only", command: Self.name)
        }
        let qName = a.value("quantization") ?? Quantization.none.rawValue
        guard let quantization = Quantization(rawValue: qName) else {
            throw UsageError(message: "--quantization must be none or sq8, not \(MessageText.quoted(qName))", command: Self.name)
        }
        if quantization != .none && kind != .hnsw {
            throw UsageError(message: "--quantization \(qName) applies to --index hnsw only (ivfpq stores codes already; flat and auto would not keep it)", command: Self.name)
        }
        index = IndexSettings(kind: kind, m: try a.int("m", default: d.m, range: 2...255),
                              efConstruction: try a.int("ef-construction", default: d.efConstruction, range: 1...(1 << 20)),
                              efSearch: try a.int("ef-search", default: d.efSearch, range: 1...(1 << 20)),
                              segmentSize: try a.int("segment-size", default: d.segmentSize, range: 1...d.maxSegmentVectors),
                              nlist: a.value("nlist") == nil ? nil : try a.int("nlist", default: 0, range: 1...(1 << 20)),
                              pqBytes: a.value("pq-bytes") == nil ? nil : try a.int("pq-bytes", default: 0, range: 1...65_536),
                              nprobe: try a.int("nprobe", default: d.nprobe, range: 1...(1 << 20)),
                              rerank: try a.int("rerank", default: d.rerank, range: 0...(1 << 24)),
                              memoryBudget: budget, quantization: quantization)
        guard a.value("dimension") != nil || encoder != nil else {
            throw UsageError(message: "--dimension is required (or --encoder, which sets it)", command: Self.name)
        }
        dimension = a.value("dimension") == nil ? nil : try a.int("dimension", default: 0, range: 1...65_536)
        guard let m = Metric(rawValue: a.value("metric") ?? "cosine") else {
            throw UsageError(message: "--metric must be cosine, dot or l2, not \(MessageText.quoted(a.value("metric")!))", command: Self.name)
        }
        metric = m
        threshold = try a.int("compress-above", default: 512, range: 0...Int(Int32.max))
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let c = try db.createCollection(collection, dimension: dimension, metric: metric, encoder: encoder,
                                        options: CollectionOptions(textCompressionThreshold: threshold, index: index))
        if context.json { try context.printJSON(c.info) } else {
            let by = encoder.map { ", text encoded by \($0)" } ?? ""
            context.line("Created collection '\(collection)' (\(c.info.dimension)-d, \(metric.rawValue)\(by))")
        }
    }
}

struct CollectionsCommand: CLICommand {
    static let name = "collections"
    static let abstract = "List the collections with their dimension, metric and size."
    static let positionals: [PositionalSpec] = []
    static let options = [OptionSpec(name: "fields", help: "Also list each collection's metadata fields: documents holding each, and the types of its values.")]
    static let examples = ["quiver collections --db ./vectors.db", "quiver collections --json", "quiver collections --fields"]

    let showFields: Bool
    init(_ a: ParsedArguments) { showFields = a.flag("fields") }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let stats = try db.stats()
        if context.json {
            if showFields {
                try context.printJSON(Dictionary(uniqueKeysWithValues: try stats.collections.map { ($0.name, try db.collection($0.name).fields()) }))
            } else {
                try context.printJSON(stats.collections)
            }
            return
        }
        if stats.collections.isEmpty { context.line("No collections (create one with 'quiver create <name> --dimension <n>')"); return }
        context.table(["NAME", "DIMENSION", "METRIC", "DOCUMENTS", "ENCODER"], stats.collections.map {
            [$0.name, String($0.dimension), $0.metric.rawValue, String($0.documents), $0.encoder ?? "-"]
        })
        guard showFields else { return }
        for c in stats.collections {
            context.line()
            context.line("fields of '\(c.name)':")
            let fields = try db.collection(c.name).fields()
            if fields.isEmpty { context.line("  (no metadata)") }
            for f in fields { context.line("  " + f.summary) }
        }
    }
}

struct DropCommand: CLICommand {
    static let name = "drop"
    static let abstract = "Delete a collection and all its documents."
    static let positionals = [PositionalSpec(name: "collection", help: "The collection to drop.")]
    static let options = [OptionSpec(name: "yes", short: "y", help: "Confirm; without it nothing is dropped.")]
    static let examples = ["quiver drop old-papers --yes"]

    let collection: String
    let confirmed: Bool
    init(_ a: ParsedArguments) { collection = a.positional(0)!; confirmed = a.flag("yes") }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let count = try db.collection(collection).count()
        guard confirmed else {
            throw CLIError("dropping \(MessageText.quoted(collection)) deletes its \(count) documents; add --yes to confirm")
        }
        try db.dropCollection(collection)
        if context.json { try context.printJSON(["dropped": collection]) } else {
            context.line("Dropped collection '\(collection)' (\(count) documents)")
        }
    }
}

struct StatsCommand: CLICommand {
    static let name = "stats"
    static let abstract = "Show sizes and counts: documents, LMDB, write-ahead log, segments."
    static let positionals: [PositionalSpec] = []
    static let options: [OptionSpec] = []
    static let examples = ["quiver stats --db ./vectors.db", "quiver stats --json"]

    init(_ a: ParsedArguments) {}

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let s = try db.stats()
        if context.json { try context.printJSON(s); return }
        context.line("Database        \(s.path)")
        context.line("LMDB            \(formatBytes(s.lmdbFileBytes)) on disk, map \(formatBytes(s.lmdbMapBytes))")
        context.line("Write-ahead log \(formatBytes(s.walBytes)) in \(s.walFiles) file(s), last sequence \(s.lastSequence)")
        context.line("Segments        \(formatBytes(s.segmentBytes))")
        context.line("On disk         \(formatBytes(s.diskBytes))" + (s.diskBytesPerVector.map { String(format: ", %.0f bytes per vector", $0) } ?? ""))
        context.line()
        if s.collections.isEmpty { context.line("No collections"); return }
        context.table(["COLLECTION", "DOCUMENTS", "DIMENSION", "METRIC", "STORED", "INDEX", "SEGMENTS", "SEALED", "DELETED", "MUTABLE", "INDEX MEMORY"], s.collections.map {
            let i = $0.index
            return [$0.name, String($0.documents), String($0.dimension), $0.metric.rawValue, formatBytes($0.storedBytes),
                    i?.kinds.joined(separator: "+") ?? "-",
                    String(i?.sealedSegments ?? 0), String(i?.sealedVectors ?? 0), String(i?.deletedVectors ?? 0),
                    String(i?.mutableVectors ?? 0), formatBytes(i?.memoryBytes ?? 0)]
        })
        let kinds = s.collections.flatMap { c in (c.index?.byKind ?? []).map { (c.name, $0) } }
        if !kinds.isEmpty {
            context.line()
            context.table(["COLLECTION", "KIND", "SEGMENTS", "VECTORS", "DELETED", "MEMORY", "BYTES/VECTOR"], kinds.map { name, k in
                // An HNSW kind names its quantization: "hnsw sq8", or how many segments are sq8 while a
                // compaction has not yet rewritten the others.
                let sq8 = k.sq8Segments == 0 ? "" : k.sq8Segments == k.segments ? " sq8" : " (\(k.sq8Segments) sq8)"
                return [name, k.kind.rawValue + sq8, String(k.segments), String(k.vectors), String(k.deletedVectors), formatBytes(k.memoryBytes),
                        String(format: "%.0f", k.bytesPerVector)]
            })
        }
        if let error = s.collections.compactMap({ $0.index?.lastMaintenanceError }).first {
            context.line()
            context.line("Last background maintenance error: \(error)")
        }
    }
}

struct CompactCommand: CLICommand {
    static let name = "compact"
    static let abstract = "Seal mutable segments into index segments (HNSW or IVF-PQ) and compact sealed ones now."
    static let positionals = [PositionalSpec(name: "collection", help: "The collection (default: every collection).", optional: true)]
    static let options: [OptionSpec] = []
    static let discussion = """
    Sealing and compaction also run in the background as data changes; this runs them now and waits.
    Compaction merges small sealed segments into the largest one, rewrites segments whose share of
    deleted vectors passes the collection's threshold, and rebuilds segments of another kind than the
    collection's (IVF-PQ collections seal HNSW segments until they hold 1,000 vectors to train on).
    IVF-PQ codebooks are retrained here when the collection has grown 4x or new vectors drifted.
    Readers and writers keep working meanwhile.
    """
    static let examples = ["quiver compact papers", "quiver compact --db ./vectors.db"]

    let collection: String?
    init(_ a: ParsedArguments) { collection = a.positional(0) }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let started = Date()
        let json = context.json
        try db.compact(collection) { p in
            if !json { FileHandle.standardError.write(Data("[\(String(format: "%6.1fs", Date().timeIntervalSince(started)))] \(p.collection): \(p.message)\n".utf8)) }
        }
        let stats = try db.stats().collections.filter { collection == nil || $0.name == collection }
        if json { try context.printJSON(stats); return }
        for c in stats {
            let i = c.index
            context.line("\(c.name): \(i?.sealedSegments ?? 0) sealed segment(s), \(i?.sealedVectors ?? 0) vectors (\(i?.deletedVectors ?? 0) deleted), \(i?.mutableVectors ?? 0) in the mutable segment")
        }
    }
}

struct VerifyCommand: CLICommand {
    static let name = "verify"
    static let abstract = "Check every checksum and that documents, vectors and index segments agree; change nothing."
    static let positionals: [PositionalSpec] = []
    static let options = [OptionSpec(name: "quick", help: "Compare up to 1,000 entries of each index segment with LMDB's vectors instead of all (every checksum is still checked).")]
    static let discussion = """
    Checks every log record's and segment file's checksums, the checksum of every stored LMDB value
    (each damaged one is named: the collection and the document or row), that documents, rows,
    vectors, counters, payload and BM25 entries and the field catalog agree, and that each index
    segment agrees with LMDB: an HNSW segment's vectors equal LMDB's, an IVF-PQ segment's codes
    encode them. Opens the database read-only: it changes no file, and works beside a writer in
    another process. Log records not yet applied to LMDB (a write in flight, or the tail of a crash
    that the next writable open replays) are noted, not problems. Exit code 0 when the database is
    sound, 1 when a problem was found (each is printed).
    """
    static let examples = ["quiver verify --db ./vectors.db", "quiver verify --quick", "quiver verify --json"]

    let quick: Bool
    init(_ a: ParsedArguments) { quick = a.flag("quick") }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let report = try db.verify(quick: quick)
        if context.json { try context.printJSON(report) } else {
            context.line("Checked \(report.logRecords) log record(s), \(report.segmentFiles) segment file(s), \(report.documents) document(s)")
            for n in report.notes { context.line("note: \(MessageText.escapingControls(n))") }
            for p in report.problems { context.line("problem: \(MessageText.escapingControls(p))") }
            context.line(report.ok ? "OK" : "\(report.problems.count) problem(s) found")
        }
        if !report.ok { throw CLIError("verify found \(report.problems.count) problem(s)") }
    }
}

struct BackupCommand: CLICommand {
    static let name = "backup"
    static let abstract = "Copy a consistent snapshot of the database into a new directory."
    static let positionals = [PositionalSpec(name: "target", help: "The backup directory (must not exist or be empty).")]
    static let options: [OptionSpec] = []
    static let discussion = """
    Opens the database read-only, so it works while another process has it open for reads and
    writes. The backup holds LMDB (one snapshot), the segment files that snapshot names, and a
    BACKUP manifest with each file's size and CRC-32C, written last. A failed backup leaves nothing
    in the target.
    """
    static let examples = ["quiver backup /backups/vectors-2026-11-25 --db ./vectors.db"]

    let target: String
    init(_ a: ParsedArguments) { target = a.positional(0)! }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let report = try db.backup(to: target)
        if context.json { try context.printJSON(report); return }
        context.line("Backed up \(report.files) file(s), \(formatBytes(report.bytes)), every write up to sequence \(report.appliedSequence), to \(target)")
    }
}

struct RestoreCommand: CLICommand {
    static let name = "restore"
    static let abstract = "Restore a backup into a database directory, then verify it."
    static let positionals = [
        PositionalSpec(name: "backup", help: "A directory written by 'quiver backup'."),
        PositionalSpec(name: "target", help: "The database directory to create (must not exist or be empty)."),
    ]
    static let options = [OptionSpec(name: "force", help: "Replace the database in a non-empty target (refused while it is open).")]
    static let discussion = "Every file is checked against the backup's manifest first; nothing is written outside the target."
    static let examples = ["quiver restore /backups/vectors-2026-11-25 ./vectors.db", "quiver restore /backups/latest ./vectors.db --force"]

    let backup: String
    let target: String
    let force: Bool
    init(_ a: ParsedArguments) {
        backup = a.positional(0)!
        target = a.positional(1)!
        force = a.flag("force")
    }

    func run(_ context: CommandContext) throws {
        let report = try Database.restore(backup: backup, to: target, overwrite: force)
        let db = try Database(path: target, options: DatabaseOptions(createIfMissing: false))
        let verify = try db.verify()
        db.close()
        if context.json { try context.printJSON(["restored": report.files, "problems": verify.problems.count]) } else {
            context.line("Restored \(report.files) file(s) into \(target) (writes up to sequence \(report.appliedSequence)); verify: \(verify.ok ? "OK" : "\(verify.problems.count) problem(s)")")
            for p in verify.problems { context.line("problem: \(p)") }
        }
        if !verify.ok { throw CLIError("the restored database has problems") }
    }
}

struct IndexCommand: CLICommand {
    static let name = "index"
    static let abstract = "Declare a payload index on a metadata field, so that filters on it need not read every document."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection."),
        PositionalSpec(name: "field", help: "The metadata field."),
    ]
    static let options = [OptionSpec(name: "type", value: "<type>", help: "keyword (or string), integer (or int), float (or double) or bool (or boolean) (required).")]
    static let discussion = "The index is built now over the stored documents and kept current by every write."
    static let examples = ["quiver index papers year --type integer", "quiver index papers tags --type keyword"]

    let collection: String
    let field: String
    let type: PayloadIndexType

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        field = a.positional(1)!
        guard let t = a.value("type").flatMap(PayloadIndexType.init(named:)) else {
            throw UsageError(message: "--type must be keyword (or string), integer (or int), float (or double) or bool (or boolean)", command: Self.name)
        }
        type = t
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        try db.collection(collection).createPayloadIndex(field, type: type)
        if context.json { try context.printJSON(["indexed": field]) } else { context.line("Indexed '\(field)' of '\(collection)' as \(type.rawValue)") }
    }
}
