import QuiverCore
import QuiverIndex

/// The decisions of the segment layer, and nothing else (no I/O, no state): the kind a seal
/// builds, when an IVF-PQ codebook is reused, retrained or first trained and on how many vectors,
/// and which compaction step comes next (rebuild, rewrite, merge plan). `SegmentManager` asks and
/// carries the answers out through `SegmentStore` and `CollectionSegments`. A Sendable value.
struct SegmentPolicy: Sendable {
    let settings: IndexSettings
    let dimension: Int

    init(_ segs: CollectionSegments) {
        settings = segs.settings
        dimension = segs.dimension
    }

    // MARK: - Sealing

    /// The kind of segment the collection's mutable rows are sealed into now (and compaction
    /// rebuilds other segments as): the configured kind, or for `auto` the one its size calls for.
    func sealKind(liveVectors: Int) -> IndexKind { settings.sealKind(liveVectors: liveVectors, dimension: dimension) }

    /// Whether writes are sealed at all (`flat` keeps every row in the mutable segment).
    var seals: Bool { settings.kind != .flat }

    // MARK: - IVF-PQ codebooks

    /// Fewest live vectors an IVF-PQ codebook is trained on (256 PQ centroids per subspace need a
    /// few points each).
    static let minimumTrainingVectors = 1_000
    /// The codebook is retrained when new vectors' mean coarse quantization error exceeds the error
    /// of the vectors it encodes by this factor (the data drifted).
    static let driftRatio = 1.25
    /// Vectors compared for drift, on each side.
    static let driftSample = 2_000

    /// Why the collection's current codebook (`current`, of its newest IVF-PQ segment) must be
    /// retrained, or nil to keep it: the collection grew so that the automatic nlist doubled, or new
    /// vectors drifted from it (`coarseErrors`: the mean coarse error of a sample of the incoming
    /// vectors and of the vectors the segment holds, nil without incoming vectors; it is asked
    /// only when the growth rule keeps the codebook).
    func retrainReason(current: IVFPQIndex, liveVectors live: Int,
                       coarseErrors: () throws -> (incoming: Double, own: Double)?) rethrows -> String? {
        if settings.nlist == nil && IndexSettings.automaticListCount(live) >= 2 * current.nlist {
            return "the collection grew to \(live) vectors (nlist \(current.nlist) -> \(IndexSettings.automaticListCount(live)))"
        }
        if let e = try coarseErrors(), e.incoming > Self.driftRatio * e.own {
            return "new vectors drifted from the codebook (coarse error \(e.incoming) vs \(e.own))"
        }
        return nil
    }

    /// How a new codebook is trained for `live` live vectors: the list count and the training
    /// sample's size; nil while the collection holds too few vectors to train one.
    func training(liveVectors live: Int) -> (nlist: Int, sample: Int)? {
        guard live >= Self.minimumTrainingVectors else { return nil }
        let nlist = settings.listCount(forVectors: live)
        return (nlist, min(live, max(16_384, min(131_072, 64 * nlist))))
    }

    /// Whether a sample of `rows` vectors is enough to train a codebook of `nlist` lists.
    static func sampleSuffices(_ rows: Int, nlist: Int) -> Bool {
        rows >= max(nlist, ProductQuantizer.centroidCount, minimumTrainingVectors)
    }

    /// The parameters of a new codebook of `nlist` lists.
    func ivfpqParameters(nlist: Int) -> IVFPQParameters {
        IVFPQParameters(nlist: nlist, subspaces: settings.codeBytes(dimension: dimension), nprobe: min(settings.nprobe, nlist), rerank: settings.rerank)
    }

    /// At most `max` rows of `m`, evenly strided (the incoming side of the drift check).
    static func strided(_ m: Matrix, max: Int) -> Matrix {
        guard m.rows > max else { return m }
        var out: [Float] = []
        out.reserveCapacity(max * m.dimension)
        for i in 0..<max { out.append(contentsOf: m[row: i * m.rows / max]) }
        return Matrix(dimension: m.dimension, storage: out)
    }

