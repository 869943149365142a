import Foundation
import QuiverCore
import QuiverIndex
import QuiverStorage

/// The I/O of the segment layer, and nothing else: reading a collection's rows from LMDB into a
/// `Matrix` (one function, `readRows`), reading and writing segment files through their codecs,
/// the manifest transaction that switches a collection's set of segments, and the removal of files
/// the manifest does not name. It decides nothing (`SegmentPolicy` does) and keeps no in-memory
/// state (`CollectionSegments` does); `SegmentManager` calls it.
///
/// Crash safety: a new segment file is written (temporary name, fsync, rename, fsync of the
/// directory) before the LMDB transaction that records it, and merged-away files are removed only
/// after the transaction that drops them. A crash therefore leaves the old or the new set of
/// segments in the manifest; files it does not name are removed at the next open.
///
/// Thread-safety: immutable; every call may run from any thread (LMDB transactions are per call,
/// or the caller's).
struct SegmentStore: Sendable {
    let root: String
    let env: LMDBEnvironment
    let tables: Tables
    /// Read-only (another process writes): no file is changed.
    let readOnly: Bool

    func directory(_ number: UInt32) -> String { root + "/" + String(number) }

    // MARK: - Rows from LMDB

    /// Which stored rows of a collection `readRows` reads.
    enum RowSelection {
        /// The rows with ids in `after + 1 ... through`, ascending (a seal's rows; the mutable
        /// segment's at load).
        case range(after: UInt64, through: UInt64)
        /// The given rows, in the given order; rows no longer stored are skipped.
        case rows([UInt64])
        /// Every `step`-th stored row, ascending, until `cap` rows are read (a training sample).
        case sample(step: Int, cap: Int)
    }

    /// The rows of `segs`' collection that `selection` names, with their vectors, from LMDB (the
    /// snapshot `txn`, or a read transaction of its own). A damaged vector throws, unless
    /// `skipDamaged` (the load at open, which must not fail on one damaged value, and the rows put
    /// back after a failed seal): then its row is left out of the index, where no search can
    /// return it (the exact scan refuses it; `verify` reports it).
    func readRows(_ segs: CollectionSegments, _ selection: RowSelection, txn: LMDBTransaction? = nil,
                  skipDamaged: Bool = false) throws -> (rows: [UInt64], vectors: Matrix?) {
        guard let txn else { return try env.read { try readRows(segs, selection, txn: $0, skipDamaged: skipDamaged) } }
        let d = segs.dimension
        let vectorTable = VectorTable(segs, tables: tables)
        var rows: [UInt64] = []
        var storage: [Float] = []
        /// Appends `row` with its vector (or the error reading it raised).
        func append(_ row: UInt64, _ vector: Result<UnsafeBufferPointer<Float>, Error>) throws {
            do {
                storage.append(contentsOf: try vector.get())
            } catch let e as StorageError where skipDamaged && e.kind == .corrupt {
                return
            }
            rows.append(row)
        }
        switch selection {
        case .range(let after, let through):
            try vectorTable.forEach(txn: txn, from: after &+ 1) { row, vector in
                if row > through { return false }
                try append(row, vector)
                return true
            }
        case .rows(let ids):
            var buffer = [Float](repeating: 0, count: d)
            try buffer.withUnsafeMutableBufferPointer { buf in
                for row in ids {
                    let vector: Result<UnsafeBufferPointer<Float>, Error>
                    do {
                        guard try vectorTable.read(row, txn: txn, into: buf.baseAddress!) else { continue }
                        vector = .success(UnsafeBufferPointer(buf))
                    } catch {
                        vector = .failure(error)
                    }
                    try append(row, vector)
                }
            }
        case .sample(let step, let cap):
            storage.reserveCapacity(cap * d)
            var i = 0
            try vectorTable.forEach(txn: txn) { row, vector in
                defer { i += 1 }
                guard i % max(step, 1) == 0 else { return true }
                try append(row, vector)
                return rows.count < cap
            }
        }
        return (rows, rows.isEmpty ? nil : Matrix(dimension: d, storage: storage))
    }

    /// The rows of collection `c` with ids <= `through` that hold a document (LMDB's `rows` table).
    func liveRows(_ c: UInt32, through: UInt64, txn: LMDBTransaction) throws -> Set<UInt64> {
        var live = Set<UInt64>()
        try txn.forEach(tables.rows, prefix: Keys.collection(c)) { k, _ in
            let row = Keys.rowID(of: k)
            if row > through { return false }
            live.insert(row)
            return true
        }
        return live
    }

