import QuiverStorage

extension Database {
    /// Seals the mutable segment of `collection` (every collection when nil) into an HNSW segment
    /// and compacts its sealed segments now, reporting progress; waits for background maintenance
    /// that is already running. Readers and writers keep working meanwhile.
    public func compact(_ collection: String? = nil, progress: (@Sendable (CompactionProgress) -> Void)? = nil) throws {
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
    }

    /// Waits until background sealing and compaction queued so far have finished.
    public func waitForMaintenance() {
        segments.queue.sync {}
    }
}

/// Index figures of one collection, for `stats`.
public struct IndexStats: Sendable, Codable, Equatable {
    /// The index kinds in use: `flat` (the mutable segment, searched exactly) and `hnsw` (sealed segments).
    public var kinds: [String]
    /// Sealed HNSW segments.
    public var sealedSegments: Int
    /// Vectors in sealed segments, deleted ones included.
    public var sealedVectors: Int
    /// Deleted vectors still in sealed segments (compaction drops them).
    public var deletedVectors: Int
    /// Vectors in the mutable segment (searched exactly until sealed).
    public var mutableVectors: Int
    /// Bytes of memory the in-memory index structures take (mapped segment files included).
    public var memoryBytes: Int
    /// The last error of background sealing or compaction, if any.
    public var lastMaintenanceError: String?
}
