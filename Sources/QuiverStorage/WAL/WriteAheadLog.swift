import Foundation
import QuiverCore

/// When an appended record reaches stable storage.
public enum Durability: Sendable, Equatable {
    /// A write returns only after its record is fsynced. Concurrent writers share fsyncs (group commit).
    case full
    /// Records are fsynced by a background timer every `milliseconds`; a write returns once its
    /// record is written to the OS. A process crash loses nothing; an OS crash or power loss may lose
    /// the writes of the last interval.
    case relaxed(milliseconds: Int)
}

/// The write-ahead log: ordered, checksummed, group-committed records in append-only files.
/// The byte format and the recovery rules are in `WALFormat.swift` and `docs/file-formats.md`.
///
/// Thread-safety: every method may be called from any thread. `append` calls are serialized;
/// `waitUntilDurable` lets one caller fsync on behalf of every record appended so far while the
/// others wait (group commit). After a failed write or fsync the log is fail-stopped: every later
/// `append` and `waitUntilDurable` throws `StorageError(.failStopped)` until the log is reopened,
/// because after a failed fsync the state of the file's dirty pages is unknown.
public final class WriteAheadLog: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `condition`.
    public let directory: String
    public let durability: Durability
    public let maxFileSize: Int

    private struct LogFile {
        let path: String
        let firstSequence: UInt64
        var lastSequence: UInt64  // firstSequence - 1 while empty
        var size: Int
    }

    private let condition = NSCondition()
    private var files: [LogFile] = []
    private var active: File
    private var lastSequence: UInt64
    private var syncedSequence: UInt64
    private var syncInProgress = false
    private var failure: StorageError?
    private var timer: DispatchSourceTimer?
    private var closed = false

    /// What recovery found and did at open.
    public struct RecoveryReport: Sendable, Equatable {
        /// Bytes cut from the end of the last file (a torn append).
        public var truncatedBytes = 0
        /// The file that was truncated, if any.
        public var truncatedFile: String?
        /// Valid records found.
        public var records = 0
        /// An incomplete file (shorter than its header) that was removed.
        public var removedIncompleteFile: String?
        /// Files removed because every record in them was below `minimumNextSequence` with records
        /// missing after them (the caller's state ran ahead of the log; see `init`).
        public var removedAppliedFiles = 0
        /// Damaged files removed because every record in them (and before them) was below
        /// `minimumNextSequence`: already applied by the caller, so nothing was lost.
        public var removedDamagedAppliedFiles: [String] = []
        /// Bytes cut from the last file at damage that only records below `minimumNextSequence`
        /// follow (already applied by the caller, so nothing was lost).
        public var truncatedDamagedAppliedBytes = 0
    }

    public private(set) var recovery = RecoveryReport()

    /// Opens the log in `directory` (created when missing), recovering as the format describes.
    /// - Parameter minimumNextSequence: the least sequence number the next record may take (the
    ///   caller's last applied number + 1), used when the log holds no records. When the log ends
    ///   before it (records lost in a power loss that the caller applied and kept), the old files
    ///   are removed: the caller must have made its applied state durable before this call.
    public init(directory: String, durability: Durability = .full, maxFileSize: Int = 64 << 20, minimumNextSequence: UInt64 = 1) throws {
        self.directory = directory
        self.durability = durability
        self.maxFileSize = max(maxFileSize, WALFormat.fileHeaderSize + WALFormat.recordHeaderSize + 1)
        try FileSystem.createDirectory(directory)
        var report = RecoveryReport()
        var found: [LogFile] = []
        let names = try FileSystem.list(directory).filter { WALFormat.firstSequence(fromFileName: $0) != nil }
        for (index, name) in names.enumerated() {
            let path = directory + "/" + name
            let isLast = index == names.count - 1
            let handle = try File(path: path, mode: .readWrite)
            defer { handle.close() }
            let bytes = try handle.readAll()
            // Damage in a file all of whose records the caller applied already (the next file starts
            // at or before `minimumNextSequence`) loses nothing: that file and the ones before it go.
            func dropIfApplied() throws -> Bool {
                guard !isLast, let nextFirst = WALFormat.firstSequence(fromFileName: names[index + 1]),
                      nextFirst <= minimumNextSequence else { return false }
                for file in found { try FileSystem.remove(file.path) }
                try FileSystem.remove(path)
                try FileSystem.syncDirectory(directory)
                report.removedDamagedAppliedFiles += found.map(\.path) + [path]
                found = []
                return true
            }
            let scan = WriteAheadLog.scanFile(bytes, name: name, previousLast: found.last?.lastSequence)
            report.records += scan.records
            switch scan.stop {
            case .end:
                break
            case .damagedHeader(let short):
                if isLast && short {
                    try FileSystem.remove(path)
                    try FileSystem.syncDirectory(directory)
                    report.removedIncompleteFile = path
                    continue
                }
                if try dropIfApplied() { continue }
                throw StorageError(.corrupt, "write-ahead log file \(path) has a damaged header; the log cannot be trusted (\(WriteAheadLog.repairAdvice))")
            case .misnamed(let first):
                throw StorageError(.corrupt, "write-ahead log file \(path) starts at sequence \(first), not the number in its name")
            case .gap(let first, let previousLast):
                throw StorageError(.corrupt, "write-ahead log file \(path) starts at sequence \(first) but the previous file ends at \(previousLast): records are missing")
            case .damagedRecord(let offset, let validRecordAfter):
                if !isLast {
                    if try dropIfApplied() { continue }
                    throw StorageError(.corrupt, "write-ahead log file \(path) is damaged at byte \(offset) (record \(scan.nextSequence)) and is not the last file; open refused to avoid losing acknowledged writes (\(WriteAheadLog.repairAdvice))")
                }
                if let later = validRecordAfter {
                    guard WriteAheadLog.greatestValidSequence(in: bytes, from: later) < minimumNextSequence else {
                        throw StorageError(.corrupt, "write-ahead log file \(path) is damaged at byte \(offset) (record \(scan.nextSequence)) and a valid record follows at byte \(later); open refused to avoid losing acknowledged writes (\(WriteAheadLog.repairAdvice))")
                    }
                    // Only records the caller applied follow the damage: cutting them loses nothing.
                    report.truncatedDamagedAppliedBytes = bytes.count - offset
                } else {
                    report.truncatedBytes = bytes.count - offset
                }
                report.truncatedFile = path
                try handle.truncate(to: offset)
                try handle.sync()
            }
            found.append(LogFile(path: path, firstSequence: scan.first, lastSequence: scan.nextSequence - 1, size: scan.end))
        }
        var last = found.last?.lastSequence ?? 0
        if !found.isEmpty && last + 1 < minimumNextSequence {
            // The caller's state is ahead of the log: a power loss kept a commit of the caller (LMDB)
            // but not the log records written before it. Every record here is applied already; the
            // files go, so that the new file does not start after a gap (which the next open would
            // take for lost records). The caller made its applied state durable before opening.
            for file in found { try FileSystem.remove(file.path) }
            try FileSystem.syncDirectory(directory)
            report.removedAppliedFiles = found.count
            found = []
            last = 0
        }
        let next = max(last + 1, minimumNextSequence)
        if let tail = found.last, tail.lastSequence + 1 == next, tail.size < self.maxFileSize {
            active = try File(path: tail.path, mode: .readWrite)
        } else {
            let file = try WriteAheadLog.createFile(directory: directory, firstSequence: next)
            active = file.0
            found.append(file.1)
        }
        files = found
        lastSequence = next - 1
        syncedSequence = next - 1
        recovery = report
        if case .relaxed(let ms) = durability {
            let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "quiver.wal.sync"))
            t.schedule(deadline: .now() + .milliseconds(ms), repeating: .milliseconds(ms))
            t.setEventHandler { [weak self] in try? self?.syncNow() }
            t.resume()
            timer = t
        }
    }

    deinit { close() }

    /// Stops the background sync timer and fsyncs what was appended. Later calls throw.
    public func close() {
        condition.lock()
        let alreadyClosed = closed
        closed = true
        let t = timer
        timer = nil
        condition.unlock()
        if alreadyClosed { return }
        t?.cancel()
        try? syncNow()
        condition.lock()
        active.close()
        condition.unlock()
    }

    private static func createFile(directory: String, firstSequence: UInt64) throws -> (File, LogFile) {
        let path = directory + "/" + WALFormat.fileName(firstSequence: firstSequence)
        let handle = try File(path: path, mode: .createReadWrite)
        try handle.truncate(to: 0)
        try handle.write(WALFormat.encodeFileHeader(firstSequence: firstSequence), at: 0)
        try handle.sync()
        try FileSystem.syncDirectory(directory)
        return (handle, LogFile(path: path, firstSequence: firstSequence, lastSequence: firstSequence - 1, size: WALFormat.fileHeaderSize))
    }

    /// What `quiver repair` does about damage that open refuses, for the errors that name it.
    static let repairAdvice = "`quiver repair` opens past it: `salvage` copies this file whole into the database's quarantine directory, cuts it at the damage and moves every later file there, and the writes from the damage on are lost to the database"

    /// One log file's walk, shared by recovery at open and by `inspect`, which decide differently
    /// what to do where it stops.
    struct FileScan {
        enum Stop: Equatable {
            /// Every byte after the header is a valid record in sequence.
            case end
            /// The header does not decode; `short` when the file is shorter than a header.
            case damagedHeader(short: Bool)
            /// The header's first sequence number is not the one in the file's name.
            case misnamed(first: UInt64)
            /// The file does not start right after the previous file's last record.
            case gap(first: UInt64, previousLast: UInt64)
            /// The record at `offset` is damaged or out of sequence; `validRecordAfter` is where a
            /// valid later record starts, if one does (nil: a torn tail).
            case damagedRecord(offset: Int, validRecordAfter: Int?)
        }
        /// The header's first sequence number (0 when the header is damaged).
        var first: UInt64 = 0
        /// Valid records in sequence from the header on.
        var records = 0
        /// The byte after the last of them.
        var end = WALFormat.fileHeaderSize
        /// The sequence number the next record must have.
        var nextSequence: UInt64 = 0
        var stop = Stop.end
    }

    /// Walks the records of a log file named `name` whose bytes are `bytes`, after a file whose last
    /// record is `previousLast` (nil for the first file), until its end or the first damage.
    static func scanFile(_ bytes: [UInt8], name: String, previousLast: UInt64?) -> FileScan {
        var scan = FileScan()
        guard let first = WALFormat.decodeFileHeader(bytes[...]) else {
            scan.stop = .damagedHeader(short: bytes.count < WALFormat.fileHeaderSize)
            return scan
        }
        scan.first = first
        scan.nextSequence = first
        guard first == WALFormat.firstSequence(fromFileName: name) else {
            scan.stop = .misnamed(first: first)
            return scan
        }
        if let previous = previousLast, previous + 1 != first {
            scan.stop = .gap(first: first, previousLast: previous)
            return scan
        }
        while scan.end < bytes.count {
            guard let (record, size) = WALFormat.decodeRecord(bytes, at: scan.end), record.sequence == scan.nextSequence else {
                scan.stop = .damagedRecord(offset: scan.end,
                                           validRecordAfter: findValidRecord(in: bytes, after: scan.end, minimumSequence: scan.nextSequence))
                return scan
            }
            scan.end += size
            scan.nextSequence += 1
            scan.records += 1
        }
        return scan
    }

    /// The offset of a record with a valid checksum and a plausible sequence number after `offset`.
    /// The greatest sequence number of the valid records at or after `offset` (found as
    /// `findValidRecord` finds them, past damage too).
    private static func greatestValidSequence(in bytes: [UInt8], from offset: Int) -> UInt64 {
        var greatest: UInt64 = 0
        var o = offset
        while let (record, size) = WALFormat.decodeRecord(bytes, at: o) {
            greatest = max(greatest, record.sequence)
            o += size
            if o >= bytes.count { break }
            if WALFormat.decodeRecord(bytes, at: o) == nil {
                guard let next = findValidRecord(in: bytes, after: o, minimumSequence: record.sequence + 1) else { break }
                o = next
            }
        }
        return greatest
    }

    /// What `salvage` set aside.
    public struct SalvageReport: Sendable, Equatable, Codable {
        /// The file where the damage is, and the byte offset where it starts.
        public var damagedFile: String
        public var offset: Int
        /// The sequence number of the first record lost (the one at the damage).
        public var firstLostSequence: UInt64
        /// Files copied whole into the quarantine directory: the damaged one (before it was cut at
        /// the damage) and every later one (moved).
        public var setAsideFiles: [String]
    }

    /// Makes a damaged log openable again by giving up what follows the first damage: the damaged
    /// file is copied whole into `quarantine`, then cut at the damage (removed when its header is
    /// damaged), and every later file is moved there. Returns nil (and changes nothing) when the log
    /// opens as it is. Records after the damage are lost to the database (they stay in the copies).
    /// Only an open with `DatabaseOptions.salvageDamagedLog` calls it (`quiver repair` opens so, its
    /// one step that loses writes); no other open does.
    public static func salvage(directory: String, quarantine: String) throws -> SalvageReport? {
        // The damage a writable open would refuse, found as `inspect` finds it.
        guard let damage = try inspectOnce(directory: directory).firstDamage else { return nil }
        let names = try FileSystem.list(directory).filter { WALFormat.firstSequence(fromFileName: $0) != nil }
        let name = (damage.file as NSString).lastPathComponent
        guard let index = names.firstIndex(of: name) else { return nil }
        let bytes = try File(path: damage.file, mode: .readOnly).readAll()
        try FileSystem.createDirectory(quarantine)
        try FileSystem.writeAtomically(bytes, to: quarantine + "/" + name)
        var moved = [quarantine + "/" + name]
        for later in names[(index + 1)...] {
            try FileSystem.rename(directory + "/" + later, quarantine + "/" + later)
            moved.append(quarantine + "/" + later)
        }
        if damage.offset < WALFormat.fileHeaderSize {
            try FileSystem.remove(damage.file)
        } else {
            let handle = try File(path: damage.file, mode: .readWrite)
            defer { handle.close() }
            try handle.truncate(to: damage.offset)
            try handle.sync()
        }
        try FileSystem.syncDirectory(quarantine)
        try FileSystem.syncDirectory(directory)
        return SalvageReport(damagedFile: damage.file, offset: damage.offset, firstLostSequence: damage.sequence, setAsideFiles: moved)
    }

    private static func findValidRecord(in bytes: [UInt8], after offset: Int, minimumSequence: UInt64) -> Int? {
        var o = offset + 1
        while o + WALFormat.recordHeaderSize <= bytes.count {
            let seq = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[o + 8 + $1]) << (8 * $1) }
            if seq >= minimumSequence && seq - minimumSequence < (1 << 32),
               let (record, _) = WALFormat.decodeRecord(bytes, at: o), record.sequence == seq {
                return o
            }
            o += 1
        }
        return nil
    }

    /// The sequence number of the last appended record (0 when none ever was).
    public var lastAppendedSequence: UInt64 {
        condition.lock(); defer { condition.unlock() }
        return lastSequence
    }

    /// The sequence number up to which every record is known to be fsynced.
    public var durableSequence: UInt64 {
        condition.lock(); defer { condition.unlock() }
        return syncedSequence
    }

    /// The bytes the log occupies on disk.
    public var diskSize: Int {
        condition.lock(); defer { condition.unlock() }
        return files.reduce(0) { $0 + $1.size }
    }

    /// The number of log files.
    public var fileCount: Int {
        condition.lock(); defer { condition.unlock() }
        return files.count
    }

    /// Appends one record and returns its sequence number. The record is written to the OS but not
    /// necessarily durable: call `waitUntilDurable` before acknowledging it.
    public func append(type: UInt8, payload: [UInt8]) throws -> UInt64 {
        guard payload.count <= WALFormat.maxPayload else {
            throw StorageError(.invalidArgument, "a write of \(payload.count) bytes exceeds the log's record limit of \(WALFormat.maxPayload) bytes; split it into smaller batches")
        }
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        do {
            let tail = files[files.count - 1]
            if tail.size + WALFormat.recordHeaderSize + payload.count > maxFileSize && tail.lastSequence >= tail.firstSequence {
                try rollOver()
            }
        } catch let error as StorageError {
            failure = StorageError(.failStopped, "the write-ahead log stopped accepting writes after a failed roll-over: \(error.message)", code: error.code)
            throw failure!
        }
        // Computed after the roll-over, which may wait (and let other appenders in).
        let seq = lastSequence + 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(WALFormat.recordHeaderSize + payload.count)
        WALFormat.encodeRecord(sequence: seq, type: type, payload: payload, into: &bytes)
        do {
            try active.write(bytes, at: files[files.count - 1].size)
        } catch let error as StorageError {
            failure = StorageError(.failStopped, "the write-ahead log stopped accepting writes after a failed write: \(error.message)", code: error.code)
            throw failure!
        }
        files[files.count - 1].size += bytes.count
        files[files.count - 1].lastSequence = seq
        lastSequence = seq
        return seq
    }

    /// Returns once record `sequence` is fsynced. One waiting caller fsyncs everything appended so
    /// far; the callers that arrive meanwhile are covered by that fsync or by the next one.
    public func waitUntilDurable(_ sequence: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let f = failure { throw f }
            if syncedSequence >= sequence { return }
            if syncInProgress {
                condition.wait()
                continue
            }
            try leadSync()
        }
    }

    /// Fsyncs every appended record now.
    public func syncNow() throws {
        condition.lock()
        defer { condition.unlock() }
        while syncInProgress { condition.wait() }
        if let f = failure { throw f }
        if syncedSequence < lastSequence { try leadSync() }
    }

    /// Called with the lock held and no sync in progress: fsyncs outside the lock, then wakes waiters.
    private func leadSync() throws {
        syncInProgress = true
        let target = lastSequence
        let file = active
        condition.unlock()
        var syncError: StorageError?
        do { try file.sync() } catch let e as StorageError { syncError = e } catch {}
        condition.lock()
        syncInProgress = false
        if let e = syncError {
            failure = StorageError(.failStopped, "the write-ahead log stopped accepting writes after a failed fsync: \(e.message)", code: e.code)
        } else if target > syncedSequence {
            syncedSequence = target
        }
        condition.broadcast()
        if let f = failure { throw f }
    }

    private func checkUsable() throws {
        if let f = failure { throw f }
        if closed { throw StorageError(.invalidArgument, "the write-ahead log in \(directory) is closed") }
    }

    /// With the lock held: fsyncs the active file and starts a new one at the next sequence number.
    /// It may wait for a sync in progress, so other appenders can run meanwhile; a roll-over that
    /// another caller already did is not repeated.
    private func rollOver() throws {
        let before = files.count
        while syncInProgress { condition.wait() }
        let tail = files[files.count - 1]
        if files.count != before && tail.lastSequence < tail.firstSequence { return }
        try active.sync()
        syncedSequence = max(syncedSequence, lastSequence)
        let (handle, file) = try WriteAheadLog.createFile(directory: directory, firstSequence: lastSequence + 1)
        active.close()
        active = handle
        files.append(file)
    }

    /// Removes every log file all of whose records have sequence numbers <= `sequence`. The caller
    /// guarantees that those records are durable elsewhere (LMDB synced, segments written).
    public func truncate(upTo sequence: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        let tail = files[files.count - 1]
        if tail.lastSequence >= tail.firstSequence && tail.lastSequence <= sequence {
            do { try rollOver() } catch let e as StorageError {
                failure = StorageError(.failStopped, "the write-ahead log stopped accepting writes after a failed roll-over: \(e.message)", code: e.code)
                throw failure!
            }
        }
        var removed = false
        while files.count > 1 && files[0].lastSequence <= sequence {
            try FileSystem.remove(files[0].path)
            files.removeFirst()
            removed = true
        }
        if removed { try FileSystem.syncDirectory(directory) }
    }

    /// Visits, in order, every record with a sequence number greater than `sequence`.
    public func forEachRecord(after sequence: UInt64, _ body: (WALRecord) throws -> Void) throws {
        condition.lock()
        let snapshot = files
        condition.unlock()
        for file in snapshot where file.lastSequence > sequence {
            let handle = try File(path: file.path, mode: .readOnly)
            defer { handle.close() }
            let bytes = try handle.read(count: file.size, at: 0)
            var offset = WALFormat.fileHeaderSize
            while offset < bytes.count {
                guard let (record, size) = WALFormat.decodeRecord(bytes, at: offset) else {
                    throw StorageError(.corrupt, "write-ahead log file \(file.path) changed under the reader at byte \(offset)")
                }
                if record.sequence > sequence { try body(record) }
                offset += size
            }
        }
    }
}

