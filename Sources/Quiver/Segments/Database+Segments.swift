import QuiverStorage

extension Database {
    /// Seals the mutable segment of `collection` (every collection when nil) into a segment of the
    /// collection's index kind (HNSW or IVF-PQ; under `flat` nothing is sealed and the mutable
    /// segment is rewritten without its deleted rows) and compacts its sealed segments now
    /// (`SegmentPolicy.nextCompaction`), reporting progress; waits for background maintenance
    /// that is already running. Readers and writers keep working meanwhile.
    public func compact(_ collection: String? = nil, progress: (@Sendable (CompactionProgress) -> Void)? = nil) throws {
        try checkWritable()
        let names = try collection.map { [$0] } ?? collections().map(\.name)
        for name in names {
            let info = try describe(name)
            guard let segs = segments.segments(info.number) else { throw QuiverError.unknownCollection(name) }
            do {
                try segments.compactNow(segs, progress: progress)
            } catch let e as StorageError {
                throw QuiverError.storage(e)
            }
        }
        // What compaction leaves on disk should be the database's size at rest: no log past LMDB's state.
        if options.checkpointAfterBulkWork { try checkpoint() }
    }

    /// Waits until background sealing and compaction queued so far have finished.
    public func waitForMaintenance() {
        segments.queue.sync {}
    }
}

/// Index figures of one collection, for `stats`.
public struct IndexStats: Sendable, Codable, Equatable {
    /// The collection's configured index kind (`hnsw`, `ivfpq`, `flat` or `auto`).
    public var configuredKind: IndexKind
    /// How the collection's sealed HNSW segments store their vectors (`none`: float32, `sq8`: 8-bit codes).
    public var quantization: Quantization
    /// The index kinds in use: `flat` (the mutable segment, searched exactly), `hnsw` and `ivfpq`
    /// (sealed segments).
    public var kinds: [String]
    /// Sealed segments, of every kind.
    public var sealedSegments: Int
    /// Vectors in sealed segments, deleted ones included.
    public var sealedVectors: Int
    /// Deleted vectors still in sealed segments (compaction drops them).
    public var deletedVectors: Int
    /// Vectors in the mutable segment (searched exactly until sealed).
    public var mutableVectors: Int
    /// Bytes of memory the in-memory index structures take (mapped segment files included).
    public var memoryBytes: Int
    /// The same figures per index kind in use, with the resident bytes per vector.
    public var byKind: [IndexKindStats]
    /// The last error of background sealing or compaction, if any.
    public var lastMaintenanceError: String?
}

/// Index figures of one index kind within a collection.
public struct IndexKindStats: Sendable, Codable, Equatable {
    /// `flat`, `hnsw` or `ivfpq`.
    public var kind: IndexKind
    /// Segments of this kind (`flat`: the mutable segment, and the one being sealed if any).
    public var segments: Int
    /// Vectors they hold, deleted ones included.
    public var vectors: Int
    /// Deleted vectors among them.
    public var deletedVectors: Int
    /// Resident bytes of memory: `flat` and `hnsw` hold float32 vectors (HNSW also its links, mapped
    /// from the segment file); `ivfpq` holds codes, ids, centroids and tables, while the full vectors
    /// used for re-ranking stay in LMDB.
    public var memoryBytes: Int
    /// `memoryBytes / vectors` (0 without vectors).
    public var bytesPerVector: Double
    /// `hnsw`: how many of the segments hold sq8 codes (the others float32 vectors); 0 for other kinds.
    public var sq8Segments: Int

    public init(kind: IndexKind, segments: Int, vectors: Int, deletedVectors: Int, memoryBytes: Int, sq8Segments: Int = 0) {
        self.kind = kind
        self.sq8Segments = sq8Segments
        self.segments = segments
        self.vectors = vectors
        self.deletedVectors = deletedVectors
        self.memoryBytes = memoryBytes
        bytesPerVector = vectors > 0 ? Double(memoryBytes) / Double(vectors) : 0
    }

    /// Keeps `bytesPerVector` in step with the counts (figures are summed segment by segment).
    public var withRatio: IndexKindStats {
        IndexKindStats(kind: kind, segments: segments, vectors: vectors, deletedVectors: deletedVectors, memoryBytes: memoryBytes,
                       sq8Segments: sq8Segments)
    }
}
