import Foundation
import QuiverStorage

/// The resume point of an import, stored in LMDB (`imports` table) in the same transaction as the
/// batch it follows, so that a resumed import neither repeats nor misses a row.
struct ImportCheckpoint: Codable, Equatable {
    var path: String
    var size: Int
    var modified: Double
    var position: SourcePosition
    var complete: Bool
}

extension Collection {
    /// Imports a file of documents (JSONL, CSV) or bare vectors (fvecs, bvecs, npy) into this
    /// collection, streaming it in bounded memory and writing it in atomic batches through the log.
    /// Documents without vectors are embedded by the collection's encoder.
    ///
    /// Bad rows (malformed, wrong dimension, NaN, a duplicate or already stored id, ...) stop the
    /// import with `QuiverError.badInput` naming the file and line (`onError: .abort`; the rows before
    /// the bad one are imported), or are reported and passed over (`.skip`). Each batch stores the
    /// resume point in the same transaction, so after a crash or an interruption `resume: true`
    /// continues after the last imported row, with no duplicates and nothing missing.
    public func importFile(_ path: String, options: ImportOptions = ImportOptions(),
                           progress: ((ImportProgress) -> Void)? = nil) throws -> ImportReport {
        // Reading through a symbolic link is fine (an import writes nothing but the database).
        let absolute = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: absolute) } catch {
            throw QuiverError.badInput(file: path, line: 0, reason: "cannot read the file: \(error.localizedDescription)")
        }
        guard (attributes[.type] as? FileAttributeType) == .typeRegular else {
            throw QuiverError.badInput(file: path, line: 0, reason: "not a regular file")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        guard let format = options.format ?? ImportOptions.Format(path: path) else {
            throw QuiverError.invalidArgument("cannot tell the format of \(path) from its extension; name it (jsonl, csv, fvecs, bvecs, npy)")
        }
        let batchSize = options.batchSize ?? (info.encoder != nil ? ImportOptions.defaultEncoderBatchSize : ImportOptions.defaultBatchSize)
        guard batchSize >= 1 && batchSize <= 100_000 else {
            throw QuiverError.invalidArgument("the batch size must be between 1 and 100000, not \(batchSize)")
        }
        // Sources read (and name in errors) the path as given; the checkpoint key uses the absolute one.
        var source = try makeRowSource(format, path: path, options: options)
        if let csv = source as? CSVSource { try csv.checkDeclaredColumns() }
        var report = ImportReport(file: path, format: format.rawValue)
        let key = Keys.importKey(info.number, path: absolute)
        if options.resume, let saved = try savedCheckpoint(key), saved.path == absolute {
            guard saved.size == size && saved.modified == modified else {
                throw QuiverError.invalidArgument("\(path) changed since the interrupted import (size or modification time); import it again without --resume")
            }
            report.resumedAfterRows = saved.position.rows
            if saved.complete { return report }
            try source.seek(to: saved.position)
        }
        let clock = options.clock ?? { monotonicSeconds() }
        let started = clock()
        let startBytes = source.position.offset
        func checkpoint(_ position: SourcePosition, complete: Bool) throws -> LogRecord.Checkpoint {
            let value = ImportCheckpoint(path: absolute, size: size, modified: modified, position: position, complete: complete)
            return LogRecord.Checkpoint(key: key, value: Array(try JSONEncoder().encode(value)))
        }
        func skip(_ location: Int, _ reason: String) {
            report.skippedCount += 1
            if report.skipped.count < 10_000 {
                report.skipped.append(SkippedRow(file: path, line: location, location: source.locationKind, reason: reason))
            }
        }
        var chunk = 32
        // The time spent loading the encoder (reading and hashing a model's weights takes seconds),
        // which the rate and the ETA leave out: it is spent once, not per row.
        var setupSeconds = 0.0
        var encoderReady = false
        // `rowsDone` rows of this run, up to input offset `bytesDone`, are imported, skipped, or
        // embedded and waiting for their batch to commit.
        func tell(rowsDone: Int, bytesDone: Int) {
            progress?(ImportProgress(rowsRead: report.rowsRead, imported: report.imported, skipped: report.skippedCount,
                                     bytesRead: source.position.offset, totalBytes: source.totalBytes, elapsed: clock() - started,
                                     rowsDone: rowsDone, bytesDone: bytesDone, startBytes: startBytes,
                                     resumedAfterRows: report.resumedAfterRows, setupSeconds: setupSeconds))
        }
        // A row read and not yet written: its document, and where it is in the input (for messages,
        // for the checkpoint of an abort, and for progress).
        struct Pending {
            var document: Document
            var location: Int
            var before: SourcePosition
            var after: SourcePosition
        }
        // Embeds the documents that need it, shortest text first (as the encoder itself batches, so
        // that a chunk's texts pad to similar lengths), in chunks of whole encoder batches (32 texts,
        // which the built-in encoder embeds at once) sized to take about 0.75 s, reporting progress
        // after each: the rows read, less those still waiting to be embedded, are done. The vectors
        // stay on the documents, so a retry never embeds again.
        func embed(_ batch: inout [Pending]) throws {
            var waiting = batch.indices.filter { batch[$0].document.vector == nil }
            if waiting.isEmpty { return }
            if !encoderReady {
                let t = clock()
                _ = try database.encoder(for: info)
                setupSeconds += clock() - t
                encoderReady = true
            }
            waiting.sort { (batch[$0].document.text?.utf8.count ?? 0, $0) < (batch[$1].document.text?.utf8.count ?? 0, $1) }
            var waitingBytes = waiting.reduce(0) { $0 + batch[$1].after.offset - batch[$1].before.offset }
            var docs = batch.map(\.document)
            while !waiting.isEmpty {
                let part = Array(waiting.prefix(chunk))
                waiting.removeFirst(part.count)
                let t = clock()
                try self.embed(&docs, part)
                let spent = clock() - t
                waitingBytes -= part.reduce(0) { $0 + batch[$1].after.offset - batch[$1].before.offset }
                tell(rowsDone: report.rowsRead - waiting.count, bytesDone: source.position.offset - waitingBytes)
                let perText = spent / Double(part.count)
                chunk = perText > 0 ? max(32, min(256, Int(0.75 / perText)) / 32 * 32) : 256
            }
            for i in batch.indices { batch[i].document = docs[i] }
        }
        // Writes a batch (every document with its vector) with the checkpoint `end`; a record the
        // engine rejects is skipped (or, with .abort, the records before it are written and the import
        // ends) and the rest written again, with the vectors already made.
        func flush(_ batch: inout [Pending], end: SourcePosition, complete: Bool) throws {
            let record = try checkpoint(end, complete: complete)
            while true {
                do {
                    let written = try write(batch.map(\.document), insert: !options.upsert, checkpoint: record)
                    report.imported += written
                    return
                } catch let error as QuiverError {
                    guard let i = error.recordIndex, i < batch.count else { throw error }
                    if options.onError == .abort {
                        var head = Array(batch[..<i])
                        try flush(&head, end: batch[i].before, complete: false)
                        throw QuiverError.badInput(file: path, line: batch[i].location, reason: error.message(withRecord: false))
                    }
                    skip(batch[i].location, error.message(withRecord: false))
                    batch.remove(at: i)
                }
            }
        }
        // Screens a batch before embedding it: refused rows are skipped (or, with .abort, the rows
        // before the first are embedded and written and the import ends), so nothing refused is embedded.
        func commit(_ batch: inout [Pending], end: SourcePosition, complete: Bool) throws {
            let refused = batch.isEmpty ? [] : try screen(batch.map(\.document), insert: !options.upsert)
            if options.onError == .abort, let first = refused.first {
                var head = Array(batch[..<first.index])
                try embed(&head)
                try flush(&head, end: batch[first.index].before, complete: false)
                throw QuiverError.badInput(file: path, line: batch[first.index].location, reason: first.error.message(withRecord: false))
            }
            if !refused.isEmpty {
                for r in refused { skip(batch[r.index].location, r.error.message(withRecord: false)) }
                let out = Set(refused.map(\.index))
                batch = batch.indices.filter { !out.contains($0) }.map { batch[$0] }
            }
            try embed(&batch)
            try flush(&batch, end: end, complete: complete)
        }
        var finished = false
        while !finished {
            var batch: [Pending] = []
            while batch.count < batchSize {
                let position = source.position
                guard let row = try source.next() else { finished = true; break }
                report.rowsRead += 1
                switch row {
                case .document(let d, let location):
                    batch.append(Pending(document: d, location: location, before: position, after: source.position))
                case .bad(let location, let reason):
                    if options.onError == .abort {
                        try commit(&batch, end: position, complete: false)
                        throw QuiverError.badInput(file: path, line: location, reason: reason)
                    }
                    skip(location, reason)
                }
            }
            try commit(&batch, end: source.position, complete: finished)
            tell(rowsDone: report.rowsRead, bytesDone: source.position.offset)
        }
        // Bulk work leaves a log as large as what it wrote; LMDB holds all of it now, so the log is
        // checkpointed (truncated) rather than left on disk until it passes `checkpointBytes`.
        if database.options.checkpointAfterBulkWork { try database.checkpoint() }
        report.seconds = clock() - started
        report.skipped.sort { $0.line < $1.line }
        return report
    }

    private func savedCheckpoint(_ key: [UInt8]) throws -> ImportCheckpoint? {
        try database.readTransaction { txn in
            try txn.get(database.tables.imports, key).map { value in
                let payload = try StoredValue.open(value, key: key, table: database.tables.imports, collection: name)
                do {
                    return try JSONDecoder().decode(ImportCheckpoint.self, from: Data(payload))
                } catch {
                    throw StoredValue.damaged(table: "imports", key: key, collection: name, detail: "it does not decode: \(error)")
                }
            }
        }
    }
}
