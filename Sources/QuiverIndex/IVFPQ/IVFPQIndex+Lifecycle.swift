import QuiverCore

/// What the segment lifecycle needs of an IVF-PQ index: walking its ids and a copy (`VectorIndex`), a
/// new empty index on the same trained codebook (so that segments share a collection's codebook and a
/// merge needs no training), and a measure of how well a codebook still fits new vectors.
extension IVFPQIndex {
    /// Calls `body` with every stored id and whether it is tombstoned, list by list. Not concurrent
    /// with `add` or `markDeleted`.
    public func forEachID(_ body: (_ id: Int64, _ deleted: Bool) throws -> Void) rethrows {
        for list in lists {
            for id in list.ids { try body(id, deleted.contains(id)) }
        }
    }

    /// An empty index with this one's trained coarse quantizer and PQ (copied, not retrained), and
    /// the given search defaults. Throws `IndexError(.invalidParameter)` when this index is untrained or
    /// `nprobe` is outside 1...nlist.
    public func emptyCopy(nprobe: Int? = nil, rerank: Int? = nil) throws -> IVFPQIndex {
        guard let pq else { throw IndexError(.invalidParameter, "an untrained IVF-PQ index has no codebook to copy") }
        var p = parameters
        if let nprobe { p.nprobe = nprobe }
        if let rerank { p.rerank = rerank }
        try p.validate(dimension: dimension)
        return IVFPQIndex(decoded: dimension, metric: metric, parameters: p, coarse: coarse, pq: pq, rotation: rotation,
                          lists: [InvertedList](repeating: InvertedList(), count: p.nlist), count: 0, deleted: [], idSet: nil)
    }

    /// This index with another `IVFPQParameters.precomputedTableLimit` (0: no per-entry ADC terms, a
    /// table of whole residual distances per probed list instead): a new index sharing this one's
    /// codebook, lists and tombstones (copied on write).
    public func withPrecomputedTableLimit(_ bytes: Int) throws -> IVFPQIndex {
        guard let pq else { throw IndexError(.invalidParameter, "an untrained IVF-PQ index has no tables") }
        var p = parameters
        p.precomputedTableLimit = max(0, bytes)
        return copy(parameters: p, pq: pq)
    }

    /// A copy sharing this one's codebook, lists and tombstones (the arrays are copied on write, when
    /// either side adds or deletes), with the same search defaults and vector source: no encoding, no
    /// training. An untrained index copies as an empty untrained one. Safe concurrently with searches.
    public func copy() -> IVFPQIndex { copy(parameters: parameters, pq: pq) }

    private func copy(parameters p: IVFPQParameters, pq: ProductQuantizer?) -> IVFPQIndex {
        let copy = pq.map { IVFPQIndex(decoded: dimension, metric: metric, parameters: p, coarse: coarse, pq: $0, rotation: rotation,
                                       lists: lists, count: count, deleted: deleted, idSet: idSet) }
            ?? IVFPQIndex(validDimension: dimension, metric: metric, parameters: p)
        copy.nprobe = nprobe
        copy.rerank = rerank
        copy.vectorSource = vectorSource
        return copy
    }

    /// Whether lists keep the per-entry ADC terms (L2 and cosine with a positive table limit).
    public var keepsADCTerms: Bool { usesTerms }

    /// Whether `other` was trained to the same codebook (coarse centroids and PQ), so that its codes
    /// mean the same here.
    public func sharesCodebook(with other: IVFPQIndex) -> Bool {
        other === self || (other.dimension == dimension && other.metric == metric && other.nlist == nlist
            && other.codeSize == codeSize && other.coarse == coarse && other.pq?.centroids == pq?.centroids
            && other.opqRotation == opqRotation)
    }

    /// The mean squared L2 distance from the rows of `vectors` (normalized first under cosine) to their
    /// nearest coarse centroid: the coarse quantization error, which grows when the data drifts away
    /// from what the codebook was trained on. Zero for an untrained index or no rows.
    public func coarseError(_ vectors: Matrix) -> Double {
        guard isTrained, vectors.rows > 0, vectors.dimension == dimension else { return 0 }
        var data = vectors.storage
        if metric.normalizes { Self.normalizeRows(&data, dimension) }
        let n = vectors.rows
        var labels = [Int32](repeating: 0, count: n)
        var distances = [Float](repeating: 0, count: n)
        data.withUnsafeBufferPointer { x in
            coarse.withUnsafeBufferPointer { c in
                coarseNorms.withUnsafeBufferPointer { nm in
                    labels.withUnsafeMutableBufferPointer { lb in
                        distances.withUnsafeMutableBufferPointer { ds in
                            NearestCentroid.assignParallel(x.baseAddress!, rows: n, ldx: dimension, d: dimension,
                                                           centroids: c.baseAddress!, k: nlist, norms: nm.baseAddress!,
                                                           labels: lb.baseAddress!, distances: ds.baseAddress!,
                                                           threads: parameters.threads)
                        }
                    }
                }
            }
        }
        return distances.reduce(0.0) { $0 + Double($1) } / Double(n)
    }
}
