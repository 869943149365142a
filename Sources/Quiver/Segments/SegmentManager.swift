import Foundation
import QuiverCore
import QuiverIndex
import QuiverStorage

/// What `Database.compact` reports as it goes.
public struct CompactionProgress: Sendable {
    /// The collection being worked on.
    public var collection: String
    /// What is being done now ("sealing 8192 vectors", "merging 3 segments into 1").
    public var message: String
}

/// Keeps every collection's segments: loads them at open, applies committed writes, seals full
/// mutable segments and compacts sealed ones on a background queue.
///
/// Crash safety: a new segment file is written (temporary name, fsync, rename, fsync of the
/// directory) before the LMDB transaction that records it, and merged-away files are removed only
/// after the transaction that drops them. A crash therefore leaves the old or the new set of
/// segments in the manifest; files it does not name are removed at the next open.
final class SegmentManager: @unchecked Sendable {
    // @unchecked: `collections` is guarded by `lock`; each CollectionSegments guards itself.
    let root: String
    let env: LMDBEnvironment
    let tables: Tables
    private let lock = NSLock()
    private var collections: [UInt32: CollectionSegments] = [:]
    let queue = DispatchQueue(label: "quiver.segments.maintenance", qos: .utility)
    private var stopping = false
    /// The last error of a background seal or compaction (nil when they all succeeded).
    private(set) var lastMaintenanceError: String?
    /// Files and directories removed at open because the manifest did not name them.
    private(set) var orphansRemoved = 0

    let timings: TimingsRecorder

    init(root: String, env: LMDBEnvironment, tables: Tables, timings: TimingsRecorder) {
        self.root = root
        self.env = env
        self.tables = tables
        self.timings = timings
    }

    func directory(_ number: UInt32) -> String { root + "/" + String(number) }

    func segments(_ number: UInt32) -> CollectionSegments? {
        lock.lock(); defer { lock.unlock() }
        return collections[number]
    }

    // MARK: - Open

    /// Loads every collection's segments: maps the sealed files named by the manifest (no rebuild),
    /// tombstones rows deleted since they were sealed, rebuilds the mutable segment from the rows
    /// past the sealed mark, and removes files the manifest does not name.
    func load(_ infos: [CollectionInfo]) throws {
        try FileSystem.createDirectory(root)
        let known = Set(infos.map { String($0.number) })
        for entry in try FileSystem.list(root) where !known.contains(entry) {
            try FileSystem.removeTree(root + "/" + entry)
            orphansRemoved += 1
        }
        for info in infos {
            let segs = try loadCollection(info)
            lock.lock()
            collections[info.number] = segs
            lock.unlock()
        }
    }

    private func loadCollection(_ info: CollectionInfo) throws -> CollectionSegments {
        let c = info.number
        let dir = directory(c)
        try FileSystem.createDirectory(dir)
        let (records, state) = try env.read { txn in
            (try Manifest.records(c, txn: txn, tables: tables), try Manifest.state(c, txn: txn, tables: tables))
        }
        let named = Set(records.map { SegmentRecord.fileName($0.id) })
        var removed = false
        for file in try FileSystem.list(dir) where !named.contains(file) {
            try FileSystem.remove(dir + "/" + file)
            removed = true
            orphansRemoved += 1
        }
        if removed { try FileSystem.syncDirectory(dir) }
        let segs = try CollectionSegments(info: info, directory: dir, sealedThrough: state.sealedThrough)
        for record in records {
            let path = dir + "/" + SegmentRecord.fileName(record.id)
            segs.sealed.append(SealedSegment(record: record, index: try openSegment(path, info: info), path: path))
        }
        // Rows deleted after their segment was sealed: live rows are exactly those in `rows`.
        try env.read { txn in
            var live = Set<UInt64>()
            try txn.forEach(tables.rows, prefix: Keys.collection(c)) { k, _ in
                let row = Keys.rowID(of: k)
                if row > state.sealedThrough { return false }
                live.insert(row)
                return true
            }
            for s in segs.sealed {
                var dead: [Int64] = []
                s.index.forEachID { id, deleted in if !deleted && !live.contains(UInt64(id)) { dead.append(id) } }
                for id in dead { s.index.markDeleted(id) }
            }
        }
        // The mutable segment: every row past the sealed mark, from LMDB.
        let (rows, vectors) = try readRows(c, dimension: info.dimension, after: state.sealedThrough)
        try segs.apply(added: rows, vectors: vectors, removed: [])
        return segs
    }