    /// The exact stand-in of the unusable segment file of `record`: the given rows (live, sealed,
    /// held by no usable segment) read from the snapshot `txn` into a flat index.
    func standIn(_ segs: CollectionSegments, record: SegmentRecord, reason: String, rows: [UInt64],
                 txn: LMDBTransaction) throws -> SealedSegment {
        let stand = try FlatIndex(dimension: segs.dimension, metric: segs.metric)
        let (found, vectors) = try readRows(segs, .rows(rows), txn: txn, skipDamaged: true)
        if let v = vectors { try stand.add(v, ids: found.map { Int64($0) }) }
        let path = segs.directory + "/" + record.fileName
        let damage = "segment file \(path) (rows \(record.minRow)...\(record.maxRow)) cannot be used (\(reason)); its \(found.count) live rows are searched exactly until it is rebuilt"
        return SealedSegment(record: record, index: .exact(stand), path: path, damage: damage)
    }

    // MARK: - The manifest

    /// Collection `c`'s manifest records and sealing state.
    func manifest(_ c: UInt32, name: String) throws -> (records: [SegmentRecord], state: SegmentState) {
        try env.read { txn in
            (try Manifest.records(c, name: name, txn: txn, tables: tables), try Manifest.state(c, name: name, txn: txn, tables: tables))
        }
    }

    // MARK: - Files

    /// Removes the collection directories under the root that `known` does not name; returns how
    /// many. Creates the root first.
    func removeOrphanDirectories(known: Set<String>) throws -> Int {
        try FileSystem.createDirectory(root)
        var removed = 0
        for entry in try FileSystem.list(root) where !known.contains(entry) {
            try FileSystem.removeTree(root + "/" + entry)
            removed += 1
        }
        return removed
    }

    /// Creates collection `c`'s directory and removes the files in it that `named` does not name
    /// (then syncs the directory); returns how many.
    func removeOrphanFiles(_ c: UInt32, named: Set<String>) throws -> Int {
        let dir = directory(c)
        try FileSystem.createDirectory(dir)
        var removed = 0
        for file in try FileSystem.list(dir) where !named.contains(file) {
            try FileSystem.remove(dir + "/" + file)
            removed += 1
        }
        if removed > 0 { try FileSystem.syncDirectory(dir) }
        return removed
    }

    /// Reads the segment file at `path`, every checksum verified: an HNSW file (float32 or sq8) is
    /// searched in place over its mapping; an IVF-PQ file is read into memory (its codes are what searches scan).
    static func readSegment(_ path: String, kind: UInt8) throws -> SegmentIndex {
        try readSegment(MappedFile(path: path), kind: kind)
    }

    /// Decodes and checks a segment file already mapped (verify maps a snapshot's files first, so
    /// that a writer removing one afterwards does not matter).
    static func readSegment(_ mapped: MappedFile, kind: UInt8) throws -> SegmentIndex {
        let path = mapped.path
        do {
            switch kind {
            case SegmentRecord.ivfpq: return .ivfpq(try IVFPQCodec.decode(mapped.bytes, verify: .full))
            case SegmentRecord.sq8: return .sq8(try SQ8HNSWCodec.decode(mapped.bytes, inPlace: mapped, verify: .full))
            default: return .hnsw(try HNSWCodec.decode(mapped.bytes, inPlace: mapped, verify: .full))
            }
        } catch let e as IndexError {
            throw StorageError(.corrupt, "segment file \(path) is damaged: \(e.description)")
        }
    }

    /// Opens a segment file of `segs`' collection, checks its shape against the collection's and
    /// sets its search defaults from the collection's settings (and, for IVF-PQ, the LMDB source of
    /// full vectors for re-ranking).
    func openSegment(_ path: String, kind: UInt8, for segs: CollectionSegments) throws -> SegmentIndex {
        let index = try Self.readSegment(path, kind: kind)
        let any = index.any
        guard any.dimension == segs.dimension, any.metric == segs.metric else {
            throw StorageError(.corrupt, "segment file \(path) holds \(any.dimension)-d \(any.metric.rawValue) vectors; collection '\(segs.name)' is \(segs.dimension)-d \(segs.metric.rawValue)")
        }
        let settings = segs.settings
        switch index {
        case .hnsw(let h):
            h.efSearch = settings.efSearch
        case .sq8(let h):
            h.efSearch = settings.efSearch
        case .ivfpq(let v):
            v.vectorSource = LMDBVectorSource(env: env, vectors: VectorTable(segs, tables: tables))
            v.nprobe = min(settings.nprobe, v.nlist)
            v.rerank = settings.rerank
        case .exact:
            break
        }
        return index
    }

