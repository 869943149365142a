import Foundation
import QuiverCore
import QuiverIndex
import QuiverStorage

/// What `Database.verify` found.
public struct VerifyReport: Sendable, Codable, Equatable {
    /// Write-ahead log records read and checksummed.
    public var logRecords = 0
    /// Segment files read and checksummed.
    public var segmentFiles = 0
    /// Documents checked.
    public var documents = 0
    /// LMDB values whose checksum was checked.
    public var storedValues = 0
    /// Of those, damaged ones (each also a problem).
    public var damagedValues = 0
    /// Index segment entries compared with the vectors in LMDB (HNSW: the stored vector; IVF-PQ:
    /// the code). In a quick verify, a sample.
    public var segmentVectorsCompared = 0
    /// Whether the segment-vs-LMDB comparison was sampled (`verify(quick: true)`).
    public var quick = false
    /// Every inconsistency found, one sentence each (empty when the database is sound).
    public var problems: [String] = []
    /// What is worth knowing but is no damage, one sentence each: log records not yet applied to
    /// LMDB (a write in flight, or a crash's tail that the next writable open replays), a torn log
    /// tail that the next writable open cuts.
    public var notes: [String] = []

    /// Whether nothing is wrong.
    public var ok: Bool { problems.isEmpty }
}

extension Database {
    /// Segment entries a quick verify compares with LMDB, per segment (evenly spread).
    public static let quickVerifySample = 1_000

    /// Checks the database without changing anything: every write-ahead log record's checksum,
    /// every segment file's checksums and structure, and in one LMDB snapshot the checksum of every
    /// stored value (each damaged one is a problem naming the document or row), that every document
    /// has its vector and row entry, that the counters match, that no vector or row is orphaned,
    /// that payload and BM25 entries match the documents, that every live document's vector is in
    /// exactly one index segment (sealed or mutable) and no deleted one is, and that each sealed
    /// segment agrees with LMDB's vectors: an HNSW segment's stored vector equals the LMDB vector
    /// (L2-normalized for cosine, within 1e-4), an IVF-PQ segment's code is a nearest-centroid
    /// encoding of it. `quick` compares up to `quickVerifySample` entries of each segment (evenly
    /// spread) instead of all; everything else is checked in full. Runs while the database is open;
    /// pauses background maintenance meanwhile.
    ///
    /// Read-only (`DatabaseOptions(readOnly: true)`, also beside a writer in another process), it
    /// changes no file either. The log files are read read-only and checked as recovery would
    /// check them (`WriteAheadLog.inspect`): what recovery would refuse is a problem; log records
    /// past LMDB's last applied one (a write in flight, or the tail of a crash that the next writable
    /// open replays) and a torn tail are `notes`. The index check compares the segment files the
    /// snapshot names with its documents (every live row up to the sealed mark in exactly one file,
    /// none past it), not this process's in-memory copy; when the writer merges a file away before
    /// it is read, the check runs again on a newer snapshot (for up to 5 s, then a note says which
    /// file could not be read).
    public func verify(quick: Bool = false) throws -> VerifyReport {
        guard options.readOnly else { return try verifyOnce(log: true, quick: quick).report }
        // The log is read once, read-only; then the rest until it is exact.
        var logReport = VerifyReport()
        try checkLogReadOnly(&logReport)
        // Beside a writer, a segment file its snapshot names may be merged away before it is read:
        // the check then runs again on a newer snapshot, for up to 5 s.
        let deadline = monotonicSeconds() + 5
        var attempts = 0
        while true {
            var (report, moved) = try verifyOnce(log: false, quick: quick)
            attempts += 1
            report.logRecords = logReport.logRecords
            report.problems = logReport.problems + report.problems
            report.notes = logReport.notes + report.notes
            if moved.isEmpty { return report }
            if monotonicSeconds() > deadline {
                report.notes.append("the writer merged segments away throughout \(attempts) attempts in 5 s, so \(moved.count) segment file(s) of the snapshot checked could not be read (the first: \(moved[0])); run verify again when the writer is idle or stopped")
                return report
            }
            usleep(2_000)
        }
    }