    private func openSegment(_ path: String, info: CollectionInfo) throws -> HNSWIndex {
        let mapped = try MappedFile(path: path)
        do {
            let index = try HNSWCodec.decode(mapped.bytes, inPlace: mapped, verify: .full)
            guard index.dimension == info.dimension, index.metric == info.metric else {
                throw StorageError(.corrupt, "segment file \(path) holds \(index.dimension)-d \(index.metric.rawValue) vectors; collection '\(info.name)' is \(info.dimension)-d \(info.metric.rawValue)")
            }
            index.efSearch = info.indexSettings.efSearch
            return index
        } catch let e as IndexError {
            throw StorageError(.corrupt, "segment file \(path) is damaged: \(e.description)")
        }
    }

    /// The rows of collection `c` with ids in `after+1 ... through` and their vectors, from LMDB.
    private func readRows(_ c: UInt32, dimension: Int, after: UInt64, through: UInt64 = .max) throws -> ([UInt64], Matrix?) {
        try env.read { txn in
            var rows: [UInt64] = []
            var storage: [Float] = []
            try txn.forEach(tables.vectors, prefix: Keys.collection(c), from: Keys.row(c, after &+ 1)) { k, v in
                let row = Keys.rowID(of: k)
                if row > through { return false }
                rows.append(row)
                let start = storage.count
                storage.append(contentsOf: repeatElement(0, count: dimension))
                try storage.withUnsafeMutableBufferPointer { try VectorCodec.decode(v, dimension: dimension, into: $0.baseAddress! + start) }
                return true
            }
            return (rows, rows.isEmpty ? nil : Matrix(dimension: dimension, storage: storage))
        }
    }

    /// The vectors of the given rows (those still stored), from LMDB.
    private func readRows(_ c: UInt32, dimension: Int, ids: [UInt64]) throws -> ([UInt64], Matrix?) {
        try env.read { txn in
            var rows: [UInt64] = []
            var storage: [Float] = []
            for row in ids {
                try txn.withValue(tables.vectors, Keys.row(c, row)) { v in
                    guard let v = v else { return }
                    rows.append(row)
                    let start = storage.count
                    storage.append(contentsOf: repeatElement(0, count: dimension))
                    try storage.withUnsafeMutableBufferPointer { try VectorCodec.decode(v, dimension: dimension, into: $0.baseAddress! + start) }
                }
            }
            return (rows, rows.isEmpty ? nil : Matrix(dimension: dimension, storage: storage))
        }
    }

    // MARK: - Writes

    /// Called under the database's writer lock after a transaction committed.
    func applied(_ change: AppliedChange) throws {
        switch change {
        case .created(let info):
            try FileSystem.createDirectory(directory(info.number))
            let segs = try CollectionSegments(info: info, directory: directory(info.number), sealedThrough: 0)
            lock.lock(); collections[info.number] = segs; lock.unlock()
        case .dropped(let number):
            lock.lock(); collections[number] = nil; lock.unlock()
            try FileSystem.removeTree(directory(number))
        case .rows(let number, let added, let vectors, let removed):
            guard let segs = segments(number) else { return }
            try segs.apply(added: added, vectors: vectors, removed: removed)
            scheduleSealIfFull(segs)
        }
    }