extension WriteAheadLog {
    /// What a read-only look at a log directory found (`inspect`).
    public struct Inspection: Sendable, Equatable {
        /// Log files read.
        public var files = 0
        /// Records read whose checksums and sequence numbers hold.
        public var records = 0
        /// The sequence numbers of the first and last of those records (nil when there are none).
        public var firstSequence: UInt64?
        public var lastSequence: UInt64?
        /// Bytes at the end of the last file that are no whole record: an append in progress, or
        /// one a crash tore (the next writable open cuts them). Not damage.
        public var tailBytes = 0
        /// A last file shorter than its header: a roll-over in progress, or one a crash interrupted
        /// (the next writable open removes it). Not damage.
        public var incompleteLastFile: String?
        /// Damage that a writable open would refuse, one sentence each.
        public var problems: [String] = []
        /// Where the first such damage is: the file, the byte it starts at (0 for a damaged header
        /// or a file that does not follow the one before), and the sequence number that belongs there.
        public var firstDamage: Damage?

        public struct Damage: Sendable, Equatable {
            public var file: String
            public var offset: Int
            public var sequence: UInt64
        }

        mutating func damage(_ problem: String, file: String, offset: Int, sequence: UInt64) {
            problems.append(problem)
            if firstDamage == nil { firstDamage = Damage(file: file, offset: offset, sequence: sequence) }
        }
    }