    /// One check, in one LMDB snapshot. Read-only, also the segment files that snapshot names
    /// which the writer removed before they were read (empty when every file was read).
    private func verifyOnce(log: Bool, quick: Bool) throws -> (report: VerifyReport, moved: [String]) {
        var report = VerifyReport()
        report.quick = quick
        var moved: [String] = []
        if log, let wal {
            try wrapStorage { try wal.forEachRecord(after: 0) { _ in report.logRecords += 1 } }
        }
        // With maintenance paused the segment set cannot change under the check.
        try segments.queue.sync {
            try readTransaction { txn in
                var infos: [CollectionInfo] = []
                try txn.forEach(tables.catalog) { k, v in
                    report.storedValues += 1
                    do {
                        infos.append(try CollectionInfo(stored: v, key: k))
                    } catch {
                        report.damagedValues += 1
                        let name = String(decoding: k, as: UTF8.self)
                        report.problems.append("'\(name)': the stored catalog entry is damaged (\(StoredValue.intactPayload(v, key: k) == nil ? StoredValue.damage(v) : "it does not decode"))")
                    }
                    return true
                }
                for info in infos {
                    try verify(info, txn: txn, quick: quick, report: &report, moved: &moved)
                }
            }
        }
        return (report, moved)
    }

    /// Read-only: reads the log files without changing them (`WriteAheadLog.inspect`); what
    /// recovery would refuse is a problem, what it would replay or cut is a note.
    private func checkLogReadOnly(_ report: inout VerifyReport) throws {
        // LMDB's applied number first: a record the log holds past it is then unapplied, or applied
        // since by a writer beside us; never a gap.
        let applied = try appliedSequence()
        let log = try wrapStorage { try WriteAheadLog.inspect(directory: path + "/wal") }
        report.logRecords = log.records
        report.problems += log.problems
        if let last = log.lastSequence, last > applied {
            let pending = last - max(applied, (log.firstSequence ?? 1) - 1)
            report.notes.append("the log holds \(pending) record(s) past LMDB's last applied record (\(applied)): a write in flight, or the tail of a crash that the next writable open replays")
        }
        if log.tailBytes > 0 {
            report.notes.append("the last log file ends in \(log.tailBytes) byte(s) that are no whole record: an append in flight, or one a crash tore, which the next writable open cuts")
        }
        if let file = log.incompleteLastFile {
            report.notes.append("the log file \(file) is shorter than its header: a new log file in the making, or one a crash interrupted, which the next writable open removes")
        }
    }