    // MARK: - Compaction

    /// One step of a compaction pass.
    enum CompactionStep {
        /// Rebuild a segment of another kind than the collection now calls for (HNSW segments sealed
        /// before an IVF-PQ collection could train its codebook).
        case rebuild(SealedSegment, as: IndexKind)
        /// Rewrite a segment without its deleted vectors.
        case rewrite(SealedSegment)
        /// Merge `others` into a copy of `base` (the largest segment).
        case merge(base: SealedSegment, others: [SealedSegment])

        /// What `compact` reports for this step.
        var message: String {
            switch self {
            case .rebuild(let s, let kind):
                return "rebuilding \(s.index.kind.rawValue) segment \(s.record.id) as \(kind.rawValue)"
            case .rewrite(let s):
                return "rewriting segment \(s.record.id) without its \(s.index.any.deletedCount) deleted vectors"
            case .merge(let base, let others):
                let small = others.reduce(0) { $0 + $1.index.liveCount }
                return "merging \(others.count) segment(s) (\(small) vectors) into segment \(base.record.id) (\(base.index.liveCount) vectors)"
            }
        }
    }

    /// The next compaction step over the sealed segments `sealed` (nil: nothing to do):
    /// 1. with `full` (an explicit compaction), a rebuild of each segment of another kind than the
    ///    collection calls for, once each (`rebuilt` names those done), and for IVF-PQ only once a
    ///    codebook can be trained;
    /// 2. a rewrite of a segment whose deleted share passes `rewriteDeletedShare`;
    /// 3. a merge of the smaller segments into the largest one as far as `maxSegmentVectors` allows.
    ///    In the background (`full` false) a merge waits until the small segments hold a quarter of
    ///    the largest one's vectors, or there are 8 sealed segments: copying the largest index costs
    ///    its size, so merging after every seal would cost O(n^2 / segmentSize) over a long load;
    ///    waiting for a quarter keeps the total copying within a constant factor of n.
    func nextCompaction(_ sealed: [SealedSegment], liveVectors: Int, full: Bool, rebuilt: Set<UInt64>) -> CompactionStep? {
        let wanted = sealKind(liveVectors: liveVectors)
        if full, wanted != .ivfpq || liveVectors >= Self.minimumTrainingVectors,
           let other = sealed.first(where: { $0.index.kind != wanted && !rebuilt.contains($0.record.id) }) {
            return .rebuild(other, as: wanted)
        }
        if let heavy = sealed.first(where: { s in
            let index = s.index.any
            return index.count > 0 && Double(index.deletedCount) / Double(index.count) > settings.rewriteDeletedShare
        }) {
            return .rewrite(heavy)
        }
        guard sealed.count >= 2 else { return nil }
        let bySize = sealed.sorted { $0.index.liveCount > $1.index.liveCount }
        let base = bySize[0]
        var total = base.index.liveCount
        var smalls: [SealedSegment] = []
        for seg in bySize.dropFirst() where total + seg.index.liveCount <= settings.maxSegmentVectors {
            smalls.append(seg)
            total += seg.index.liveCount
        }
        guard !smalls.isEmpty else { return nil }
        if !full && (total - base.index.liveCount) * 4 < base.index.liveCount && sealed.count < 8 { return nil }
        return .merge(base: base, others: smalls)
    }

    /// Under the `flat` kind: whether the mutable segment (`count` rows, `live` of them live) is
    /// rewritten without its deleted rows: once they pass `rewriteDeletedShare`, or whenever some
    /// are deleted with `force` (an explicit compaction).
    func flatRewriteDue(count: Int, live: Int, force: Bool) -> Bool {
        count > live && (force || Double(count - live) / Double(count) > settings.rewriteDeletedShare)
    }
}
