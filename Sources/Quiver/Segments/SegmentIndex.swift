import QuiverCore
import QuiverIndex

/// The index of one sealed segment: an HNSW graph mapped from its file (float32, or sq8 codes with a
/// cold float32 section), an IVF-PQ index (codes in
/// memory, full vectors in LMDB for re-ranking), or, while a damaged or missing segment file waits to
/// be rebuilt, an exact stand-in holding the segment's live rows read from LMDB.
///
/// Searching, counting, tombstoning and copying go through `any` (the `VectorIndex` protocol) for
/// every kind alike; the cases are told apart only where the kind itself matters: the manifest's
/// kind byte, the codec that writes the file (`SegmentStore`), `explain`'s figures and `verify`'s
/// kind-specific checks.
///
/// Thread-safety: as `VectorIndex`: searches run concurrently; `markDeleted` is exclusive (the owning
/// `CollectionSegments`' lock enforces both).
enum SegmentIndex {
    case hnsw(HNSWIndex)
    /// An HNSW graph over 8-bit codes (`IndexSettings.quantization` `.sq8`).
    case sq8(SQ8HNSWIndex)
    case ivfpq(IVFPQIndex)
    /// A stand-in for a segment whose file could not be read: searched exactly, never written.
    case exact(FlatIndex)

    var kind: IndexKind {
        switch self {
        case .hnsw, .sq8: return .hnsw
        case .ivfpq: return .ivfpq
        case .exact: return .flat
        }
    }

    /// Whether the vectors are stored as sq8 codes.
    var isSQ8: Bool {
        if case .sq8 = self { return true }
        return false
    }

    /// The manifest's kind byte.
    var recordKind: UInt8 {
        switch self {
        case .hnsw: return SegmentRecord.hnsw
        case .sq8: return SegmentRecord.sq8
        case .ivfpq: return SegmentRecord.ivfpq
        case .exact: return 0
        }
    }

    var any: any VectorIndex {
        switch self {
        case .hnsw(let i): return i
        case .sq8(let i): return i
        case .ivfpq(let i): return i
        case .exact(let i): return i
        }
    }

    var count: Int { any.count }
    var liveCount: Int { any.liveCount }

    func contains(_ id: Int64) -> Bool { any.contains(id) }

    @discardableResult
    func markDeleted(_ id: Int64) -> Bool { any.markDeleted(id) }

    func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows { try any.forEachID(body) }

    /// An independent copy in memory (`VectorIndex.copy`): what a merge adds the other segments' rows to.
    func copy() -> SegmentIndex {
        switch self {
        case .hnsw(let i): return .hnsw(i.copy())
        case .sq8(let i): return .sq8(i.copy())
        case .ivfpq(let i): return .ivfpq(i.copy())
        case .exact(let i): return .exact(i.copy())
        }
    }
}