    /// Reads every log file in `directory` read-only and checks each record's checksum and
    /// sequence number as recovery would, changing nothing (no file is created, truncated or
    /// removed; a missing directory is an empty log). Safe beside a writer in another process: a
    /// file the writer removes meanwhile (a checkpoint) restarts the scan, and damage is confirmed
    /// by reading again (a reader can see an append half done).
    public static func inspect(directory: String) throws -> Inspection {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let found = try inspectOnce(directory: directory)
                if found.problems.isEmpty || attempt >= 3 { return found }
                usleep(20_000)
            } catch let e as StorageError where e.kind == .io && e.code == ENOENT && attempt < 20 {
                usleep(1_000)
            }
        }
    }

    private static func inspectOnce(directory: String) throws -> Inspection {
        var result = Inspection()
        guard FileSystem.isDirectory(directory) else { return result }
        let names = try FileSystem.list(directory).filter { WALFormat.firstSequence(fromFileName: $0) != nil }
        var previousLast: UInt64?
        for (index, name) in names.enumerated() {
            let path = directory + "/" + name
            let isLast = index == names.count - 1
            let handle = try File(regularFileForReading: path)
            defer { handle.close() }
            let bytes = try handle.readAll()
            result.files += 1
            let belongsHere = previousLast.map { $0 + 1 } ?? WALFormat.firstSequence(fromFileName: name)!
            let scan = scanFile(bytes, name: name, previousLast: previousLast)
            result.records += scan.records
            if scan.records > 0 {
                if result.firstSequence == nil { result.firstSequence = scan.first }
                result.lastSequence = scan.nextSequence - 1
            }
            switch scan.stop {
            case .end:
                break
            case .damagedHeader(let short):
                if isLast && short {
                    result.incompleteLastFile = path
                    continue
                }
                result.damage("write-ahead log file \(path) has a damaged header", file: path, offset: 0, sequence: belongsHere)
                return result
            case .misnamed(let first):
                result.damage("write-ahead log file \(path) starts at sequence \(first), not the number in its name", file: path, offset: 0, sequence: belongsHere)
                return result
            case .gap(let first, let previous):
                result.damage("write-ahead log file \(path) starts at sequence \(first) but the previous file ends at \(previous): records are missing",
                              file: path, offset: 0, sequence: belongsHere)
                return result
            case .damagedRecord(let offset, let validRecordAfter):
                if !isLast {
                    result.damage("write-ahead log file \(path) is damaged at byte \(offset) (record \(scan.nextSequence)) and is not the last file",
                                  file: path, offset: offset, sequence: scan.nextSequence)
                    return result
                }
                if let later = validRecordAfter {
                    result.damage("write-ahead log file \(path) is damaged at byte \(offset) (record \(scan.nextSequence)) and a valid record follows at byte \(later)",
                                  file: path, offset: offset, sequence: scan.nextSequence)
                    return result
                }
                result.tailBytes = bytes.count - offset
            }
            previousLast = scan.nextSequence - 1
        }
        return result
    }
}
