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

/// Schedules the segment layer's work: loads every collection's segments at open, applies
/// committed writes, and on a background queue seals full mutable segments, compacts sealed ones
/// and rebuilds damaged ones. Each step asks `SegmentPolicy` what to do, does its I/O through
/// `SegmentStore`, and changes the in-memory state only through `CollectionSegments`' methods.
///
///     Database ──applied / compact / heal──▶ SegmentManager ──(what?)──▶ SegmentPolicy
///                                                │  └──(read rows, write file, manifest)──▶ SegmentStore
///                                                └──(freeze, installSeal, replace, ...)──▶ CollectionSegments
///     Search ──search / filteredStrategies──▶ CollectionSegments ──VectorIndex.search──▶ each segment's index
final class SegmentManager: @unchecked Sendable {
    // @unchecked: `collections`, `stopping`, `lastMaintenanceError` and `orphansRemoved` are guarded
    // by `lock`; each CollectionSegments guards itself.
    let store: SegmentStore
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
    var readOnly: Bool { store.readOnly }

    init(root: String, env: LMDBEnvironment, tables: Tables, timings: TimingsRecorder, readOnly: Bool = false) {
        store = SegmentStore(root: root, env: env, tables: tables, readOnly: readOnly)
        self.timings = timings
    }

    func directory(_ number: UInt32) -> String { store.directory(number) }

    func segments(_ number: UInt32) -> CollectionSegments? {
        lock.lock(); defer { lock.unlock() }
        return collections[number]
    }

    private var allCollections: [CollectionSegments] {
        lock.lock(); defer { lock.unlock() }
        return collections.values.sorted { $0.number < $1.number }
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
        if !readOnly {
            let removed = keepUnknownDirectories ? 0 : try store.removeOrphanDirectories(known: Set(infos.map { String($0.number) }))
            if keepUnknownDirectories { try FileSystem.createDirectory(store.root) }
            noteOrphans(removed)
        }
        var loaded: [UInt32: CollectionSegments] = [:]
        for info in infos { loaded[info.number] = try loadCollection(info, standInMissing: readOnly ? standInMissing : true) }
        lock.lock()
        collections = loaded
        lock.unlock()
    }

    private func noteOrphans(_ n: Int) {
        lock.lock(); orphansRemoved += n; lock.unlock()
    }

    /// Every sealed segment whose file could not be used and is searched exactly until rebuilt:
    /// one sentence each.
    func damagedSegments() -> [String] {
        allCollections.flatMap { segs in segs.sealedSnapshot.compactMap { s in s.damage.map { "collection '\(segs.name)': \($0)" } } }
    }

    private func loadCollection(_ info: CollectionInfo, standInMissing: Bool) throws -> CollectionSegments {
        let c = info.number
        let (records, state) = try store.manifest(c, name: info.name)
        if !readOnly { noteOrphans(try store.removeOrphanFiles(c, named: Set(records.map(\.fileName)))) }
        let segs = try CollectionSegments(info: info, directory: store.directory(c), sealedThrough: state.sealedThrough)
        var usable: [SealedSegment] = []
        var unusable: [(SegmentRecord, String)] = []
        for record in records {
            let path = segs.directory + "/" + record.fileName
            do {
                usable.append(SealedSegment(record: record, index: try store.openSegment(path, kind: record.kind, for: segs), path: path))
            } catch let e as StorageError where e.kind == .io && e.code == ENOENT && readOnly && !standInMissing {
                throw e
            } catch {
                unusable.append((record, Self.describe(error)))
            }
        }
        try store.env.read { txn in
            // Live rows are exactly those in `rows`: rows deleted since their segment was sealed are
            // tombstoned in it.
            let live = try store.liveRows(c, through: state.sealedThrough, txn: txn)
            segs.install(loaded: usable, live: live)
            // Stand-ins for the unusable files: the live sealed rows of each one's row range that no
            // usable segment holds (merged segments' ranges can overlap others'). `usable` is read
            // without the lock: nothing else sees these segments before the load returns.
            var claimed = Set<UInt64>()
            segs.install(standIns: try unusable.map { record, reason in
                let rows = live.filter { row in row >= record.minRow && row <= record.maxRow && !claimed.contains(row)
                    && !usable.contains(where: { $0.holds(row) }) }.sorted()
                claimed.formUnion(rows)
                return try store.standIn(segs, record: record, reason: reason, rows: rows, txn: txn)
            })
        }
        // The mutable segment: every row past the sealed mark, from LMDB.
        let (rows, vectors) = try store.readRows(segs, .range(after: state.sealedThrough, through: .max), skipDamaged: true)
        try segs.apply(added: rows, vectors: vectors, removed: [])
        return segs
    }

