import Foundation
import Quiver

struct RepairCommand: CLICommand {
    static let name = "repair"
    static let abstract = "Set aside log records that cannot be applied, and rebuild damaged segments and indexes from LMDB."
    static let positionals: [PositionalSpec] = []
    static let options: [OptionSpec] = []
    static let discussion = """
    Opens the database for writing and repairs what can be repaired without losing a write that can
    be applied:
      - a write-ahead log damaged in records LMDB does not hold yet (the open refuses it, naming the
        file and byte) is cut at the damage: the damaged file is copied into
        <db>/quarantine/wal-<time>/ and later files moved there; the writes from the damage on are
        lost (this is the one step that loses writes; damage in records LMDB holds is dropped by
        any open without loss);
      - a log record that cannot be applied (the open says which and why; the database then serves
        reads but refuses writes) is set aside: saved whole as <db>/quarantine/<sequence>.record,
        with the reason in a .txt beside it, and passed over; the records after it are replayed,
        and writes are taken again;
      - index segment files that are damaged, truncated or missing are rebuilt from the documents'
        vectors in LMDB (until then their rows are searched exactly);
      - payload indexes and the BM25 index are rebuilt from the documents where they disagree.
    Everything set aside or rebuilt is listed. Run `quiver verify` afterwards.
    Exit code 0 when the database is sound afterwards.
    """
    static let examples = ["quiver repair --db ./vectors.db", "quiver repair --json"]

    init(_ a: ParsedArguments) {}

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(salvageDamagedLog: true)
        let started = Date()
        let json = context.json
        let report = try db.repair { p in
            if !json { FileHandle.standardError.write(Data("[\(String(format: "%6.1fs", Date().timeIntervalSince(started)))] \(p.collection): \(p.message)\n".utf8)) }
        }
        if json { try context.printJSON(report); return }
        if let s = report.salvagedLog {
            context.line("the write-ahead log is damaged in \(s.damagedFile) at byte \(s.offset): log records from \(s.firstLostSequence) on are lost to the database")
            for f in s.setAsideFiles { context.line("  set aside: \(f)") }
        }
        for r in report.setAside {
            context.line("set aside log record \(r.sequence) (\(r.summary)): \(r.reason)")
            context.line("  saved as \(db.path)/quarantine/\(String(format: "%020llu", r.sequence)).record")
        }
        if report.replayedRecords > 0 { context.line("replayed \(report.replayedRecords) later log record(s)") }
        for s in report.rebuiltSegments { context.line("rebuilt: \(s)") }
        for c in report.rebuiltPayloadIndexes { context.line("rebuilt the payload indexes of '\(c)'") }
        for c in report.rebuiltTextIndexes { context.line("rebuilt the BM25 index of '\(c)'") }
        context.line(report.nothingToDo ? "Nothing to repair" : "Repaired; writes are taken")
    }
}