    private func scheduleSealIfFull(_ segs: CollectionSegments) {
        let due: Bool = segs.lock.write {
            guard !segs.sealPending, segs.frozen == nil, segs.mutable.count >= segs.settings.segmentSize else { return false }
            segs.sealPending = true
            return true
        }
        guard due else { return }
        queue.async { [self] in
            let started = monotonicSeconds()
            defer { let spent = monotonicSeconds() - started; timings.add { $0.indexingSeconds += spent } }
            do {
                // Writes that filled the mutable segment again while this seal ran scheduled nothing
                // (a seal was pending), so keep sealing while it is full.
                repeat {
                    try seal(segs, progress: nil)
                } while !isStopping && segs.lock.read({ segs.mutable.count >= segs.settings.segmentSize })
                segs.lock.write { segs.sealPending = false }
                scheduleSealIfFull(segs)
                try compact(segs, full: false, progress: nil)
            } catch {
                segs.lock.write { segs.sealPending = false }
                noteMaintenanceError("collection '\(segs.name)': \(error)")
            }
        }
    }

    private func noteMaintenanceError(_ message: String) {
        lock.lock(); lastMaintenanceError = message; lock.unlock()
    }

    private var isStopping: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopping
    }

    /// Lets queued maintenance finish (or skip, once stopping) and waits for it.
    func stop() {
        lock.lock(); stopping = true; lock.unlock()
        queue.sync {}
    }

    // MARK: - Sealing

    /// Seals the mutable segment of `segs` into an HNSW segment file. Runs on the maintenance queue
    /// (or a caller that holds it, like `compactNow`).
    func seal(_ segs: CollectionSegments, progress: ((CompactionProgress) -> Void)?) throws {
        if isStopping { return }
        // 1. Freeze: new writes go to a fresh mutable segment; the frozen one stays searchable.
        let range: ClosedRange<UInt64>? = try segs.lock.write {
            guard segs.frozen == nil, segs.mutable.count > 0 else { return nil }
            let lo = segs.sealedThrough + 1, hi = segs.maxRow
            segs.frozen = segs.mutable
            segs.mutable = try FlatIndex(dimension: segs.dimension, metric: segs.metric)
            return lo...hi
        }
        guard let rows = range else { return }
        do {
            // 2. Build the graph from the rows' stored vectors.
            let (ids, vectors) = try readRows(segs.number, dimension: segs.dimension, after: rows.lowerBound - 1, through: rows.upperBound)
            progress?(CompactionProgress(collection: segs.name, message: "sealing \(ids.count) vectors into an HNSW segment"))
            let index = try buildIndex(segs, vectors: vectors, ids: ids)
            // 3. Write the file, then 4. record it, then 5. swap it in.
            let record = try publish(segs, index: index, minRow: rows.lowerBound, maxRow: rows.upperBound, replacing: [], sealedThrough: rows.upperBound)
            guard let segment = record else { return }
            segs.lock.write {
                let frozen = segs.frozen
                var dead: [Int64] = []
                segment.index.forEachID { id, deleted in if !deleted && !(frozen?.contains(id) ?? false) { dead.append(id) } }
                for id in dead { segment.index.markDeleted(id) }
                segs.sealed.append(segment)
                segs.frozen = nil
                segs.sealedThrough = rows.upperBound
            }
        } catch {
            // Put the frozen rows back so that nothing becomes unsearchable; the next seal retries.
            try? segs.lock.write {
                if let f = segs.frozen {
                    try mergeFlat(f, into: segs)
                    segs.frozen = nil
                }
            }
            throw error
        }
    }

    /// Moves the live rows of a frozen flat segment back into the mutable one (after a failed seal).
    private func mergeFlat(_ f: FlatIndex, into segs: CollectionSegments) throws {
        let (ids, vectors) = try readRows(segs.number, dimension: segs.dimension, after: segs.sealedThrough, through: segs.maxRow)
        let fresh = try FlatIndex(dimension: segs.dimension, metric: segs.metric)
        var keepIDs: [UInt64] = []
        var keep: [Float] = []
        if let v = vectors {
            for (i, row) in ids.enumerated() where f.contains(Int64(row)) || segs.mutable.contains(Int64(row)) {
                keepIDs.append(row)
                keep.append(contentsOf: v[row: i])
            }
        }
        if !keepIDs.isEmpty { try fresh.add(Matrix(dimension: segs.dimension, storage: keep), ids: keepIDs.map { Int64($0) }) }
        segs.mutable = fresh
    }

    private func buildIndex(_ segs: CollectionSegments, vectors: Matrix?, ids: [UInt64]) throws -> HNSWIndex {
        let s = segs.settings
        let index = try HNSWIndex(dimension: segs.dimension, metric: segs.metric,
                                  parameters: HNSWParameters(m: s.m, efConstruction: s.efConstruction, efSearch: s.efSearch))
        if let v = vectors {
            index.reserveCapacity(ids.count)
            try index.add(v, ids: ids.map { Int64($0) })
        }
        return index
    }

    /// Writes `index` as a new segment file, records it in the manifest in place of `replacing` (one
    /// LMDB transaction), and returns it mapped from its file; nil when the collection was dropped.
    private func publish(_ segs: CollectionSegments, index: HNSWIndex, minRow: UInt64, maxRow: UInt64,
                         replacing: [SealedSegment], sealedThrough: UInt64?) throws -> SealedSegment? {
        let c = segs.number
        let id: UInt64 = try env.read { txn in try Manifest.state(c, txn: txn, tables: tables).nextSegment }
        let path = segs.directory + "/" + SegmentRecord.fileName(id)
        let tmp = path + ".tmp"
        try FileSystem.remove(tmp)
        let file = try File(path: tmp, mode: .createNew)
        var offset = 0
        try HNSWCodec.encode(index) { chunk in
            try file.write(chunk, at: offset)
            offset += chunk.count
        }
        try file.sync()
        file.close()
        try FileSystem.rename(tmp, path)
        try FileSystem.syncDirectory(segs.directory)
        let record = SegmentRecord(id: id, vectors: UInt64(index.count), minRow: minRow, maxRow: maxRow, fileBytes: UInt64(offset))
        let recorded: Bool = try env.write { txn in
            guard try txn.contains(tables.counters, Keys.collection(c)) else { return false }
            var state = try Manifest.state(c, txn: txn, tables: tables)
            guard state.nextSegment == id else { throw StorageError(.corrupt, "segment ids of collection \(c) moved under a seal") }
            state.nextSegment = id + 1
            if let through = sealedThrough { state.sealedThrough = through }
            for old in replacing { try txn.delete(tables.segments, Keys.segment(c, old.record.id)) }
            try txn.put(tables.segments, Keys.segment(c, id), record.bytes)
            try txn.put(tables.segmentState, Keys.collection(c), state.bytes)
            return true
        }
        guard recorded else {
            try? FileSystem.remove(path)
            return nil
        }
        let info = CollectionInfo(name: segs.name, dimension: segs.dimension, metric: segs.metric, encoder: nil,
                                  textCompressionThreshold: 0, createdAt: Date(), number: c, index: segs.settings)
        return SealedSegment(record: record, index: try openSegment(path, info: info), path: path)
    }

    // MARK: - Compaction

    /// One compaction pass over `segs`: rewrites each sealed segment whose deleted share passes the
    /// threshold, then merges the smaller sealed segments into the largest one (inserting their
    /// live vectors into a copy of its graph) as far as `maxSegmentVectors` allows.
    ///
    /// In the background (`full` false) a merge waits until the small segments hold a quarter of
    /// the largest one's vectors, or there are 8 sealed segments: copying the largest graph costs
    /// its size, so merging after every seal would cost O(n^2 / segmentSize) over a long load;
    /// waiting for a quarter keeps the total copying within a constant factor of n. An explicit
    /// compaction (`full`) merges everything it can.
    func compact(_ segs: CollectionSegments, full: Bool = true, progress: ((CompactionProgress) -> Void)?) throws {
        let s = segs.settings
        while !isStopping {
            let snapshot = segs.lock.read { segs.sealed }
            if let heavy = snapshot.first(where: { $0.index.count > 0 && Double($0.index.deletedCount) / Double($0.index.count) > s.rewriteDeletedShare }) {
                progress?(CompactionProgress(collection: segs.name, message: "rewriting segment \(heavy.record.id) without its \(heavy.index.deletedCount) deleted vectors"))
                try replace([heavy], in: segs, base: nil)
                continue
            }
            guard snapshot.count >= 2 else { return }
            let bySize = snapshot.sorted { $0.index.liveCount > $1.index.liveCount }
            let base = bySize[0]
            var total = base.index.liveCount
            var smalls: [SealedSegment] = []
            for seg in bySize.dropFirst() where total + seg.index.liveCount <= s.maxSegmentVectors {
                smalls.append(seg)
                total += seg.index.liveCount
            }
            guard !smalls.isEmpty else { return }
            let smallTotal = total - base.index.liveCount
            if !full && smallTotal * 4 < base.index.liveCount && snapshot.count < 8 { return }
            progress?(CompactionProgress(collection: segs.name, message: "merging \(smalls.count) segment(s) (\(total - base.index.liveCount) vectors) into segment \(base.record.id) (\(base.index.liveCount) vectors)"))
            try replace([base] + smalls, in: segs, base: base)
        }
    }

    /// Replaces `old` by one new segment: a copy of `base`'s graph plus the live vectors of the
    /// others, or (without a base) a fresh graph of the live vectors of all of them.
    private func replace(_ old: [SealedSegment], in segs: CollectionSegments, base: SealedSegment?) throws {
        let index: HNSWIndex
        var others = old
        if let b = base {
            index = try HNSWCodec.decode(segs.lock.read { HNSWCodec.encode(b.index) })
            others.removeAll { $0 === b }
        } else {
            index = try buildIndex(segs, vectors: nil, ids: [])
        }
        var addIDs: [UInt64] = []
        segs.lock.read {
            for seg in others { seg.index.forEachID { id, deleted in if !deleted { addIDs.append(UInt64(id)) } } }
        }
        let (ids, vectors) = try readRows(segs.number, dimension: segs.dimension, ids: addIDs.sorted())
        if let v = vectors {
            index.reserveCapacity(index.count + ids.count)
            try index.add(v, ids: ids.map { Int64($0) })
        }
        guard let segment = try publish(segs, index: index, minRow: old.map(\.record.minRow).min()!, maxRow: old.map(\.record.maxRow).max()!,
                                        replacing: old, sealedThrough: nil) else { return }
        segs.lock.write {
            var dead: [Int64] = []
            segment.index.forEachID { id, deleted in
                if !deleted && !old.contains(where: { $0.index.contains(id) }) { dead.append(id) }
            }
            for id in dead { segment.index.markDeleted(id) }
            segs.sealed.removeAll { s in old.contains { $0 === s } }
            segs.sealed.append(segment)
            segs.sealed.sort { $0.record.minRow < $1.record.minRow }
        }
        for o in old { try FileSystem.remove(o.path) }
        try FileSystem.syncDirectory(segs.directory)
    }

    /// Seals and compacts `segs` now, on the maintenance queue, and waits.
    func compactNow(_ segs: CollectionSegments, progress: ((CompactionProgress) -> Void)?) throws {
        var failure: Error?
        queue.sync {
            let started = monotonicSeconds()
            defer { let spent = monotonicSeconds() - started; timings.add { $0.indexingSeconds += spent } }
            do {
                try seal(segs, progress: progress)
                try compact(segs, progress: progress)
            } catch { failure = error }
        }
        if let f = failure { throw f }
    }
}

/// What a committed write changed, for the in-memory segments.
enum AppliedChange {
    case created(CollectionInfo)
    case dropped(UInt32)
    case rows(number: UInt32, added: [UInt64], vectors: Matrix?, removed: [UInt64])
}
