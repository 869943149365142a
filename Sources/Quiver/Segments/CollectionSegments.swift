import QuiverCore
import QuiverIndex
import QuiverStorage
import Synchronization

/// A sealed segment in memory: its manifest record and its HNSW graph, mapped from its file.
final class SealedSegment: @unchecked Sendable {
    // @unchecked: `index` follows VectorIndex's rules (searches concurrent, markDeleted exclusive),
    // which the owning CollectionSegments' lock enforces.
    let record: SegmentRecord
    let index: HNSWIndex
    let path: String

    init(record: SegmentRecord, index: HNSWIndex, path: String) {
        self.record = record
        self.index = index
        self.path = path
    }

    func holds(_ row: UInt64) -> Bool { row >= record.minRow && row <= record.maxRow && index.contains(Int64(row)) }
}

/// The in-memory index state of one collection: the mutable segment (an exact `FlatIndex` of the
/// rows written since the last seal), the segment being sealed (frozen, still searched), and the
/// sealed segments.
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
    func search(_ query: [Float], k: Int, efSearch: Int?, allow: AllowFilter? = nil) throws -> [Neighbor] {
        try lock.read {
            var top = TopK(k: k)
            try query.withUnsafeBufferPointer { q in
                for n in try mutable.search(q, k: k, allow: allow) { top.push(id: n.id, distance: n.distance) }
                if let f = frozen {
                    for n in try f.search(q, k: k, allow: allow) { top.push(id: n.id, distance: n.distance) }
                }
                let ef = max(efSearch ?? settings.efSearch, k)
                if !sealed.isEmpty {
                    let m = Matrix(dimension: dimension, storage: query)
                    for s in sealed {
                        for n in try s.index.search(m, k: k, ef: ef, allow: allow)[0] { top.push(id: n.id, distance: n.distance) }
                    }
                }
            }
            return top.sorted()
        }
    }

    /// The strategy each sealed HNSW segment picks for a filter allowing `allowed` rows (`explain`).
    func filteredStrategies(allowed: Int, k: Int, efSearch: Int?) -> [FilteredSearch] {
        lock.read {
            let ef = max(efSearch ?? settings.efSearch, k)
            return sealed.map { $0.index.filteredSearch(allowed: allowed, ef: ef) }
        }
    }

    /// Figures for `stats`.
    func figures() -> (sealed: Int, sealedVectors: Int, deleted: Int, mutable: Int, memory: Int) {
        lock.read {
            let sealedVectors = sealed.reduce(0) { $0 + $1.index.count }
            let deleted = sealed.reduce(0) { $0 + $1.index.deletedCount }
            let flat = (mutable.count + (frozen?.count ?? 0)) * (dimension * 4 + 24)
            let memory = sealed.reduce(0) { $0 + $1.index.memoryBytes } + flat
            return (sealed.count, sealedVectors, deleted, mutable.liveCount + (frozen?.liveCount ?? 0), memory)
        }
    }
}
