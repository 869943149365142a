import QuiverCore
import QuiverIndex
import QuiverStorage
import Synchronization

/// A sealed segment in memory: its manifest record and its index (an HNSW graph mapped from its
/// file, or an IVF-PQ index read from it).
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
}

/// The in-memory index state of one collection: the mutable segment (an exact `FlatIndex` of the
/// rows written since the last seal; every row under the `flat` index kind), the segment being
/// sealed (frozen, still searched), and the sealed segments (HNSW or IVF-PQ).
///
/// Invariant: every live row of the collection is in exactly one of `mutable`, `frozen` and
/// `sealed`, and not tombstoned there; a deleted row is in none of them or tombstoned where it is.
///
/// Thread-safety: `lock` is held for reading by searches and for writing by every change (rows
/// added or removed, a seal or a merge swapping segments in), as `VectorIndex` requires.
final class CollectionSegments: @unchecked Sendable {
    let number: UInt32
    let name: String
    let dimension: Int
    let metric: Metric
    let settings: IndexSettings
    let directory: String
    let lock = ReadWriteLock()

    var mutable: FlatIndex
    var frozen: FlatIndex?
    var sealed: [SealedSegment] = []
    /// Every row id <= this is in a sealed segment (or deleted); the mutable segment holds rows above it.
    var sealedThrough: UInt64
    /// The greatest row id ever added here.
    var maxRow: UInt64
    /// Set while a seal of this collection is queued or running.
    var sealPending = false
    /// Counts the committed changes to the collection's rows (for caches keyed by the state).
    private let generationCounter = Atomic<UInt64>(0)
    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    init(info: CollectionInfo, directory: String, sealedThrough: UInt64) throws {
        number = info.number
        name = info.name
        dimension = info.dimension
        metric = info.metric
        settings = info.indexSettings
        self.directory = directory
        mutable = try FlatIndex(dimension: info.dimension, metric: info.metric)
        self.sealedThrough = sealedThrough
        maxRow = sealedThrough
    }

    /// Live vectors over every segment.
    var liveVectors: Int {
        lock.read { mutable.liveCount + (frozen?.liveCount ?? 0) + sealed.reduce(0) { $0 + $1.index.liveCount } }
    }

    /// Applies rows written and removed by one committed transaction.
    func apply(added rows: [UInt64], vectors: Matrix?, removed: [UInt64]) throws {
        generationCounter.add(1, ordering: .releasing)
        try lock.write {
            for row in removed { removeLocked(row) }
            if let v = vectors, !rows.isEmpty {
                try mutable.add(v, ids: rows.map { Int64($0) })
                maxRow = max(maxRow, rows.max()!)
            }
        }
    }

    /// With the lock held for writing: tombstones `row` wherever it lives.
    func removeLocked(_ row: UInt64) {
        let id = Int64(row)
        if mutable.markDeleted(id) { return }
        if let f = frozen, f.markDeleted(id) { return }
        for s in sealed where s.holds(row) {
            s.index.markDeleted(id)
            return
        }
    }

    /// The `k` nearest live rows to `query` over every segment, closest first.
    func search(_ query: [Float], k: Int, parameters p: SegmentSearchParameters, allow: AllowFilter? = nil) throws -> [Neighbor] {
        try lock.read {
            var top = TopK(k: k)
            try query.withUnsafeBufferPointer { q in
                for n in try mutable.search(q, k: k, allow: allow) { top.push(id: n.id, distance: n.distance) }
                if let f = frozen {
                    for n in try f.search(q, k: k, allow: allow) { top.push(id: n.id, distance: n.distance) }
                }
                if !sealed.isEmpty {
                    let m = Matrix(dimension: dimension, storage: query)
                    for s in sealed {
                        let hits: [Neighbor]
                        switch s.index {
                        case .hnsw(let index):
                            hits = try index.search(m, k: k, ef: max(p.efSearch, k), allow: allow)[0]
                        case .ivfpq(let index):
                            hits = try index.search(m, k: k, nprobe: p.probes(nlist: index.nlist), rerank: max(p.rerank, k),
                                                    allow: allow, threads: 1)[0]
                        case .exact(let index):
                            hits = try index.search(q, k: k, allow: allow)
                        }
                        for n in hits { top.push(id: n.id, distance: n.distance) }
                    }
                }
            }
            return top.sorted()
        }
    }

    /// The strategy each sealed HNSW segment picks for a filter allowing the rows of `allowed` (`explain`).
    func filteredStrategies(allowed: Bitset, k: Int, efSearch: Int) -> [FilteredSearch] {
        lock.read {
            sealed.compactMap { s -> FilteredSearch? in
                if case .hnsw(let index) = s.index { return index.filteredSearch(allowed: index.allowedCount(allowed), ef: max(efSearch, k)) }
                return nil
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
                                               memoryBytes: flatVectors * (dimension * 4 + 24))
            }
            for s in sealed {
                var k = byKind[s.index.kind] ?? IndexKindStats(kind: s.index.kind, segments: 0, vectors: 0, deletedVectors: 0, memoryBytes: 0)
                k.segments += 1
                k.vectors += s.index.count
                k.deletedVectors += s.index.deletedCount
                k.memoryBytes += s.index.memoryBytes
                byKind[s.index.kind] = k
            }
            return IndexKind.allCases.compactMap { byKind[$0]?.withRatio }
        }
    }
}