    /// Checks one collection in `txn`. Read-only, a segment file the snapshot names that the
    /// writer has removed since goes to `moved`.
    private func verify(_ info: CollectionInfo, txn: LMDBTransaction, quick: Bool, report: inout VerifyReport, moved: inout [String]) throws {
        let c = info.number
        let name = info.name
        let vectorTable = VectorTable(info, tables: tables)
        func problem(_ s: String) { if report.problems.count < 1_000 { report.problems.append("'\(name)': " + s) } }
        // The segment files this snapshot names, mapped first: a mapping stays valid when a writer
        // beside us merges the file away and removes it.
        var records: [SegmentRecord] = []
        try txn.forEach(tables.segments, prefix: Keys.collection(c)) { k, v in
            if let record = try? SegmentRecord(stored: v, key: k, collection: name) { records.append(record) }
            return true
        }
        let mappings: [Result<MappedFile, any Error>] = records.map { record in
            Result { try MappedFile(path: segments.directory(c) + "/" + record.fileName) }
        }
        // Every stored value of the collection: its checksum. Damaged ones are findings here and are
        // passed over by the cross-checks below (which would otherwise report their consequences).
        var damagedDocuments = Set<String>()
        var damagedRows = Set<UInt64>()
        var damagedKeys = Set<[UInt8]>()
        for table in StoredValue.checkedTables(tables) where table != tables.catalog {
            try txn.forEach(table, prefix: Keys.collection(c)) { k, v in
                // Single-key tables hold exactly the prefix; others only longer keys of this collection.
                report.storedValues += 1
                guard StoredValue.intactPayload(v, key: k) == nil else { return true }
                report.damagedValues += 1
                problem("the stored \(StoredValue.describe(table: table.name, key: k)) is damaged (\(StoredValue.damage(v)))")
                damagedKeys.insert(Array(k))
                if table == tables.documents { damagedDocuments.insert(String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)) }
                if table == tables.rows || table == tables.vectors { damagedRows.insert(Keys.rowID(of: k)) }
                return true
            }
        }
        // Rows whose document is damaged (its row is unknown): found through the rows table.
        var rowsOfDamaged = damagedRows
        if !damagedDocuments.isEmpty {
            try txn.forEach(tables.rows, prefix: Keys.collection(c)) { k, v in
                if let id = try? RowCodec.decode(v, key: k, collection: name), damagedDocuments.contains(id) { rowsOfDamaged.insert(Keys.rowID(of: k)) }
                return true
            }
        }
        let incomplete = !damagedDocuments.isEmpty
        // Documents, rows and vectors agree; the payload entries each document should have.
        var live: [UInt64: String] = [:]
        var expected = DerivedIndexExpectation(info)
        try txn.forEach(tables.documents, prefix: Keys.collection(c)) { k, v in
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)
            report.documents += 1
            if damagedDocuments.contains(id) { return true }
            do {
                let record = try DocumentRecord(stored: v, key: k, collection: name)
                expected.add(row: record.row, record: record)
                if let previous = live[record.row] { problem("documents '\(previous)' and '\(id)' share row \(record.row)") }
                live[record.row] = id
                if !damagedRows.contains(record.row) {
                    let rowID = try RowCodec.read(c, record.row, collection: name, txn: txn, tables: tables)
                    if rowID != id { problem("document '\(id)' has row \(record.row), which names \(rowID.map { "'\($0)'" } ?? "nothing")") }
                    let (present, damage) = try vectorTable.check(record.row, txn: txn)
                    if !present { problem("document '\(id)' has no vector") }
                    if let damage { problem("document '\(id)' has \(damage)") }
                }
            } catch {
                problem("the stored document '\(id)' does not decode: \(error)")
            }
            return true
        }
        for table in [tables.rows, tables.vectors] {
            try txn.forEach(table, prefix: Keys.collection(c)) { k, _ in
                if table == tables.vectors && vectorTable.piece(ofKey: k) == nil {
                    problem("a key of \(k.count) bytes in table 'vectors' is not of the collection's layout (\(vectorTable.pieces) piece\(vectorTable.pieces == 1 ? "" : "s") a vector)")
                    return true
                }
                let row = Keys.rowID(of: k)
                if live[row] == nil && !rowsOfDamaged.contains(row) { problem("row \(row) in table '\(table.name)' belongs to no document") }
                return true
            }
        }
        // Payload entries, BM25 postings, document frequencies and totals agree with the documents
        // (the damage found above is passed over, not reported again through its consequences).
        _ = try expected.compare(txn: txn, tables: tables, skipRows: rowsOfDamaged, skipKeys: damagedKeys, incomplete: incomplete, problem: problem)
        // The metadata field catalog against the documents.
        if !incomplete { _ = try expected.compareFields(txn: txn, tables: tables, problem: problem) }
        // Counters (when damaged, reported above).
        if !(try txn.contains(tables.counters, Keys.collection(c))) {
            problem("no counters")
        } else if let counters = try? Counters.read(c, collection: name, txn: txn, tables: tables) {
            if counters.liveDocuments != UInt64(live.count + damagedDocuments.count) { problem("the counter says \(counters.liveDocuments) documents; \(live.count + damagedDocuments.count) are stored") }
            if let maxRow = live.keys.max(), maxRow >= counters.nextRow { problem("row \(maxRow) is at or past the next row id \(counters.nextRow)") }
        }
        // Each sealed segment's vectors against LMDB's (all of them, or a sample when quick).
        func stored(_ row: UInt64) -> [Float]? {
            guard live[row] != nil, !damagedRows.contains(row) else { return nil }
            return (try? vectorTable.read(row, txn: txn)) ?? nil
        }
        func compareWithLMDB(_ indexes: [(UInt64, SegmentIndex)]) {
            for (segmentID, index) in indexes {
                let entries = index.any.count
                // At most quickVerifySample entries: every step-th one.
                let step = quick ? max(1, (entries + Database.quickVerifySample - 1) / Database.quickVerifySample) : 1
                func compare(_ id: Int64, _ deleted: Bool, _ vector: UnsafeBufferPointer<Float>) {
                        guard !deleted, var expected = stored(UInt64(id)) else { return }
                        if info.metric.normalizes { expected = expected.normalized() }
                        report.segmentVectorsCompared += 1
                        var worst: Float = 0, at = 0
                        var scale: Float = 1
                        for j in 0..<info.dimension {
                            scale = max(scale, abs(expected[j]))
                            let e = abs(expected[j] - vector[j])
                            if !(e <= worst) { worst = e; at = j }
                        }
                        if !(worst <= 1e-4 * scale) {
                            problem("sealed segment \(segmentID) holds a vector of document '\(live[UInt64(id)]!)' (row \(id)) that differs from the stored one (component \(at): \(vector[at]) in the segment, \(expected[at]) from LMDB)")
                        }
                }
                switch index {
                case .hnsw(let h):
                    h.forEachStoredVector(every: step, compare)
                case .sq8(let h):
                    h.forEachStoredVector(every: step, compare)
                    for m in h.checkCodes(every: step) {
                        problem("sealed sq8 segment \(segmentID): the codes of document '\(live[UInt64(m.id)] ?? "?")' (row \(m.id)) do not encode its vector: \(m.reason)")
                    }
                case .exact:
                    break  // a stand-in of LMDB's own vectors, for a damaged file (reported above)
                case .ivfpq(let v):
                    let (checked, mismatches) = v.checkCodes(every: step) { stored(UInt64($0)) }
                    report.segmentVectorsCompared += checked
                    for m in mismatches {
                        problem("sealed IVF-PQ segment \(segmentID): the code of document '\(live[UInt64(m.id)] ?? "?")' (row \(m.id)) does not encode its stored vector: \(m.reason)")
                    }
                }
            }
        }
        // Segment files: read back from disk and checked in full.
        var files: [(SegmentRecord, SegmentIndex)] = []
        for (record, mapping) in zip(records, mappings) {
            let path = segments.directory(c) + "/" + record.fileName
            do {
                let index = try SegmentStore.readSegment(mapping.get(), kind: record.kind)
                if index.count != Int(record.vectors) { problem("segment file \(path) holds \(index.count) vectors; the manifest says \(record.vectors)") }
                report.segmentFiles += 1
                files.append((record, index))
            } catch let e as StorageError where options.readOnly && e.kind == .io && e.code == ENOENT {
                // Beside a writer: merged away after this snapshot named it, unless the latest
                // snapshot still names it and it is still missing with no commit meanwhile.
                let before = env.lastTransactionID
                let stillNamed = try env.read { latest in try Manifest.records(c, name: name, txn: latest, tables: tables).contains { $0.id == record.id } }
                if stillNamed && !FileSystem.exists(path) && env.lastTransactionID == before {
                    problem("segment file \(path): \(e)")
                } else {
                    moved.append("'\(name)': segment file \(path)")
                }
            } catch {
                problem("segment file \(path): \(error)")
            }
        }
        if options.readOnly {
            // Read-only (perhaps beside a writer), the segment files of this snapshot are checked
            // against its documents, in the same snapshot: every live row up to the sealed mark is
            // in exactly one of them (rows deleted since their segment was sealed are tombstoned
            // from LMDB when loaded), and none past the mark (those are the mutable segment's).
            guard files.count == records.count else { return }  // a file was missing: reported above
            let sealedThrough = try Manifest.state(c, name: name, txn: txn, tables: tables).sealedThrough
            var seen: [UInt64: Int] = [:]
            for (record, index) in files {
                index.forEachID { id, deleted in
                    guard !deleted else { return }
                    let row = UInt64(id)
                    seen[row, default: 0] += 1
                    if row > sealedThrough && live[row] != nil {
                        problem("segment file \(record.fileName) holds row \(row), past the sealed mark \(sealedThrough)")
                    }
                }
            }
            for (row, id) in live where row <= sealedThrough && seen[row] != 1 && !(damagedRows.contains(row) && seen[row] == nil) {
                problem("document '\(id)' (row \(row)) is in \(seen[row] ?? 0) sealed segment files, not 1")
            }
            compareWithLMDB(files.map { ($0.0.id, $0.1) })
            return
        }
        // Every live row is in exactly one segment, not tombstoned; no deleted row is live in one.
        guard let segs = segments.segments(c) else { problem("no index segments in memory"); return }
        // (A segment whose file could not be used is searched through an exact stand-in of LMDB's
        // rows; its file was reported above.)
        segs.lock.read {
            var seen: [UInt64: Int] = [:]
            func visit(_ id: Int64, _ deleted: Bool, _ where_: String) {
                guard !deleted else { return }
                let row = UInt64(id)
                seen[row, default: 0] += 1
                if live[row] == nil && !rowsOfDamaged.contains(row) { problem("\(where_) returns row \(row), which is deleted") }
            }
            for s in segs.sealed { s.index.forEachID { visit($0, $1, "sealed segment \(s.record.id)") } }
            for (label, flat) in [("the mutable segment", segs.mutable), ("the segment being sealed", segs.frozen)] {
                guard let flat = flat else { continue }
                for (row, _) in live where flat.contains(Int64(row)) { visit(Int64(row), false, label) }
            }
            for (row, id) in live where seen[row] != 1 && !(damagedRows.contains(row) && seen[row] == nil) {
                problem("document '\(id)' (row \(row)) is in \(seen[row] ?? 0) index segments, not 1")
            }
            compareWithLMDB(segs.sealed.map { ($0.record.id, $0.index) })
        }

    }
}