    /// Writes `index` as a new segment file of `segs`, records it in the manifest in place of
    /// `replacing` (one LMDB transaction; with `sealedThrough`, the new sealed mark too), and
    /// returns it mapped from its file; nil when the collection was dropped meanwhile.
    func publish(_ segs: CollectionSegments, index: SegmentIndex, minRow: UInt64, maxRow: UInt64,
                 replacing: [SealedSegment], sealedThrough: UInt64?) throws -> SealedSegment? {
        let c = segs.number
        let id: UInt64 = try env.read { txn in try Manifest.state(c, name: segs.name, txn: txn, tables: tables).nextSegment }
        let path = segs.directory + "/" + SegmentRecord.fileName(id, kind: index.recordKind)
        let bytes = try write(index, to: path, directory: segs.directory)
        // Mapped before the manifest names it: once the transaction below commits, nothing may fail,
        // or the in-memory segments would no longer match the manifest (and the next seal or merge
        // would record the same rows twice).
        let mapped = try openSegment(path, kind: index.recordKind, for: segs)
        let record = SegmentRecord(id: id, kind: index.recordKind, vectors: UInt64(index.count), minRow: minRow, maxRow: maxRow, fileBytes: UInt64(bytes))
        let recorded: Bool = try env.write { txn in
            guard try txn.contains(tables.counters, Keys.collection(c)) else { return false }
            var state = try Manifest.state(c, name: segs.name, txn: txn, tables: tables)
            guard state.nextSegment == id else { throw StorageError(.corrupt, "segment ids of collection \(c) moved under a seal") }
            state.nextSegment = id + 1
            if let through = sealedThrough { state.sealedThrough = through }
            for old in replacing { try txn.delete(tables.segments, Keys.segment(c, old.record.id)) }
            try txn.put(tables.segments, Keys.segment(c, id), record.stored(c))
            try txn.put(tables.segmentState, Keys.collection(c), state.stored(c))
            return true
        }
        guard recorded else {
            try? FileSystem.remove(path)
            return nil
        }
        return SealedSegment(record: record, index: mapped, path: path)
    }

    /// Writes the encoding of `index` to `path` durably: a temporary file, fsync, rename, fsync of
    /// `directory`. Returns the file's size.
    private func write(_ index: SegmentIndex, to path: String, directory: String) throws -> Int {
        let tmp = path + ".tmp"
        try FileSystem.remove(tmp)
        let file = try File(path: tmp, mode: .createNew)
        // The codecs hand over many small pieces (a header, a table, a list's codes); they are
        // gathered into writes of up to 1 MiB.
        var offset = 0
        var pending: [UInt8] = []
        pending.reserveCapacity(1 << 20)
        func flush() throws {
            guard !pending.isEmpty else { return }
            try pending.withUnsafeBytes { try file.write($0, at: offset) }
            offset += pending.count
            pending.removeAll(keepingCapacity: true)
        }
        let chunk: (UnsafeRawBufferPointer) throws -> Void = { chunk in
            if pending.count + chunk.count > 1 << 20 { try flush() }
            if chunk.count >= 1 << 20 {
                try file.write(chunk, at: offset)
                offset += chunk.count
            } else {
                pending.append(contentsOf: chunk)
            }
        }
        switch index {
        case .hnsw(let i): try HNSWCodec.encode(i, to: chunk)
        case .sq8(let i): try SQ8HNSWCodec.encode(i, to: chunk)
        case .ivfpq(let i): try IVFPQCodec.encode(i, to: chunk)
        case .exact: throw StorageError(.invalidArgument, "an exact stand-in for a damaged segment is rebuilt, never written")
        }
        try flush()
        try file.sync()
        file.close()
        try FileSystem.rename(tmp, path)
        try FileSystem.syncDirectory(directory)
        return offset
    }

    /// Removes the files of segments the manifest no longer names (after the transaction that
    /// dropped them), then syncs `directory`.
    func removeFiles(of old: [SealedSegment], directory: String) throws {
        for o in old { try FileSystem.remove(o.path) }
        try FileSystem.syncDirectory(directory)
    }
}

/// Reads a collection's full vectors from LMDB for IVF-PQ re-ranking and exact filtered scans: one
/// read transaction per call (a snapshot; a row deleted since the segment's search began is not found
/// and its candidate is dropped).
struct LMDBVectorSource: IVFPQVectorSource {
    let env: LMDBEnvironment
    let vectors: VectorTable

    func readVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, into destination: UnsafeMutablePointer<Float>,
                     found: UnsafeMutablePointer<Bool>) throws {
        guard dimension == vectors.dimension else {
            throw StorageError(.invalidArgument, "collection '\(vectors.name)': \(dimension)-d vectors asked of a \(vectors.dimension)-d collection")
        }
        try env.read { txn in
            for (i, id) in ids.enumerated() {
                found[i] = id >= 0 ? try vectors.read(UInt64(id), txn: txn, into: destination + i * dimension) : false
            }
        }
    }
}
