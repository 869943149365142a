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
    /// Read-only (another process writes): `load` changes no file, and may run again to catch up.
    let readOnly: Bool

    init(root: String, env: LMDBEnvironment, tables: Tables, timings: TimingsRecorder, readOnly: Bool = false) {
        self.root = root
        self.env = env
        self.tables = tables
        self.timings = timings
        self.readOnly = readOnly
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
    /// Read-only, it leaves the files alone and replaces whatever was loaded before.
    ///
    /// A segment file that cannot be used (damaged, truncated, missing, of another shape) does not
    /// stop the load: the segment's live rows are read from LMDB into an exact stand-in
    /// (`SegmentIndex.exact`), so searches stay correct, and `damagedSegments` names it until it is
    /// rebuilt (`heal`). Read-only, a missing file is thrown instead unless `standInMissing` (the
    /// writer may have merged it away since the snapshot; the caller retries on a newer one).
    /// `keepUnknownDirectories`: the catalog has a damaged entry, whose collection's directory must
    /// not be taken for an orphan.
    func load(_ infos: [CollectionInfo], standInMissing: Bool = true, keepUnknownDirectories: Bool = false) throws {
        if readOnly {
            var loaded: [UInt32: CollectionSegments] = [:]
            for info in infos { loaded[info.number] = try loadCollection(info, standInMissing: standInMissing) }
            lock.lock()
            collections = loaded
            lock.unlock()
            return
        }
        try FileSystem.createDirectory(root)
        let known = Set(infos.map { String($0.number) })
        for entry in try FileSystem.list(root) where !known.contains(entry) && !keepUnknownDirectories {
            try FileSystem.removeTree(root + "/" + entry)
            orphansRemoved += 1
        }
        var loaded: [UInt32: CollectionSegments] = [:]
        for info in infos { loaded[info.number] = try loadCollection(info, standInMissing: true) }
        lock.lock()
        collections = loaded
        lock.unlock()
    }

    /// Every sealed segment whose file could not be used and is searched exactly until rebuilt:
    /// one sentence each.
    func damagedSegments() -> [String] {
        lock.lock()
        let all = collections.values.sorted { $0.number < $1.number }
        lock.unlock()
        return all.flatMap { segs in
            segs.lock.read { segs.sealed.compactMap { s in s.damage.map { "collection '\(segs.name)': \($0)" } } }
        }
    }

    private func loadCollection(_ info: CollectionInfo, standInMissing: Bool) throws -> CollectionSegments {
        let c = info.number
        let dir = directory(c)
        let (records, state) = try env.read { txn in
            (try Manifest.records(c, name: info.name, txn: txn, tables: tables), try Manifest.state(c, name: info.name, txn: txn, tables: tables))
        }
        let named = Set(records.map(\.fileName))
        var removed = false
        if !readOnly { try FileSystem.createDirectory(dir) }
        for file in readOnly ? [] : try FileSystem.list(dir) where !named.contains(file) {
            try FileSystem.remove(dir + "/" + file)
            removed = true
            orphansRemoved += 1
        }
        if removed { try FileSystem.syncDirectory(dir) }
        let segs = try CollectionSegments(info: info, directory: dir, sealedThrough: state.sealedThrough)
        var unusable: [(SegmentRecord, String)] = []
        for record in records {
            let path = dir + "/" + record.fileName
            do {
                segs.sealed.append(SealedSegment(record: record, index: try openSegment(path, kind: record.kind, info: info), path: path))
            } catch let e as StorageError where e.kind == .io && e.code == ENOENT && readOnly && !standInMissing {
                throw e
            } catch {
                unusable.append((record, Self.describe(error)))
            }
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
            // Stand-ins for the unusable files: the live sealed rows of each one's row range that no
            // usable segment holds (merged segments' ranges can overlap others').
            var claimed = Set<UInt64>()
            for (record, reason) in unusable {
                var rows: [UInt64] = []
                for row in live where row >= record.minRow && row <= record.maxRow && !claimed.contains(row)
                    && !segs.sealed.contains(where: { $0.holds(row) }) {
                    rows.append(row)
                }
                rows.sort()
                claimed.formUnion(rows)
                let stand = try FlatIndex(dimension: info.dimension, metric: info.metric)
                let (found, vectors) = try readRows(c, name: info.name, dimension: info.dimension, ids: rows, txn: txn, skipDamaged: true)
                if let v = vectors { try stand.add(v, ids: found.map { Int64($0) }) }
                let path = dir + "/" + record.fileName
                let damage = "segment file \(path) (rows \(record.minRow)...\(record.maxRow)) cannot be used (\(reason)); its \(found.count) live rows are searched exactly until it is rebuilt"
                segs.sealed.append(SealedSegment(record: record, index: .exact(stand), path: path, damage: damage))
            }
            if !unusable.isEmpty { segs.sealed.sort { $0.record.minRow < $1.record.minRow } }
        }
        // The mutable segment: every row past the sealed mark, from LMDB.
        let (rows, vectors) = try readRows(c, name: info.name, dimension: info.dimension, after: state.sealedThrough, skipDamaged: true)
        try segs.apply(added: rows, vectors: vectors, removed: [])
        return segs
    }

    /// Reads the segment file at `path`, every checksum verified: an HNSW file is searched in place
    /// over its mapping; an IVF-PQ file is read into memory (its codes are what searches scan).
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
            default: return .hnsw(try HNSWCodec.decode(mapped.bytes, inPlace: mapped, verify: .full))
            }
        } catch let e as IndexError {
            throw StorageError(.corrupt, "segment file \(path) is damaged: \(e.description)")
        }
    }

    /// Opens a segment of collection `info` and sets its search defaults (and, for IVF-PQ, the LMDB
    /// source of full vectors for re-ranking).
    private func openSegment(_ path: String, kind: UInt8, info: CollectionInfo) throws -> SegmentIndex {
        let index = try Self.readSegment(path, kind: kind)
        let any = index.any
        guard any.dimension == info.dimension, any.metric == info.metric else {
            throw StorageError(.corrupt, "segment file \(path) holds \(any.dimension)-d \(any.metric.rawValue) vectors; collection '\(info.name)' is \(info.dimension)-d \(info.metric.rawValue)")
        }
        let settings = info.indexSettings
        switch index {
        case .hnsw(let h):
            h.efSearch = settings.efSearch
        case .ivfpq(let v):
            v.vectorSource = LMDBVectorSource(env: env, vectors: tables.vectors, collection: info.number, name: info.name)
            v.nprobe = min(settings.nprobe, v.nlist)
            v.rerank = settings.rerank
        case .exact:
            break
        }
        return index
    }

    /// The rows of collection `c` with ids in `after+1 ... through` and their vectors, from LMDB.
    /// A damaged vector throws, unless `skipDamaged` (the load at open, which must not fail on one
    /// damaged value): then its row is left out of the index, where no search can return it (the
    /// exact scan refuses it; `verify` reports it).
    private func readRows(_ c: UInt32, name: String, dimension: Int, after: UInt64, through: UInt64 = .max,
                          skipDamaged: Bool = false) throws -> ([UInt64], Matrix?) {
        try env.read { txn in
            var rows: [UInt64] = []
            var storage: [Float] = []
            try txn.forEach(tables.vectors, prefix: Keys.collection(c), from: Keys.row(c, after &+ 1)) { k, v in
                let row = Keys.rowID(of: k)
                if row > through { return false }
                let start = storage.count
                storage.append(contentsOf: repeatElement(0, count: dimension))
                do {
                    try storage.withUnsafeMutableBufferPointer { try VectorCodec.decode(v, key: k, collection: name, dimension: dimension, into: $0.baseAddress! + start) }
                } catch let e as StorageError where skipDamaged && e.kind == .corrupt {
                    storage.removeLast(dimension)
                    return true
                }
                rows.append(row)
                return true
            }
            return (rows, rows.isEmpty ? nil : Matrix(dimension: dimension, storage: storage))
        }
    }

    /// A one-line reason for an error (a storage error's message without its kind).
    static func describe(_ error: Error) -> String {
        if let e = error as? StorageError { return e.message }
        return "\(error)"
    }

    /// The vectors of the given rows (those still stored), from LMDB.
    private func readRows(_ c: UInt32, name: String, dimension: Int, ids: [UInt64]) throws -> ([UInt64], Matrix?) {
        try env.read { txn in try readRows(c, name: name, dimension: dimension, ids: ids, txn: txn) }
    }

    /// The vectors of the given rows (those still stored), from the snapshot `txn`; with
    /// `skipDamaged`, a row whose stored vector is damaged is left out instead of failing the read
    /// (reading it is an error where it is read; verify names it).
    private func readRows(_ c: UInt32, name: String, dimension: Int, ids: [UInt64], txn: LMDBTransaction,
                          skipDamaged: Bool = false) throws -> ([UInt64], Matrix?) {
        var rows: [UInt64] = []
        var storage: [Float] = []
        for row in ids {
            try txn.withValue(tables.vectors, Keys.row(c, row)) { v in
                guard let v = v else { return }
                let start = storage.count
                storage.append(contentsOf: repeatElement(0, count: dimension))
                do {
                    try storage.withUnsafeMutableBufferPointer { try VectorCodec.decode(v, key: Keys.row(c, row), collection: name, dimension: dimension, into: $0.baseAddress! + start) }
                } catch let e as StorageError where skipDamaged && e.kind == .corrupt {
                    storage.removeLast(dimension)
                    return
                }
                rows.append(row)
            }
        }
        return (rows, rows.isEmpty ? nil : Matrix(dimension: dimension, storage: storage))
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
            guard segs.settings.kind != .flat, !segs.sealPending, segs.frozen == nil,
                  segs.mutable.count >= segs.settings.segmentSize else { return false }
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

    // MARK: - Healing

    /// Rebuilds every exact stand-in of `segs` (a segment whose file could not be used) from its
    /// live rows in LMDB, as a segment of the kind the collection calls for. Runs on the
    /// maintenance queue (or a caller that holds it).
    func heal(_ segs: CollectionSegments, progress: ((CompactionProgress) -> Void)?) throws -> Int {
        var healed = 0
        while !isStopping, let stand = segs.lock.read({ segs.sealed.first { $0.damage != nil } }) {
            progress?(CompactionProgress(collection: segs.name, message: "rebuilding damaged segment \(stand.record.id) (rows \(stand.record.minRow)...\(stand.record.maxRow)) from LMDB"))
            try replace([stand], in: segs, base: nil, progress: progress)
            healed += 1
        }
        return healed
    }

    /// Every collection with a stand-in.
    func collectionsNeedingHeal() -> [CollectionSegments] {
        lock.lock()
        let all = collections.values.sorted { $0.number < $1.number }
        lock.unlock()
        return all.filter { segs in segs.lock.read { segs.sealed.contains { $0.damage != nil } } }
    }

    /// Rebuilds every stand-in in the background (after a writable open); failures are recorded
    /// like other maintenance failures, and the stand-ins keep serving searches meanwhile.
    func scheduleHeal() {
        let pending = collectionsNeedingHeal()
        guard !pending.isEmpty else { return }
        queue.async { [self] in
            for segs in pending {
                do { _ = try heal(segs, progress: nil) } catch { noteMaintenanceError("collection '\(segs.name)': rebuilding a damaged segment: \(error)") }
            }
        }
    }

    // MARK: - Sealing

    /// Seals the mutable segment of `segs` into a segment file of the collection's index kind (none
    /// under `flat`). Runs on the maintenance queue (or a caller that holds it, like `compactNow`).
    func seal(_ segs: CollectionSegments, progress: ((CompactionProgress) -> Void)?) throws {
        if isStopping || segs.settings.kind == .flat { return }
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
            // 2. Build the index from the rows' stored vectors.
            let (ids, vectors) = try readRows(segs.number, name: segs.name, dimension: segs.dimension, after: rows.lowerBound - 1, through: rows.upperBound)
            let kind = segs.settings.sealKind(liveVectors: segs.liveVectors, dimension: segs.dimension)
            progress?(CompactionProgress(collection: segs.name, message: "sealing \(ids.count) vectors into \(kind == .ivfpq ? "an IVF-PQ" : "an HNSW") segment"))
            let index = try buildIndex(segs, kind: kind, vectors: vectors, ids: ids, progress: progress)
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
        // A damaged stored vector (the likely reason the seal failed) stays out, as at open.
        let (ids, vectors) = try readRows(segs.number, name: segs.name, dimension: segs.dimension, after: segs.sealedThrough, through: segs.maxRow,
                                          skipDamaged: true)
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

    /// A new segment index of `kind` holding `vectors` under `ids`. IVF-PQ uses the collection's
    /// codebook (`ivfpqCodebook`); while the collection is too small to train one, the segment is
    /// HNSW (compaction rebuilds it as IVF-PQ later).
    private func buildIndex(_ segs: CollectionSegments, kind: IndexKind, vectors: Matrix?, ids: [UInt64],
                            progress: ((CompactionProgress) -> Void)?) throws -> SegmentIndex {
        let s = segs.settings
        if kind == .ivfpq, let index = try ivfpqCodebook(segs, incoming: vectors, progress: progress) {
            if let v = vectors { try index.add(v, ids: ids.map { Int64($0) }) }
            return .ivfpq(index)
        }
        let index = try HNSWIndex(dimension: segs.dimension, metric: segs.metric,
                                  parameters: HNSWParameters(m: s.m, efConstruction: s.efConstruction, efSearch: s.efSearch))
        if let v = vectors {
            index.reserveCapacity(ids.count)
            try index.add(v, ids: ids.map { Int64($0) })
            index.linkUnreachableNodes()
        }
        return .hnsw(index)
    }

    // MARK: - IVF-PQ codebooks

    /// Fewest live vectors an IVF-PQ codebook is trained on (256 PQ centroids per subspace need a
    /// few points each).
    static let minimumTrainingVectors = 1_000
    /// The codebook is retrained when new vectors' mean coarse quantization error exceeds the error
    /// of the vectors it encodes by this factor (the data drifted).
    static let driftRatio = 1.25
    /// Vectors compared for drift, on each side.
    static let driftSample = 2_000

    /// An empty IVF-PQ index on the collection's codebook: the codebook of its newest IVF-PQ segment,
    /// unless the collection has grown so that the automatic nlist doubled, or `incoming` drifted
    /// from it (coarse error above `driftRatio` times that of the vectors the segment holds); then a
    /// codebook trained now on a sample of the collection's live vectors from LMDB. Nil while the
    /// collection holds too few vectors to train one.
    private func ivfpqCodebook(_ segs: CollectionSegments, incoming: Matrix?, progress: ((CompactionProgress) -> Void)?) throws -> IVFPQIndex? {
        let s = segs.settings
        let live = segs.liveVectors
        let newest: (SealedSegment, IVFPQIndex)? = segs.lock.read {
            var best: (SealedSegment, IVFPQIndex)?
            for seg in segs.sealed {
                if case .ivfpq(let index) = seg.index, best.map({ seg.record.id > $0.0.record.id }) ?? true { best = (seg, index) }
            }
            return best
        }
        if let (segment, current) = newest {
            var reason: String?
            if s.nlist == nil && IndexSettings.automaticListCount(live) >= 2 * current.nlist {
                reason = "the collection grew to \(live) vectors (nlist \(current.nlist) -> \(IndexSettings.automaticListCount(live)))"
            } else if let fresh = incoming.map({ Self.strided($0, max: Self.driftSample) }), fresh.rows > 0 {
                let own = try sampleVectors(segs, of: segment, max: Self.driftSample)
                let errorNew = current.coarseError(fresh), errorOwn = current.coarseError(own)
                if own.rows > 0 && errorNew > Self.driftRatio * errorOwn {
                    reason = "new vectors drifted from the codebook (coarse error \(errorNew) vs \(errorOwn))"
                }
            }
            if reason == nil { return try current.emptyCopy(nprobe: min(s.nprobe, current.nlist), rerank: s.rerank) }
            progress?(CompactionProgress(collection: segs.name, message: "retraining the IVF-PQ codebook: \(reason!)"))
        }
        guard live >= Self.minimumTrainingVectors else { return nil }
        let nlist = s.listCount(forVectors: live)
        let cap = min(live, max(16_384, min(131_072, 64 * nlist)))
        let sample = try sampleVectors(segs, cap: cap, live: live)
        guard sample.rows >= max(nlist, ProductQuantizer.centroidCount, Self.minimumTrainingVectors) else { return nil }
        progress?(CompactionProgress(collection: segs.name, message: "training an IVF-PQ codebook (nlist \(nlist), \(s.codeBytes(dimension: segs.dimension)) bytes per code) on \(sample.rows) vectors"))
        let index = try IVFPQIndex(dimension: segs.dimension, metric: segs.metric,
                                   parameters: IVFPQParameters(nlist: nlist, subspaces: s.codeBytes(dimension: segs.dimension),
                                                               nprobe: min(s.nprobe, nlist), rerank: s.rerank))
        try index.train(sample)
        return index
    }

    /// At most `max` rows of `m`, evenly strided.
    static func strided(_ m: Matrix, max: Int) -> Matrix {
        guard m.rows > max else { return m }
        var out: [Float] = []
        out.reserveCapacity(max * m.dimension)
        for i in 0..<max { out.append(contentsOf: m[row: i * m.rows / max]) }
        return Matrix(dimension: m.dimension, storage: out)
    }

    /// About `cap` of the collection's stored vectors (of its `live` ones), evenly strided by row id.
    private func sampleVectors(_ segs: CollectionSegments, cap: Int, live: Int) throws -> Matrix {
        let step = max(1, live / max(cap, 1))
        let d = segs.dimension
        return try env.read { txn in
            var storage: [Float] = []
            storage.reserveCapacity(min(cap, live) * d)
            var i = 0
            try txn.forEach(tables.vectors, prefix: Keys.collection(segs.number)) { k, v in
                defer { i += 1 }
                guard i % step == 0 else { return true }
                let start = storage.count
                storage.append(contentsOf: repeatElement(0, count: d))
                try storage.withUnsafeMutableBufferPointer { try VectorCodec.decode(v, key: k, collection: segs.name, dimension: d, into: $0.baseAddress! + start) }
                return storage.count < cap * d
            }
            return Matrix(dimension: d, storage: storage)
        }
    }

    /// Up to `max` live vectors of `segment`, from LMDB.
    private func sampleVectors(_ segs: CollectionSegments, of segment: SealedSegment, max: Int) throws -> Matrix {
        var ids: [UInt64] = []
        segs.lock.read { segment.index.forEachID { id, deleted in if !deleted { ids.append(UInt64(id)) } } }
        if ids.count > max { ids = (0..<max).map { ids[$0 * ids.count / max] } }
        let (_, vectors) = try readRows(segs.number, name: segs.name, dimension: segs.dimension, ids: ids.sorted())
        return vectors ?? Matrix(dimension: segs.dimension, storage: [])
    }

    /// Writes `index` as a new segment file, records it in the manifest in place of `replacing` (one
    /// LMDB transaction), and returns it mapped from its file; nil when the collection was dropped.
    private func publish(_ segs: CollectionSegments, index: SegmentIndex, minRow: UInt64, maxRow: UInt64,
                         replacing: [SealedSegment], sealedThrough: UInt64?) throws -> SealedSegment? {
        let c = segs.number
        let id: UInt64 = try env.read { txn in try Manifest.state(c, name: segs.name, txn: txn, tables: tables).nextSegment }
        let path = segs.directory + "/" + SegmentRecord.fileName(id, kind: index.recordKind)
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
        try index.encode { chunk in
            if pending.count + chunk.count > 1 << 20 { try flush() }
            if chunk.count >= 1 << 20 {
                try file.write(chunk, at: offset)
                offset += chunk.count
            } else {
                pending.append(contentsOf: chunk)
            }
        }
        try flush()
        try file.sync()
        file.close()
        try FileSystem.rename(tmp, path)
        try FileSystem.syncDirectory(segs.directory)
        // Mapped before the manifest names it: once the transaction below commits, nothing may fail,
        // or the in-memory segments would no longer match the manifest (and the next seal or merge
        // would record the same rows twice).
        let info = CollectionInfo(name: segs.name, dimension: segs.dimension, metric: segs.metric, encoder: nil,
                                  textCompressionThreshold: 0, createdAt: Date(), number: c, index: segs.settings)
        let mapped = try openSegment(path, kind: index.recordKind, info: info)
        let record = SegmentRecord(id: id, kind: index.recordKind, vectors: UInt64(index.count), minRow: minRow, maxRow: maxRow, fileBytes: UInt64(offset))
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
        if s.kind == .flat { return try compactFlat(segs, force: full, progress: progress) }
        var converted = Set<UInt64>()
        while !isStopping {
            let snapshot = segs.lock.read { segs.sealed }
            // An explicit compaction rebuilds segments of another kind than the collection now calls
            // for (HNSW segments sealed before an IVF-PQ collection could train its codebook); once each.
            let wanted = s.sealKind(liveVectors: segs.liveVectors, dimension: segs.dimension)
            if full, wanted != .ivfpq || segs.liveVectors >= Self.minimumTrainingVectors,
               let other = snapshot.first(where: { $0.index.kind != wanted && !converted.contains($0.record.id) }) {
                converted.insert(other.record.id)
                progress?(CompactionProgress(collection: segs.name, message: "rebuilding \(other.index.kind.rawValue) segment \(other.record.id) as \(wanted.rawValue)"))
                try replace([other], in: segs, base: nil, progress: progress)
                continue
            }
            if let heavy = snapshot.first(where: { $0.index.count > 0 && Double($0.index.deletedCount) / Double($0.index.count) > s.rewriteDeletedShare }) {
                progress?(CompactionProgress(collection: segs.name, message: "rewriting segment \(heavy.record.id) without its \(heavy.index.deletedCount) deleted vectors"))
                try replace([heavy], in: segs, base: nil, progress: progress)
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
            try replace([base] + smalls, in: segs, base: base, progress: progress)
        }
    }

    /// Replaces `old` by one new segment of the kind the collection now calls for: a copy of
    /// `base`'s index plus the live vectors of the others when `base` is of that kind (and, for
    /// IVF-PQ, on the current codebook), else a fresh index of the live vectors of all of them.
    private func replace(_ old: [SealedSegment], in segs: CollectionSegments, base: SealedSegment?,
                         progress: ((CompactionProgress) -> Void)?) throws {
        let kind = segs.settings.sealKind(liveVectors: segs.liveVectors, dimension: segs.dimension)
        var index: SegmentIndex?
        var others = old
        if let b = base {
            switch (kind, b.index) {
            case (.hnsw, .hnsw(let graph)):
                index = .hnsw(try HNSWCodec.decode(segs.lock.read { HNSWCodec.encode(graph) }))
            case (.ivfpq, .ivfpq(let lists)):
                // Only when new vectors go to the same codebook (no retraining due).
                if let codebook = try ivfpqCodebook(segs, incoming: nil, progress: progress), codebook.sharesCodebook(with: lists) {
                    let copy = try IVFPQCodec.decode(segs.lock.read { try IVFPQCodec.encode(lists) })
                    copy.nprobe = codebook.nprobe
                    copy.rerank = codebook.rerank
                    index = .ivfpq(copy)
                }
            default:
                break
            }
            if index != nil { others.removeAll { $0 === b } }
        }
        var addIDs: [UInt64] = []
        segs.lock.read {
            for seg in others { seg.index.forEachID { id, deleted in if !deleted { addIDs.append(UInt64(id)) } } }
        }
        let (ids, vectors) = try readRows(segs.number, name: segs.name, dimension: segs.dimension, ids: addIDs.sorted())
        let merged: SegmentIndex
        switch index {
        case .hnsw(let graph)?:
            if let v = vectors {
                graph.reserveCapacity(graph.count + ids.count)
                try graph.add(v, ids: ids.map { Int64($0) })
                graph.linkUnreachableNodes()
            }
            merged = .hnsw(graph)
        case .ivfpq(let lists)?:
            if let v = vectors { try lists.add(v, ids: ids.map { Int64($0) }) }
            merged = .ivfpq(lists)
        case .exact?, nil:
            merged = try buildIndex(segs, kind: kind, vectors: vectors, ids: ids, progress: progress)
        }
        guard let segment = try publish(segs, index: merged, minRow: old.map(\.record.minRow).min()!, maxRow: old.map(\.record.maxRow).max()!,
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

    /// Under the `flat` kind: rebuilds the mutable segment without its deleted rows once they pass
    /// `rewriteDeletedShare` (the flat index only tombstones them).
    private func compactFlat(_ segs: CollectionSegments, force: Bool, progress: ((CompactionProgress) -> Void)?) throws {
        let (count, live) = segs.lock.read { (segs.mutable.count, segs.mutable.liveCount) }
        guard count > live, force || Double(count - live) / Double(count) > segs.settings.rewriteDeletedShare else { return }
        progress?(CompactionProgress(collection: segs.name, message: "rewriting the flat segment without its \(count - live) deleted vectors"))
        try segs.lock.write {
            let f = segs.mutable
            try mergeFlat(f, into: segs)
        }
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
