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
        guard options.batchSize >= 1 && options.batchSize <= 100_000 else {
            throw QuiverError.invalidArgument("the batch size must be between 1 and 100000, not \(options.batchSize)")
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
        let started = Date()
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
        // Writes a batch with the checkpoint `end`; a record the engine rejects is skipped (or, with
        // .abort, the records before it are written and the import ends) and the rest written again.
        func flush(_ docs: inout [Document], _ locations: inout [Int], _ before: inout [SourcePosition],
                   end: SourcePosition, complete: Bool) throws {
            while true {
                do {
                    report.imported += try write(docs, insert: !options.upsert, checkpoint: try checkpoint(end, complete: complete))
                    return
                } catch let error as QuiverError {
                    guard let i = error.recordIndex, i < docs.count else { throw error }
                    if options.onError == .abort {
                        var head = Array(docs[..<i]), headLocations = Array(locations[..<i]), headBefore = Array(before[..<i])
                        try flush(&head, &headLocations, &headBefore, end: before[i], complete: false)
                        throw QuiverError.badInput(file: path, line: locations[i], reason: error.message(withRecord: false))
                    }
                    skip(locations[i], error.message(withRecord: false))
                    docs.remove(at: i)
                    locations.remove(at: i)
                    before.remove(at: i)
                }
            }
        }
        var finished = false
        while !finished {
            var docs: [Document] = []
            var locations: [Int] = []
            var before: [SourcePosition] = []  // the position before each document, for an abort
            while docs.count < options.batchSize {
                let position = source.position
                guard let row = try source.next() else { finished = true; break }
                report.rowsRead += 1
                switch row {
                case .document(let d, let location):
                    docs.append(d)
                    locations.append(location)
                    before.append(position)
                case .bad(let location, let reason):
                    if options.onError == .abort {
                        try flush(&docs, &locations, &before, end: position, complete: false)
                        throw QuiverError.badInput(file: path, line: location, reason: reason)
                    }
                    skip(location, reason)
                }
            }
            try flush(&docs, &locations, &before, end: source.position, complete: finished)
            progress?(ImportProgress(rowsRead: report.rowsRead, imported: report.imported, skipped: report.skippedCount,
                                     bytesRead: source.position.offset, totalBytes: source.totalBytes, elapsed: Date().timeIntervalSince(started)))
        }
        report.seconds = Date().timeIntervalSince(started)
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
