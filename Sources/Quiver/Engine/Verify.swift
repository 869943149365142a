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
    /// Every inconsistency found, one sentence each (empty when the database is sound).
    public var problems: [String] = []

    /// Whether nothing is wrong.
    public var ok: Bool { problems.isEmpty }
}

extension Database {
    /// Checks the database without changing anything: every write-ahead log record's checksum,
    /// every segment file's checksums and structure, and in one LMDB snapshot that every document has
    /// its vector and row entry, that the counters match, that no vector or row is orphaned, and that
    /// every live document's vector is in exactly one index segment (sealed or mutable) and no
    /// deleted one is. Runs while the database is open; pauses background maintenance meanwhile.
    ///
    /// Read-only (beside a writer in another process), the log is not read (the writer may be
    /// appending to it), and the in-memory segments are loaded from a snapshot a little older than
    /// the one checked; when the writer committed meanwhile and the check found problems, it runs
    /// again (up to 3 times); problems a moving database explains (a segment file merged away
    /// meanwhile) may remain while the writer is busy.
    public func verify() throws -> VerifyReport {
        guard options.readOnly else { return try verifyOnce() }
        var attempt = 0
        while true {
            let at = env.lastTransactionID
            try refreshIfReadOnly()
            let report = try verifyOnce()
            attempt += 1
            if report.ok || env.lastTransactionID == at || attempt == 3 { return report }
        }
    }

    private func verifyOnce() throws -> VerifyReport {
        var report = VerifyReport()
        try wrapStorage {
            try wal?.forEachRecord(after: 0) { _ in report.logRecords += 1 }
        }
        // With maintenance paused the segment set cannot change under the check.
        try segments.queue.sync {
            try readTransaction { txn in
                for info in try collections() {
                    try verify(info, txn: txn, report: &report)
                }
            }
        }
        return report
    }

    private func verify(_ info: CollectionInfo, txn: LMDBTransaction, report: inout VerifyReport) throws {
        let c = info.number
        let name = info.name
        func problem(_ s: String) { if report.problems.count < 1_000 { report.problems.append("'\(name)': " + s) } }
        // Documents, rows and vectors agree; the payload entries and postings each document should have.
        var live: [UInt64: String] = [:]
        var expected = DerivedIndexExpectation(info)
        try txn.forEach(tables.documents, prefix: Keys.collection(c)) { k, v in
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)
            report.documents += 1
            do {
                let record = try DocumentRecord(Array(v))
                expected.add(row: record.row, record: record)
                if let previous = live[record.row] { problem("documents '\(previous)' and '\(id)' share row \(record.row)") }
                live[record.row] = id
                let rowID = try txn.get(tables.rows, Keys.row(c, record.row)).map { String(decoding: $0, as: UTF8.self) }
                if rowID != id { problem("document '\(id)' has row \(record.row), which names \(rowID.map { "'\($0)'" } ?? "nothing")") }
                try txn.withValue(tables.vectors, Keys.row(c, record.row)) { vector in
                    if vector?.count != info.dimension * 4 { problem("document '\(id)' has \(vector == nil ? "no vector" : "a vector of \(vector!.count) bytes")") }
                }
            } catch {
                problem("document '\(id)' cannot be decoded: \(error)")
            }
            return true
        }
        for table in [tables.rows, tables.vectors] {
            try txn.forEach(table, prefix: Keys.collection(c)) { k, _ in
                let row = Keys.rowID(of: k)
                if live[row] == nil { problem("row \(row) in table '\(table.name)' belongs to no document") }
                return true
            }
        }
        // Payload entries and BM25 postings, document frequencies and totals agree with the documents.
        _ = try expected.compare(txn: txn, tables: tables, problem: problem)
        let counted = try txn.get(tables.counters, Keys.collection(c)).map { try Counters($0) }
        if let counters = counted {
            if counters.liveDocuments != UInt64(live.count) { problem("the counter says \(counters.liveDocuments) documents; \(live.count) are stored") }
            if let maxRow = live.keys.max(), maxRow >= counters.nextRow { problem("row \(maxRow) is at or past the next row id \(counters.nextRow)") }
        } else {
            problem("no counters")
        }
        // Segment files: read back from disk and checked in full.
        let records = try Manifest.records(c, txn: txn, tables: tables)
        for record in records {
            let path = segments.directory(c) + "/" + record.fileName
            do {
                let index = try SegmentManager.readSegment(path, kind: record.kind)
                if index.count != Int(record.vectors) { problem("segment file \(path) holds \(index.count) vectors; the manifest says \(record.vectors)") }
                report.segmentFiles += 1
            } catch {
                problem("segment file \(path): \(error)")
            }
        }
        // Every live row is in exactly one segment, not tombstoned; no deleted row is live in one.
        guard let segs = segments.segments(c) else { problem("no index segments in memory"); return }
        segs.lock.read {
            var seen: [UInt64: Int] = [:]
            func visit(_ id: Int64, _ deleted: Bool, _ where_: String) {
                guard !deleted else { return }
                let row = UInt64(id)
                seen[row, default: 0] += 1
                if live[row] == nil { problem("\(where_) returns row \(row), which is deleted") }
            }
            for s in segs.sealed { s.index.forEachID { visit($0, $1, "sealed segment \(s.record.id)") } }
            for (label, flat) in [("the mutable segment", segs.mutable), ("the segment being sealed", segs.frozen)] {
                guard let flat = flat else { continue }
                for (row, _) in live where flat.contains(Int64(row)) { visit(Int64(row), false, label) }
            }
            for (row, id) in live where seen[row] != 1 {
                problem("document '\(id)' (row \(row)) is in \(seen[row] ?? 0) index segments, not 1")
            }
        }
    }
}