    /// A one-line reason for an error (a storage error's message without its kind).
    static func describe(_ error: Error) -> String {
        if let e = error as? StorageError { return e.message }
        return "\(error)"
    }

    // MARK: - Writes

    /// Called under the database's writer lock after a transaction committed.
    func applied(_ change: AppliedChange) throws {
        switch change {
        case .created(let info):
            try FileSystem.createDirectory(store.directory(info.number))
            let segs = try CollectionSegments(info: info, directory: store.directory(info.number), sealedThrough: 0)
            lock.lock(); collections[info.number] = segs; lock.unlock()
        case .dropped(let number):
            lock.lock(); collections[number] = nil; lock.unlock()
            try FileSystem.removeTree(store.directory(number))
        case .rows(let number, let added, let vectors, let removed):
            guard let segs = segments(number) else { return }
            try segs.apply(added: added, vectors: vectors, removed: removed)
            scheduleSealIfFull(segs)
        }
    }

    private func scheduleSealIfFull(_ segs: CollectionSegments) {
        guard segs.claimSeal() else { return }
        queue.async { [self] in
            let started = monotonicSeconds()
            defer { let spent = monotonicSeconds() - started; timings.add { $0.indexingSeconds += spent } }
            do {
                // Writes that filled the mutable segment again while this seal ran scheduled nothing
                // (a seal was pending), so keep sealing while it is full.
                repeat {
                    try seal(segs, progress: nil)
                } while !isStopping && segs.mutableIsFull
                segs.sealFinished()
                scheduleSealIfFull(segs)
                try compact(segs, full: false, progress: nil)
            } catch {
                segs.sealFinished()
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
        while !isStopping, let stand = segs.sealedSnapshot.first(where: { $0.damage != nil }) {
            progress?(CompactionProgress(collection: segs.name, message: "rebuilding damaged segment \(stand.record.id) (rows \(stand.record.minRow)...\(stand.record.maxRow)) from LMDB"))
            try replace([stand], in: segs, base: nil, progress: progress)
            healed += 1
        }
        return healed
    }

    /// Every collection with a stand-in.
    func collectionsNeedingHeal() -> [CollectionSegments] {
        allCollections.filter { segs in segs.sealedSnapshot.contains { $0.damage != nil } }
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

    /// Seals the mutable segment of `segs` into a segment file of the kind the policy calls for
    /// (none under `flat`). Runs on the maintenance queue (or a caller that holds it, like `compactNow`).
    func seal(_ segs: CollectionSegments, progress: ((CompactionProgress) -> Void)?) throws {
        let policy = SegmentPolicy(segs)
        if isStopping || !policy.seals { return }
        // 1. Freeze: new writes go to a fresh mutable segment; the frozen one stays searchable.
        guard let rows = try segs.freeze() else { return }
        do {
            // 2. Build the index from the rows' stored vectors.
            let (ids, vectors) = try store.readRows(segs, .range(after: rows.lowerBound - 1, through: rows.upperBound))
            let kind = policy.sealKind(liveVectors: segs.liveVectors)
            progress?(CompactionProgress(collection: segs.name, message: "sealing \(ids.count) vectors into \(kind == .ivfpq ? "an IVF-PQ" : "an HNSW") segment"))
            let index = try buildIndex(segs, kind: kind, vectors: vectors, ids: ids, progress: progress)
            // 3. Write the file and record it, then 4. swap it in.
            guard let segment = try store.publish(segs, index: index, minRow: rows.lowerBound, maxRow: rows.upperBound,
                                                  replacing: [], sealedThrough: rows.upperBound) else { return }
            segs.installSeal(segment, through: rows.upperBound)
        } catch {
            // Put the frozen rows back so that nothing becomes unsearchable; the next seal retries.
            try? segs.thaw(reread: store.readRows(segs, .range(after: rows.lowerBound - 1, through: rows.upperBound), skipDamaged: true))
            throw error
        }
    }

    /// A new segment index of `kind` holding `vectors` under `ids` (HNSW quantized to sq8 when the
    /// collection's settings say so). IVF-PQ uses the collection's
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
        // sq8: the graph built on the float32 vectors, quantized with ranges trained on them.
        return s.quantization == .sq8 ? .sq8(SQ8HNSWIndex(quantizing: index)) : .hnsw(index)
    }

    /// An empty IVF-PQ index on the collection's codebook: the codebook of its newest IVF-PQ segment
    /// unless the policy calls for retraining it (`SegmentPolicy.retrainReason`), else one trained
    /// now on a sample of the collection's live vectors from LMDB. Nil while the collection holds
    /// too few vectors to train one.
    private func ivfpqCodebook(_ segs: CollectionSegments, incoming: Matrix?, progress: ((CompactionProgress) -> Void)?) throws -> IVFPQIndex? {
        let policy = SegmentPolicy(segs)
        let live = segs.liveVectors
        var newest: (segment: SealedSegment, index: IVFPQIndex)?
        for seg in segs.sealedSnapshot {
            if case .ivfpq(let index) = seg.index, newest.map({ seg.record.id > $0.segment.record.id }) ?? true { newest = (seg, index) }
        }
        if let (segment, current) = newest {
            let reason = try policy.retrainReason(current: current, liveVectors: live) { () -> (incoming: Double, own: Double)? in
                guard let fresh = incoming.map({ SegmentPolicy.strided($0, max: SegmentPolicy.driftSample) }), fresh.rows > 0 else { return nil }
                // Up to driftSample live vectors of the segment, evenly spread, from LMDB.
                var ids = segs.liveRows(of: [segment])
                if ids.count > SegmentPolicy.driftSample { ids = (0..<SegmentPolicy.driftSample).map { ids[$0 * ids.count / SegmentPolicy.driftSample] } }
                guard let own = try store.readRows(segs, .rows(ids.sorted())).vectors else { return nil }
                return (current.coarseError(fresh), current.coarseError(own))
            }
            guard let reason else { return try current.emptyCopy(nprobe: min(segs.settings.nprobe, current.nlist), rerank: segs.settings.rerank) }
            progress?(CompactionProgress(collection: segs.name, message: "retraining the IVF-PQ codebook: \(reason)"))
        }
        guard let plan = policy.training(liveVectors: live) else { return nil }
        let sample = try store.readRows(segs, .sample(step: max(1, live / max(plan.sample, 1)), cap: plan.sample)).vectors
            ?? Matrix(dimension: segs.dimension, storage: [])
        guard SegmentPolicy.sampleSuffices(sample.rows, nlist: plan.nlist) else { return nil }
        let parameters = policy.ivfpqParameters(nlist: plan.nlist)
        progress?(CompactionProgress(collection: segs.name, message: "training an IVF-PQ codebook (nlist \(plan.nlist), \(parameters.subspaces) bytes per code) on \(sample.rows) vectors"))
        let index = try IVFPQIndex(dimension: segs.dimension, metric: segs.metric, parameters: parameters)
        try index.train(sample)
        return index
    }

    // MARK: - Compaction

    /// One compaction pass over `segs`: carries out the policy's steps (`SegmentPolicy.nextCompaction`)
    /// until it has none; `full` is an explicit compaction, which merges everything it can.
    func compact(_ segs: CollectionSegments, full: Bool = true, progress: ((CompactionProgress) -> Void)?) throws {
        let policy = SegmentPolicy(segs)
        guard policy.seals else { return try compactFlat(segs, force: full, progress: progress) }
        var rebuilt = Set<UInt64>()
        while !isStopping,
              let step = policy.nextCompaction(segs.sealedSnapshot, liveVectors: segs.liveVectors, full: full, rebuilt: rebuilt) {
            progress?(CompactionProgress(collection: segs.name, message: step.message))
            switch step {
            case .rebuild(let s, _):
                rebuilt.insert(s.record.id)
                try replace([s], in: segs, base: nil, progress: progress)
            case .rewrite(let s):
                try replace([s], in: segs, base: nil, progress: progress)
            case .merge(let base, let others):
                try replace([base] + others, in: segs, base: base, progress: progress)
            }
        }
    }

    /// Replaces `old` by one new segment of the kind the collection now calls for: a copy of
    /// `base`'s index (`VectorIndex.copy`: in memory, no encoding) plus the live vectors of the
    /// others when `base` is of that kind (and, for IVF-PQ, on the current codebook), else a fresh
    /// index of the live vectors of all of them.
    private func replace(_ old: [SealedSegment], in segs: CollectionSegments, base: SealedSegment?,
                         progress: ((CompactionProgress) -> Void)?) throws {
        let kind = SegmentPolicy(segs).sealKind(liveVectors: segs.liveVectors)
        var copied: SegmentIndex?
        if let b = base, b.index.kind == kind, b.index.recordKind == SegmentRecord.ivfpq || b.index.isSQ8 == (segs.settings.quantization == .sq8) {
            switch b.index {
            case .ivfpq(let lists):
                // Only when new vectors go to the same codebook (no retraining due).
                if let codebook = try ivfpqCodebook(segs, incoming: nil, progress: progress), codebook.sharesCodebook(with: lists) {
                    copied = segs.lock.read { b.index.copy() }
                }
            default:
                copied = segs.lock.read { b.index.copy() }
            }
        }
        let others = copied == nil ? old : old.filter { $0 !== base }
        let (ids, vectors) = try store.readRows(segs, .rows(segs.liveRows(of: others).sorted()))
        let merged: SegmentIndex
        if let copied {
            if let v = vectors {
                if case .hnsw(let graph) = copied { graph.reserveCapacity(graph.count + ids.count) }
                // sq8: the add goes through the float32 graph, links unreachable nodes there and
                // retrains the ranges over every live vector of the merged segment.
                try copied.any.add(v, ids: ids.map { Int64($0) })
                if case .hnsw(let graph) = copied { graph.linkUnreachableNodes() }
            }
            merged = copied
        } else {
            merged = try buildIndex(segs, kind: kind, vectors: vectors, ids: ids, progress: progress)
        }
        guard let segment = try store.publish(segs, index: merged, minRow: old.map(\.record.minRow).min()!, maxRow: old.map(\.record.maxRow).max()!,
                                              replacing: old, sealedThrough: nil) else { return }
        segs.replace(old, with: segment)
        try store.removeFiles(of: old, directory: segs.directory)
    }

    /// Under the `flat` kind: rewrites the mutable segment without its deleted rows once the
    /// policy calls for it (the flat index only tombstones them). In memory: no LMDB scan.
    private func compactFlat(_ segs: CollectionSegments, force: Bool, progress: ((CompactionProgress) -> Void)?) throws {
        let (count, live) = segs.mutableCounts
        guard SegmentPolicy(segs).flatRewriteDue(count: count, live: live, force: force) else { return }
        progress?(CompactionProgress(collection: segs.name, message: "rewriting the flat segment without its \(count - live) deleted vectors"))
        try segs.rewriteMutable()
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
