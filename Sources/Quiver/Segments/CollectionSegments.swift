import QuiverCore
import QuiverIndex
import QuiverStorage
import Synchronization

/// A sealed segment in memory: its manifest record and its index (an HNSW graph mapped from its
/// file, an IVF-PQ index read from it, or an exact stand-in while its file cannot be used).
final class SealedSegment: @unchecked Sendable {
    // @unchecked: `index` follows VectorIndex's rules (searches concurrent, markDeleted exclusive),
    // which the owning CollectionSegments' lock enforces.
    let record: SegmentRecord
    let index: SegmentIndex
    let path: String
    /// Why the file could not be used, for an exact stand-in (`SegmentIndex.exact`); nil otherwise.
    let damage: String?

    init(record: SegmentRecord, index: SegmentIndex, path: String, damage: String? = nil) {
        self.record = record
        self.index = index
        self.path = path
        self.damage = damage
    }

    func holds(_ row: UInt64) -> Bool { row >= record.minRow && row <= record.maxRow && index.contains(Int64(row)) }

    /// Tombstones every live id of this segment that `keep` rejects: "what the other set lacks",
    /// when a segment built from a snapshot of rows takes the place of the rows' current holders.
    /// Exclusive (under the owner's write lock, or before the segment is installed).
    func tombstone(unless keep: (Int64) -> Bool) {
        var dead: [Int64] = []
        index.forEachID { id, deleted in if !deleted && !keep(id) { dead.append(id) } }
        for id in dead { index.markDeleted(id) }
    }
}

/// The in-memory index state of one collection: the mutable segment (a `MutableSegment`: the rows
/// written since the last seal, exactly, with an HNSW graph over them once they are many; every row
/// under the `flat` index kind), the segment being
/// sealed (frozen, still searched), and the sealed segments (HNSW or IVF-PQ, or exact stand-ins
/// for damaged files).
///
/// Invariant: every live row of the collection is in exactly one of `mutable`, `frozen` and
/// `sealed`, and not tombstoned there; a deleted row is in none of them or tombstoned where it is;
/// `sealed` is ordered by least row id; every row id <= `sealedThrough` is sealed (or deleted).
/// Only this type's methods change that state (the segment manager decides when, the segment
/// store does the I/O): `apply` (committed writes), `freeze` / `installSeal` / `thaw` (a seal),
/// `replace` (a merge, a rewrite or a rebuild), `install` (the load), `rewriteMutable` (flat).
///
/// Thread-safety: `lock` is held for reading by searches and for writing by every change (rows
/// added or removed, a seal or a merge swapping segments in), as `VectorIndex` requires. No
/// method holds it across I/O.
final class CollectionSegments: @unchecked Sendable {
    let number: UInt32
    let name: String
    let dimension: Int
    /// How many `vectors` values hold each stored vector (`VectorTable`).
    let vectorPieces: Int
    let metric: Metric
    let settings: IndexSettings
    let directory: String
    let lock = ReadWriteLock()

    private(set) var mutable: MutableSegment
    private(set) var frozen: MutableSegment?
    private(set) var sealed: [SealedSegment] = []
    /// Every row id <= this is in a sealed segment (or deleted); the mutable segment holds rows above it.
    private(set) var sealedThrough: UInt64
    /// The greatest row id ever added here.
    private(set) var maxRow: UInt64
    /// Set while a seal of this collection is queued or running.
    private var sealPending = false
    /// Counts the committed changes to the collection's rows (for caches keyed by the state).
    private let generationCounter = Atomic<UInt64>(0)
    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    init(info: CollectionInfo, directory: String, sealedThrough: UInt64) throws {
        number = info.number
        name = info.name
        dimension = info.dimension
        vectorPieces = info.pieces
        metric = info.metric
        settings = info.indexSettings
        self.directory = directory
        mutable = try MutableSegment(dimension: info.dimension, metric: info.metric, settings: info.indexSettings)
        self.sealedThrough = sealedThrough
        maxRow = sealedThrough
    }

    // MARK: - Reading the state

    /// Live vectors over every segment.
    var liveVectors: Int {
        lock.read { mutable.liveCount + (frozen?.liveCount ?? 0) + sealed.reduce(0) { $0 + $1.index.liveCount } }
    }

    /// The sealed segments now (a snapshot: a merge planned on it replaces segments only if they
    /// are still there, see `replace`).
    var sealedSnapshot: [SealedSegment] { lock.read { sealed } }

