import Foundation
import Testing
import QuiverTestSupport
@testable import QuiverStorage

struct WriteAheadLogTests {
    func payload(_ i: Int) -> [UInt8] { Array("record number \(i) ".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: i % 37) }

    func readAll(_ log: WriteAheadLog) throws -> [WALRecord] {
        var out: [WALRecord] = []
        try log.forEachRecord(after: 0) { out.append($0) }
        return out
    }

    @Test func appendReopenReplay() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try WriteAheadLog(directory: dir.path)
            for i in 1...50 { #expect(try log.append(type: UInt8(i % 3), payload: payload(i)) == UInt64(i)) }
            log.close()
        }
        let log = try WriteAheadLog(directory: dir.path)
        let records = try readAll(log)
        #expect(records.count == 50)
        for (i, r) in records.enumerated() {
            #expect(r.sequence == UInt64(i + 1) && r.type == UInt8((i + 1) % 3) && r.payload == payload(i + 1))
        }
        #expect(try log.append(type: 0, payload: []) == 51)
        var after: [UInt64] = []
        try log.forEachRecord(after: 48) { after.append($0.sequence) }
        #expect(after == [49, 50, 51])
    }

    /// A power loss can keep an LMDB commit and lose the log records written before it: the log
    /// then ends before the caller's next sequence number. Opening must not leave a gap between the
    /// old files and the new one (the open after that would refuse, taking it for lost records).
    @Test func logBehindTheCallerDropsItsAppliedFiles() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try WriteAheadLog(directory: dir.path)
            for i in 1...3 { _ = try log.append(type: 1, payload: payload(i)) }
            log.close()
        }
        do {
            // The caller applied records 4 and 5, which the log lost.
            let log = try WriteAheadLog(directory: dir.path, minimumNextSequence: 6)
            #expect(log.recovery.removedAppliedFiles == 1)
            #expect(try log.append(type: 1, payload: payload(6)) == 6)
            log.close()
        }
        let log = try WriteAheadLog(directory: dir.path, minimumNextSequence: 7)
        #expect(try readAll(log).map(\.sequence) == [6])
        #expect(try log.append(type: 1, payload: payload(7)) == 7)
    }

    /// Truncating the file at every byte offset inside the last record must recover the records
    /// before it and nothing else, and leave a log that accepts the next record.
    @Test func tornTailAtEveryByteOfTheLastRecord() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path)
        for i in 1...5 { _ = try log.append(type: 1, payload: payload(i)) }
        let beforeLast = log.diskSize
        _ = try log.append(type: 1, payload: payload(40))
        let full = log.diskSize
        log.close()
        let file = dir.path + "/" + WALFormat.fileName(firstSequence: 1)
        let original = try File(path: file, mode: .readOnly).readAll()
        #expect(original.count == full)
        for cut in beforeLast..<full {
            try Data(original[0..<cut]).write(to: URL(fileURLWithPath: file))
            let reopened = try WriteAheadLog(directory: dir.path)
            let records = try readAll(reopened)
            #expect(records.map(\.sequence) == [1, 2, 3, 4, 5], "cut at \(cut)")
            #expect(reopened.recovery.truncatedBytes == cut - beforeLast, "cut at \(cut)")
            #expect(try reopened.append(type: 2, payload: [9]) == 6)
            reopened.close()
            #expect(try readAll(try WriteAheadLog(directory: dir.path)).map(\.sequence) == [1, 2, 3, 4, 5, 6])
        }
    }

    /// A torn append can also leave garbage (not just a short file) in the tail: a record whose
    /// bytes were partly written. It is truncated as long as nothing valid follows.
    @Test func garbageTailIsTruncated() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path)
        for i in 1...3 { _ = try log.append(type: 1, payload: payload(i)) }
        let size = log.diskSize
        log.close()
        let file = dir.path + "/" + WALFormat.fileName(firstSequence: 1)
        let handle = try File(path: file, mode: .readWrite)
        try handle.write([UInt8](repeating: 0xAB, count: 100), at: size)
        handle.close()
        let reopened = try WriteAheadLog(directory: dir.path)
        #expect(reopened.recovery.truncatedBytes == 100)
        #expect(try readAll(reopened).count == 3)
    }

    @Test func corruptionInTheMiddleRefusesToOpen() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path)
        for i in 1...10 { _ = try log.append(type: 1, payload: payload(i)) }
        log.close()
        let file = dir.path + "/" + WALFormat.fileName(firstSequence: 1)
        let handle = try File(path: file, mode: .readWrite)
        let bytes = try handle.readAll()
        // Flip one payload byte of the third record.
        var offset = WALFormat.fileHeaderSize
        for _ in 0..<2 { offset += WALFormat.decodeRecord(bytes, at: offset)!.1 }
        try handle.write([bytes[offset + 20] ^ 0x01], at: offset + 20)
        handle.close()
        do {
            _ = try WriteAheadLog(directory: dir.path)
            Issue.record("a log damaged in the middle opened")
        } catch let error as StorageError {
            #expect(error.kind == .corrupt)
            #expect(error.message.contains("damaged at byte \(offset)"))
            #expect(error.message.contains(file))
        }
    }

    @Test func damagedHeaderOfAnEarlierFileRefusesToOpen() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, maxFileSize: 200)
        for i in 1...20 { _ = try log.append(type: 1, payload: payload(i)) }
        #expect(log.fileCount > 2)
        log.close()
        let first = dir.path + "/" + WALFormat.fileName(firstSequence: 1)
        let handle = try File(path: first, mode: .readWrite)
        try handle.write([0x00], at: 3)
        handle.close()
        #expect(throws: StorageError.self) { try WriteAheadLog(directory: dir.path) }
    }

    @Test func rollOverAndTruncation() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, maxFileSize: 300)
        for i in 1...40 { _ = try log.append(type: 1, payload: payload(i)) }
        let files = log.fileCount
        #expect(files > 5)
        try log.truncate(upTo: 20)
        var remaining: [UInt64] = []
        try log.forEachRecord(after: 0) { remaining.append($0.sequence) }
        #expect(remaining.first! <= 21 && remaining.last == 40)
        #expect(log.fileCount < files)
        try log.truncate(upTo: 40)
        remaining = []
        try log.forEachRecord(after: 0) { remaining.append($0.sequence) }
        #expect(remaining.isEmpty)
        #expect(try log.append(type: 1, payload: [1]) == 41)
        log.close()
        let reopened = try WriteAheadLog(directory: dir.path)
        #expect(try readAll(reopened).map(\.sequence) == [41])
    }

    @Test func emptyLogHonoursTheMinimumNextSequence() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, minimumNextSequence: 1000)
        #expect(try log.append(type: 1, payload: []) == 1000)
    }

    @Test func incompleteNewestFileIsRemoved() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path)
        for i in 1...3 { _ = try log.append(type: 1, payload: payload(i)) }
        log.close()
        let stray = dir.path + "/" + WALFormat.fileName(firstSequence: 4)
        try File(path: stray, mode: .createNew).write([0x51, 0x55], at: 0)
        let reopened = try WriteAheadLog(directory: dir.path)
        #expect(reopened.recovery.removedIncompleteFile == stray)
        #expect(try reopened.append(type: 1, payload: []) == 4)
    }

    /// Many threads commit with full durability at once: every acknowledged record is in the log
    /// after reopening, each exactly once, and the threads shared fsyncs.
    @Test func groupCommitUnderConcurrentWritersLosesNothing() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, durability: .full, maxFileSize: 64 << 10)
        let threads = 8, perThread = 150
        let acknowledged = LockedArray()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                let body = Array("t\(t)-i\(i)".utf8)
                // As Database.write does: append under its own lock, then wait for a shared fsync.
                if let seq = try? log.append(type: UInt8(t), payload: body), (try? log.waitUntilDurable(seq)) != nil {
                    acknowledged.append(seq, body)
                }
            }
        }
        #expect(log.durableSequence == UInt64(threads * perThread))
        log.close()
        let reopened = try WriteAheadLog(directory: dir.path)
        var bySequence: [UInt64: [UInt8]] = [:]
        try reopened.forEachRecord(after: 0) { bySequence[$0.sequence] = $0.payload }
        let acked = acknowledged.items
        #expect(acked.count == threads * perThread)
        #expect(bySequence.count == threads * perThread)
        for (seq, body) in acked { #expect(bySequence[seq] == body) }
    }

    @Test func relaxedDurabilitySyncsOnATimer() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, durability: .relaxed(milliseconds: 20))
        let seq = try log.append(type: 1, payload: [1, 2, 3])
        let deadline = Date().addingTimeInterval(5)
        while log.durableSequence < seq && Date() < deadline { usleep(5_000) }
        #expect(log.durableSequence == seq)
    }

    @Test func oversizedRecordIsRejectedBeforeWriting() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path)
        #expect(throws: StorageError.self) { _ = try log.append(type: 1, payload: [UInt8](repeating: 0, count: WALFormat.maxPayload + 1)) }
        #expect(try log.append(type: 1, payload: [1]) == 1)
    }
}

final class LockedArray: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [(UInt64, [UInt8])] = []
    func append(_ seq: UInt64, _ body: [UInt8]) { lock.lock(); storage.append((seq, body)); lock.unlock() }
    var items: [(UInt64, [UInt8])] { lock.lock(); defer { lock.unlock() }; return storage }
}
