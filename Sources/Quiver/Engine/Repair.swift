import Foundation
import QuiverCore
import QuiverStorage

/// A log record that replay could not apply.
public struct UnappliedRecord: Sendable, Equatable, Codable {
    /// Its sequence number.
    public var sequence: UInt64
    /// Its record type (docs/file-formats.md, "Log payloads").
    public var type: UInt8
    /// What it does, in a few words ("a write of 3 documents to collection number 2").
    public var summary: String
    /// Why it cannot apply.
    public var reason: String

    /// The sentence that refuses writes while this record is pending.
    func refusal(path: String) -> QuiverError {
        .unavailable("the database at \(path) takes no writes: log record \(sequence) (\(summary)) cannot be applied: \(reason). Reads work; run `quiver repair` (Database.repair()) to set the record aside into \(path)/quarantine and resume writes")
    }
}

/// What `Database.repair` did.
public struct RepairReport: Sendable, Equatable, Codable {
    /// Log records set aside (each saved as `quarantine/<sequence>.record`, with a `.txt` beside it).
    public var setAside: [UnappliedRecord] = []
    /// Log records replayed after the ones set aside.
    public var replayedRecords = 0
    /// Segment files rebuilt from LMDB (they were damaged, truncated or missing).
    public var rebuiltSegments: [String] = []
    /// Collections whose payload indexes were rebuilt from their documents (they disagreed).
    public var rebuiltPayloadIndexes: [String] = []
    /// Collections whose BM25 index was rebuilt from their documents' text (it disagreed).
    public var rebuiltTextIndexes: [String] = []
    /// Collections whose metadata field catalog was rebuilt from their documents (it disagreed).
    public var rebuiltFieldCatalogs: [String] = []
    /// The part of a damaged log set aside when the database was opened to be repaired
    /// (`DatabaseOptions.salvageDamagedLog`): the writes it held are lost to the database.
    public var salvagedLog: WriteAheadLog.SalvageReport?

    /// Whether repair found nothing to do.
    public var nothingToDo: Bool {
        salvagedLog == nil && setAside.isEmpty && rebuiltSegments.isEmpty && rebuiltPayloadIndexes.isEmpty && rebuiltTextIndexes.isEmpty
            && rebuiltFieldCatalogs.isEmpty
    }
}

#if DEBUG
/// Test hooks, compiled into debug builds only.
enum DebugHooks {
    /// A document id whose write cannot be applied: applying a log record that writes it throws, as a
    /// future bug or a limit changed between versions would. From `QUIVER_DEBUG_UNAPPLIABLE_ID`, so
    /// that a CLI process under test gets it too.
    nonisolated(unsafe) static var unappliableID: String? = ProcessInfo.processInfo.environment["QUIVER_DEBUG_UNAPPLIABLE_ID"]
}
#endif

extension Database {
    /// Thrown inside the replay loop to stop it at a record that cannot apply.
    private struct StopReplay: Error {}

    /// Replays the log after `applied`, one LMDB transaction per record, in order, until the end or
    /// the first record that cannot apply for a reason that will not pass (`isPersistent`), which is
    /// returned; a passing failure (I/O, a full disk) is thrown.
    static func replay(_ wal: WriteAheadLog, after applied: UInt64, env: LMDBEnvironment, tables: Tables) throws -> (Int, UnappliedRecord?) {
        var replayed = 0
        var unapplied: UnappliedRecord?
        do {
            try wal.forEachRecord(after: applied) { record in
                do {
                    try env.write { txn in
                        let mutation = try LogRecord(record) { number in try Database.info(number: number, txn: txn, tables: tables).dimension }
                        try Database.apply(mutation, sequence: record.sequence, txn: txn, tables: tables)
                    }
                } catch where isPersistent(error) {
                    unapplied = UnappliedRecord(sequence: record.sequence, type: record.type,
                                                summary: summarize(record), reason: SegmentManager.describe(error))
                    throw StopReplay()
                }
                replayed += 1
            }
        } catch is StopReplay {}
        return (replayed, unapplied)
    }

    /// Whether applying a record failed for a reason that repeats on every attempt (the record's
    /// contents against the storage's rules), as opposed to the moment (I/O, a full disk, LMDB's map
    /// or reader table, a damaged LMDB file), after which replay must simply be tried again.
    static func isPersistent(_ error: Error) -> Bool {
        guard let e = error as? StorageError else { return true }
        switch e.kind {
        case .io, .failStopped, .locked: return false
        case .lmdb: return !e.isEnvironmentalLMDBError
        case .corrupt, .compression, .invalidArgument: return true
        }
    }

    /// A few words on what a raw log record does.
    static func summarize(_ record: WALRecord) -> String {
        var r = ByteReader(record.payload)
        switch record.type {
        case 1: return "create collection"
        case 2: return "drop collection number \((try? r.readUInt32()).map(String.init) ?? "?")"
        case 3, 5:
            let number = (try? r.readUInt32()).map(String.init) ?? "?"
            _ = try? r.readUInt8()
            let count = (try? r.readVarint()).map(String.init) ?? "?"
            return "\(record.type == 5 ? "an import batch" : "a write") of \(count) document(s) to collection number \(number)"
        case 4:
            let number = (try? r.readUInt32()).map(String.init) ?? "?"
            let count = (try? r.readVarint()).map(String.init) ?? "?"
            return "a delete of \(count) document(s) from collection number \(number)"
        case 6: return "create a payload index on collection number \((try? r.readUInt32()).map(String.init) ?? "?")"
        default: return "record type \(record.type)"
        }
    }