    /// The stored and live vectors of the mutable segment.
    var mutableCounts: (count: Int, live: Int) { lock.read { (mutable.count, mutable.liveCount) } }

    /// The live row ids of `segments`, segment by segment in each one's `forEachID` order.
    func liveRows(of segments: [SealedSegment]) -> [UInt64] {
        lock.read { segments.flatMap { $0.index.any.liveIDs.map { UInt64($0) } } }
    }

    // MARK: - Committed writes

    /// Applies rows written and removed by one committed transaction.
    func apply(added rows: [UInt64], vectors: Matrix?, removed: [UInt64]) throws {
        generationCounter.add(1, ordering: .releasing)
        try lock.write {
            for row in removed { remove(row) }
            if let v = vectors, !rows.isEmpty {
                try mutable.add(v, ids: rows.map { Int64($0) })
                maxRow = max(maxRow, rows.max()!)
            }
        }
    }

    /// With the lock held for writing: tombstones `row` wherever it lives.
    private func remove(_ row: UInt64) {
        let id = Int64(row)
        if mutable.markDeleted(id) { return }
        if let f = frozen, f.markDeleted(id) { return }
        for s in sealed where s.holds(row) {
            s.index.markDeleted(id)
            return
        }
    }

    // MARK: - Load

    /// At load, before any search: installs the sealed segments read from their files; with
    /// `live`, the live rows up to the sealed mark, rows deleted since a segment was sealed are
    /// tombstoned in it.
    func install(loaded: [SealedSegment], live: Set<UInt64>) {
        lock.write {
            for s in loaded { s.tombstone { live.contains(UInt64($0)) } }
            sealed = loaded
        }
    }

    /// At load, after `install`: adds the exact stand-ins of the segment files that could not be used.
    func install(standIns: [SealedSegment]) {
        guard !standIns.isEmpty else { return }
        lock.write {
            sealed += standIns
            sealed.sort { $0.record.minRow < $1.record.minRow }
        }
    }

    // MARK: - Sealing

    /// Marks a seal as queued when the mutable segment is full and no seal is pending or running;
    /// returns whether the caller must schedule one (then `sealFinished` must follow it).
    func claimSeal() -> Bool {
        lock.write {
            guard settings.kind != .flat, !sealPending, frozen == nil, mutable.count >= settings.segmentSize else { return false }
            sealPending = true
            return true
        }
    }

    func sealFinished() { lock.write { sealPending = false } }

    /// Whether the mutable segment holds a full segment's rows.
    var mutableIsFull: Bool { lock.read { mutable.count >= settings.segmentSize } }

    /// Step 1 of a seal: the mutable segment becomes the frozen one (still searched) and new
    /// writes go to a fresh one. Returns the frozen rows' range, or nil when there is nothing to
    /// seal or a seal is already under way.
    func freeze() throws -> ClosedRange<UInt64>? {
        try lock.write {
            guard frozen == nil, mutable.count > 0 else { return nil }
            let range = sealedThrough + 1 ... maxRow
            frozen = mutable
            mutable = try MutableSegment(dimension: dimension, metric: metric, settings: settings)
            return range
        }
    }

    /// The last step of a seal: `segment`, built from a snapshot of the frozen rows, takes their
    /// place; rows deleted since the snapshot (tombstoned in the frozen segment) are tombstoned in it.
    func installSeal(_ segment: SealedSegment, through: UInt64) {
        lock.write {
            let f = frozen
            segment.tombstone { f?.contains($0) ?? false }
            sealed.append(segment)
            frozen = nil
            sealedThrough = through
        }
    }

    /// After a failed seal: the frozen rows go back into the mutable segment, so that nothing
    /// becomes unsearchable (the next seal retries). `reread` holds the frozen rows read again from
    /// LMDB (without the lock; a damaged stored vector, the likely reason the seal failed, is left
    /// out, as at load); rows written since the freeze stay as the mutable segment holds them.
    func thaw(reread: (rows: [UInt64], vectors: Matrix?)) throws {
        try lock.write {
            guard let f = frozen else { return }
            let fresh = try MutableSegment(dimension: dimension, metric: metric, settings: settings)
            var keepIDs: [Int64] = []
            var keep: [Float] = []
            if let v = reread.vectors {
                for (i, row) in reread.rows.enumerated() where f.contains(Int64(row)) {
                    keepIDs.append(Int64(row))
                    keep.append(contentsOf: v[row: i])
                }
            }
            if !keepIDs.isEmpty { try fresh.add(Matrix(dimension: dimension, storage: keep), ids: keepIDs) }
            try fresh.addLive(of: mutable)
            mutable = fresh
            frozen = nil
        }
    }

