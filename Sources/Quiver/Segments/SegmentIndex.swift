import QuiverCore
import QuiverIndex
import QuiverStorage

/// The index of one sealed segment: an HNSW graph mapped from its file, or an IVF-PQ index (codes in
/// memory, full vectors in LMDB for re-ranking), or, while a damaged or missing segment file waits to
/// be rebuilt, an exact stand-in holding the segment's live rows read from LMDB.
///
/// Thread-safety: as `VectorIndex`: searches run concurrently; `markDeleted` is exclusive (the owning
/// `CollectionSegments`' lock enforces both).
enum SegmentIndex {
    case hnsw(HNSWIndex)
    case ivfpq(IVFPQIndex)
    /// A stand-in for a segment whose file could not be read: searched exactly, never written.
    case exact(FlatIndex)

    var kind: IndexKind {
        switch self {
        case .hnsw: return .hnsw
        case .ivfpq: return .ivfpq
        case .exact: return .flat
        }
    }

    /// The manifest's kind byte.
    var recordKind: UInt8 {
        switch self {
        case .hnsw: return SegmentRecord.hnsw
        case .ivfpq: return SegmentRecord.ivfpq
        case .exact: return 0
        }
    }

    var any: any VectorIndex {
        switch self {
        case .hnsw(let i): return i
        case .ivfpq(let i): return i
        case .exact(let i): return i
        }
    }

    var count: Int { any.count }
    var liveCount: Int { any.liveCount }

    var deletedCount: Int {
        switch self {
        case .hnsw(let i): return i.deletedCount
        case .ivfpq(let i): return i.deletedCount
        case .exact(let i): return i.tombstonedCount
        }
    }

    /// Resident bytes: for HNSW the mapped file's vectors and links (the whole file is paged in by
    /// searches), for IVF-PQ the codes, ids, centroids and tables in memory (not the full vectors,
    /// which LMDB holds and the page cache shares).
    var memoryBytes: Int {
        switch self {
        case .hnsw(let i): return i.memoryBytes
        case .ivfpq(let i): return i.memoryBytes
        case .exact(let i): return i.memoryBytes
        }
    }

    func contains(_ id: Int64) -> Bool { any.contains(id) }

    @discardableResult
    func markDeleted(_ id: Int64) -> Bool { any.markDeleted(id) }

    func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        switch self {
        case .hnsw(let i): try i.forEachID(body)
        case .ivfpq(let i): try i.forEachID(body)
        case .exact(let i): try i.forEachID(body)
        }
    }

    /// Writes the segment file's bytes in chunks.
    func encode(to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch self {
        case .hnsw(let i): try HNSWCodec.encode(i, to: write)
        case .ivfpq(let i): try IVFPQCodec.encode(i, to: write)
        case .exact: throw StorageError(.invalidArgument, "an exact stand-in for a damaged segment is rebuilt, never written")
        }
    }
}

/// How one search runs over the sealed segments.
struct SegmentSearchParameters {
    /// HNSW candidate list size (at least k).
    var efSearch: Int
    /// IVF-PQ lists probed before widening for a filter.
    var nprobe: Int
    /// IVF-PQ candidates re-ranked with full vectors (at least k).
    var rerank: Int
    /// With a filter: the share of the collection's documents it allows (0...1), which widens nprobe.
    var allowedShare: Double?

    /// IVF-PQ lists to probe in an index of `nlist` lists: `nprobe`, divided by the filter's allowed
    /// share so that the probed lists hold about as many allowed vectors as an unfiltered search
    /// scores (the IVF path of the planner); capped at nlist.
    func probes(nlist: Int) -> Int {
        var p = Double(nprobe)
        if let share = allowedShare { p /= max(share, 1 / Double(max(nlist, 1))) }
        return max(1, min(nlist, Int(p.rounded(.up))))
    }
}

/// Reads a collection's full vectors from LMDB for IVF-PQ re-ranking and exact filtered scans: one
/// read transaction per call (a snapshot; a row deleted since the segment's search began is not found
/// and its candidate is dropped).
struct LMDBVectorSource: IVFPQVectorSource {
    let env: LMDBEnvironment
    let vectors: LMDBTable
    let collection: UInt32
    /// The collection's name, for errors.
    let name: String

    func readVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, into destination: UnsafeMutablePointer<Float>,
                     found: UnsafeMutablePointer<Bool>) throws {
        try env.read { txn in
            for (i, id) in ids.enumerated() {
                found[i] = false
                guard id >= 0 else { continue }
                let key = Keys.row(collection, UInt64(id))
                try txn.withValue(vectors, key) { value in
                    guard let v = value else { return }
                    try VectorCodec.decode(v, key: key, collection: name, dimension: dimension, into: destination + i * dimension)
                    found[i] = true
                }
            }
        }
    }
}