    /// Repairs what can be repaired without losing an acknowledged write that can be applied:
    ///
    /// 1. A log record that replay could not apply (`openReport.unappliedRecord`) is set aside: its
    ///    bytes (the whole log record, framing and checksum included) are saved durably as
    ///    `<db>/quarantine/<sequence, 20 digits>.record` with the reason in a `.txt` beside it, then
    ///    LMDB records it as passed over, and replay goes on; each further record that cannot apply
    ///    is set aside the same way. Writes are taken again afterwards.
    /// 2. Segment files that could not be used are rebuilt now from LMDB.
    /// 3. Payload indexes, BM25 postings and the metadata field catalog that disagree with the
    ///    documents are rebuilt from them.
    ///
    /// Nothing else is changed. Needs the database open for writing.
    public func repair(progress: (@Sendable (CompactionProgress) -> Void)? = nil) throws -> RepairReport {
        var report = RepairReport()
        report.salvagedLog = openReport.salvagedLog
        try withWriterLock {
            try checkOpenForRepair()
            if unapplied != nil, let wal {
                try wrapStorage {
                    while true {
                        let applied = try appliedSequence()
                        let (replayed, failed) = try Database.replay(wal, after: applied, env: env, tables: tables)
                        report.replayedRecords += replayed
                        guard let bad = failed else { break }
                        try quarantine(bad, wal: wal)
                        report.setAside.append(bad)
                    }
                    // The in-memory segments were loaded from LMDB before the records replayed now.
                    let infos = try env.read { txn in try Database.intactCollections(txn: txn, tables: tables) }
                    try segments.queue.sync { try segments.load(infos) }
                }
                filterCache.removeAll()
                clearUnapplied()
            }
            try rebuildDerivedIndexes(&report, progress: progress)
        }
        for segs in segments.collectionsNeedingHeal() {
            let before = segments.damagedSegments()
            var failure: Error?
            segments.queue.sync {
                do { _ = try segments.heal(segs, progress: progress.map { p in { p($0) } }) } catch { failure = error }
            }
            if let f = failure { throw (f as? StorageError).map(QuiverError.storage) ?? f }
            report.rebuiltSegments += before.filter { !segments.damagedSegments().contains($0) }
        }
        return report
    }

    /// Saves `record` into the quarantine directory (durably) and marks it applied in LMDB.
    private func quarantine(_ bad: UnappliedRecord, wal: WriteAheadLog) throws {
        var raw: [UInt8]?
        try wal.forEachRecord(after: bad.sequence - 1) { record in
            if record.sequence == bad.sequence {
                var out: [UInt8] = []
                WALFormat.encodeRecord(sequence: record.sequence, type: record.type, payload: record.payload, into: &out)
                raw = out
            }
        }
        guard let bytes = raw else { throw StorageError(.corrupt, "log record \(bad.sequence) to set aside is not in the log") }
        let dir = path + "/quarantine"
        try FileSystem.createDirectory(dir)
        let name = String(format: "%020llu", bad.sequence)
        let note = "log record \(bad.sequence), type \(bad.type): \(bad.summary)\nset aside at \(Date()) because it cannot be applied: \(bad.reason)\n"
        try FileSystem.writeAtomically(Array(note.utf8), to: dir + "/" + name + ".txt")
        try FileSystem.writeAtomically(bytes, to: dir + "/" + name + ".record")
        try env.write { txn in try Meta.setAppliedSequence(bad.sequence, txn: txn, tables: tables) }
    }

    /// Rebuilds, in one LMDB transaction per collection, the payload indexes and BM25 postings that
    /// disagree with the documents (derived data: never logged, always recomputable).
    private func rebuildDerivedIndexes(_ report: inout RepairReport, progress: (@Sendable (CompactionProgress) -> Void)?) throws {
        for info in try collections() {
            let (payloadOK, textOK, fieldsOK) = try readTransaction { txn in try derivedIndexesAgree(info, txn: txn) }
            if !fieldsOK {
                try wrapStorage { try env.write { txn in try FieldCatalog.rebuild(info.number, txn: txn, tables: tables) } }
                report.rebuiltFieldCatalogs.append(info.name)
            }
            if payloadOK && textOK { continue }
            progress?(CompactionProgress(collection: info.name, message: "rebuilding \(payloadOK ? "" : "payload indexes")\(payloadOK || textOK ? "" : " and ")\(textOK ? "" : "the BM25 index") from the documents"))
            try wrapStorage {
                try env.write { txn in
                    if !payloadOK { try PayloadIndexing.rebuild(info, txn: txn, tables: tables) }
                    if !textOK { try TextIndexStore.rebuild(info, txn: txn, tables: tables) }
                }
            }
            if !payloadOK { report.rebuiltPayloadIndexes.append(info.name) }
            if !textOK { report.rebuiltTextIndexes.append(info.name) }
            filterCache.removeAll()
        }
    }
}