    // MARK: - Compaction

    /// Swaps `segment` in for `old` (a merge, a rewrite or a rebuild of a stand-in), after the
    /// manifest recorded it. Rows deleted since it was built from them (tombstoned in `old`) are
    /// tombstoned in it.
    func replace(_ old: [SealedSegment], with segment: SealedSegment) {
        lock.write {
            segment.tombstone { id in old.contains { $0.index.contains(id) } }
            sealed.removeAll { s in old.contains { $0 === s } }
            sealed.append(segment)
            sealed.sort { $0.record.minRow < $1.record.minRow }
        }
    }

    /// Under the `flat` kind: the mutable segment without its deleted rows, copied in memory (no
    /// LMDB read, so searches wait only for the copy).
    func rewriteMutable() throws {
        try lock.write { mutable = try mutable.withoutDeleted() }
    }

    // MARK: - Search

    /// The `k` nearest live rows to `query` over every segment, closest first. Every segment,
    /// whatever its kind, is searched the same way with the same parameters (each kind reads its
    /// own fields: HNSW `efSearch`, IVF-PQ `nprobe` / `allowedShare` / `rerank`, flat none); the
    /// list size and the re-ranking depth are raised to k. Without a filter, a segment much smaller
    /// than the largest one walks a shorter list (`segmentEf`), and again with the full list when it
    /// turns out to supply a quarter or more of the k results.
    func search(_ query: [Float], k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        var p = parameters
        p.efSearch = parameters.efSearch.map { max($0, k) }
        p.rerank = parameters.rerank.map { max($0, k) }
        return try lock.read {
            try query.withUnsafeBufferPointer { q in
                var indexes: [any VectorIndex] = [mutable]
                if let f = frozen { indexes.append(f) }
                for s in sealed { indexes.append(s.index.any) }
                let largest = indexes.reduce(0) { max($0, $1.liveCount) }
                var lists: [[Neighbor]] = [], shortened: [Int] = []
                for (i, index) in indexes.enumerated() {
                    var own = p
                    if p.allow == nil, let ef = p.efSearch {
                        own.efSearch = Self.segmentEf(ef, k: k, rows: index.liveCount, largest: largest)
                        if own.efSearch! < ef { shortened.append(i) }
                    }
                    lists.append(try index.search(q, k: k, parameters: own))
                }
                let top = Self.merge(lists, k: k)
                // The shorter list assumes the segment holds few of the answers. One that supplies a
                // quarter or more of them (rows written together on one topic, searched at once) is
                // walked again with the full list.
                let crowded = shortened.filter { i in
                    let own = Set(lists[i].map(\.id))
                    return top.count { own.contains($0.id) } * 4 >= k
                }
                guard !crowded.isEmpty else { return top }
                for i in crowded { lists[i] = try indexes[i].search(q, k: k, parameters: p) }
                return Self.merge(lists, k: k)
            }
        }
    }

    /// The `k` closest of the segments' lists (a row lives in one segment, so no id repeats).
    private static func merge(_ lists: [[Neighbor]], k: Int) -> [Neighbor] {
        var top = TopK(k: k)
        for list in lists { for n in list { top.push(id: n.id, distance: n.distance) } }
        return top.sorted()
    }

    /// The list size for an unfiltered walk of a segment of `rows` live rows beside a largest
    /// segment of `largest` rows, given the collection's list `ef` (>= k): `ef * sqrt(rows /
    /// largest)`, at least `k`, at most `ef`.
    ///
    /// Why: a walk's cost grows with its list, hardly with the graph's size (on WordNet a full
    /// mutable segment of 8,191 rows cost half of a 108k-row walk at the same list), while the
    /// share of the true neighbours a segment holds, and so what its misses cost the collection's
    /// recall, shrinks with its size (5.5% of WordNet's top 10 lie in those 8,191 rows).
    /// The oracle's wide search stays exact: `ef >= largest + rows` gives `ef * sqrt(rows /
    /// largest) >= sqrt(rows * largest) >= rows`, and a mutable segment asked for a list as long as
    /// its rows scans them.
    static func segmentEf(_ ef: Int, k: Int, rows: Int, largest: Int) -> Int {
        guard rows < largest, largest > 0 else { return ef }
        let share = (Double(rows) / Double(largest)).squareRoot()
        return min(ef, max(k, Int((Double(ef) * share).rounded(.up))))
    }

    /// The exact `k` nearest live rows to `query` among those whose vectors the segments hold in
    /// memory or mapped (the mutable and frozen rows, HNSW segments' stored vectors, sq8 segments' cold
    /// float32 section, exact stand-ins), each
    /// scored by a scan of its float32 vectors; restricted to `allowed` when given. IVF-PQ segments
    /// keep only codes: their live (allowed) rows are returned in `cold`, for the caller to score
    /// with vectors read from LMDB, after this returns (no lock is held across I/O).
    func exactScan(_ query: [Float], k: Int, allowed: Bitset?) throws -> (top: TopK, cold: [Int64]) {
        let q = metric.normalizes ? query.normalized() : query
        return try lock.read {
            var top = TopK(k: k)
            var cold: [Int64] = []
            let parameters = SearchParameters(allow: allowed.map { AllowFilter.bitset($0) })
            var flats: [FlatIndex] = [mutable.rows]
            if let f = frozen { flats.append(f.rows) }
            // A graph segment's float32 vectors (HNSW's in its elements, sq8's cold section).
            func scanStored(_ forEach: ((Int64, Bool, UnsafeBufferPointer<Float>) -> Void) -> Void) {
                q.withUnsafeBufferPointer { qp in
                    forEach { id, deleted, v in
                        guard !deleted, allowed?.contains(Int(id)) ?? true else { return }
                        top.push(id: id, distance: metric.distance(qp.baseAddress!, v.baseAddress!, dimension: dimension))
                    }
                }
            }
            for s in sealed {
                switch s.index {
                case .exact(let f): flats.append(f)
                case .ivfpq(let index):
                    index.forEachID { id, deleted in if !deleted && allowed?.contains(Int(id)) ?? true { cold.append(id) } }
                case .hnsw(let index): scanStored { index.forEachStoredVector(every: 1, $0) }
                case .sq8(let index): scanStored { index.forEachStoredVector(every: 1, $0) }
                }
            }
            // The exact indexes normalize the query themselves: given the raw one, every path
            // normalizes it once, so that a row scores the same bits wherever it lives.
            try query.withUnsafeBufferPointer { qp in
                for f in flats {
                    for n in try f.search(qp, k: k, parameters: parameters) { top.push(id: n.id, distance: n.distance) }
                }
            }
            return (top, cold)
        }
    }

    /// The strategy each sealed HNSW segment picks for a filter allowing the rows of `allowed` (`explain`).
    func filteredStrategies(allowed: Bitset, k: Int, efSearch: Int) -> [FilteredSearch] {
        lock.read {
            sealed.compactMap { s -> FilteredSearch? in
                switch s.index {
                case .hnsw(let index): return index.filteredSearch(allowed: index.allowedCount(allowed), ef: max(efSearch, k))
                case .sq8(let index): return index.filteredSearch(allowed: index.allowedCount(allowed), ef: max(efSearch, k))
                default: return nil
                }
            }
        }
    }

    /// The list counts of the IVF-PQ sealed segments.
    func ivfListCounts() -> [Int] {
        lock.read {
            sealed.compactMap { s -> Int? in
                if case .ivfpq(let index) = s.index { return index.nlist }
                return nil
            }
        }
    }

    /// Figures for `stats`, per index kind in use (`flat` is the mutable segment and the one being sealed).
    func figures() -> [IndexKindStats] {
        lock.read {
            var byKind: [IndexKind: IndexKindStats] = [:]
            let flatVectors = mutable.count + (frozen?.count ?? 0)
            if flatVectors > 0 || sealed.isEmpty {
                byKind[.flat] = IndexKindStats(kind: .flat, segments: frozen == nil ? 1 : 2, vectors: flatVectors,
                                               deletedVectors: flatVectors - mutable.liveCount - (frozen?.liveCount ?? 0),
                                               memoryBytes: mutable.memoryBytes + (frozen?.memoryBytes ?? 0))
            }
            for s in sealed {
                let index = s.index.any
                var k = byKind[s.index.kind] ?? IndexKindStats(kind: s.index.kind, segments: 0, vectors: 0, deletedVectors: 0, memoryBytes: 0)
                k.segments += 1
                k.vectors += index.count
                k.deletedVectors += index.deletedCount
                k.memoryBytes += index.memoryBytes
                if s.index.isSQ8 { k.sq8Segments += 1 }
                byKind[s.index.kind] = k
            }
            return IndexKind.allCases.compactMap { byKind[$0]?.withRatio }
        }
    }
}
