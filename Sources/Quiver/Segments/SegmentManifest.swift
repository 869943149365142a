import QuiverCore
import QuiverStorage

/*
 The segment manifest, in LMDB (format 2; docs/file-formats.md has the same text). Switching the set
 of live segments of a collection is one LMDB transaction over these two tables. Each value is the
 payload below followed by its checksum trailer (StoredValue, StorageLayout.swift).

 table          key                          value (payload)
 segments       C ++ u64 BE segment id       u8 version (1), u8 kind (1 = HNSW, 2 = IVF-PQ, 3 = sq8 HNSW), u64 LE vectors in the
                                             file (tombstoned ones included), u64 LE least row id,
                                             u64 LE greatest row id, u64 LE file size in bytes
 segment_state  C                            u64 LE sealed-through row id (every row id <= it is in a
                                             sealed segment or deleted), u64 LE next segment id

 A segment's file is `segments/<C>/<segment id, 20 digits>.hnsw` (the HNSWCodec layout,
 Sources/QuiverIndex/HNSW/HNSWCodec.swift), `.ivfpq` (the IVFPQCodec layout) or `.sq8` (the
 SQ8HNSWCodec layout, Sources/QuiverIndex/HNSW/SQ8HNSWCodec.swift). Files that the manifest does not name are removed at
 open (a crash between writing a file and recording it, or between recording a merge and removing
 the merged files).
*/

/// One sealed segment as the manifest records it.
struct SegmentRecord: Equatable, Sendable {
    static let hnsw: UInt8 = 1
    static let ivfpq: UInt8 = 2
    static let sq8: UInt8 = 3

    var id: UInt64
    var kind: UInt8 = SegmentRecord.hnsw
    var vectors: UInt64
    var minRow: UInt64
    var maxRow: UInt64
    var fileBytes: UInt64

    /// The stored value of this record in collection `c`'s manifest.
    func stored(_ c: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 38)
        w.write(UInt8(1))
        w.write(kind)
        w.write(vectors)
        w.write(minRow)
        w.write(maxRow)
        w.write(fileBytes)
        return StoredValue.seal(w.bytes, key: Keys.segment(c, id))
    }

    init(id: UInt64, kind: UInt8, vectors: UInt64, minRow: UInt64, maxRow: UInt64, fileBytes: UInt64) {
        self.id = id
        self.kind = kind
        self.vectors = vectors
        self.minRow = minRow
        self.maxRow = maxRow
        self.fileBytes = fileBytes
    }

    /// Decodes the stored value `value` of manifest key `key` (collection `collection`, for errors).
    init(stored value: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, collection: String) throws {
        let payload = try StoredValue.open(value, key: key, table: "segments", collection: collection)
        try self.init(id: Keys.rowID(of: key), bytes: payload)
    }

    private init(id: UInt64, bytes: UnsafeRawBufferPointer) throws {
        var r = ByteReader(Array(bytes))
        let version = try r.readUInt8()
        guard version == 1 else { throw StorageError(.corrupt, "segment record \(id) has unknown version \(version)") }
        self.id = id
        kind = try r.readUInt8()
        guard [SegmentRecord.hnsw, SegmentRecord.ivfpq, SegmentRecord.sq8].contains(kind) else { throw StorageError(.corrupt, "segment record \(id) has unknown kind \(kind)") }
        vectors = try r.readUInt64()
        minRow = try r.readUInt64()
        maxRow = try r.readUInt64()
        fileBytes = try r.readUInt64()
    }

    /// The segment's file name: the id in 20 digits, `.hnsw`, `.ivfpq` or `.sq8` by kind.
    var fileName: String { SegmentRecord.fileName(id, kind: kind) }

    static func fileName(_ id: UInt64, kind: UInt8) -> String {
        let digits = String(id)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + (kind == ivfpq ? ".ivfpq" : kind == sq8 ? ".sq8" : ".hnsw")
    }
}

/// Per-collection sealing state.
struct SegmentState: Equatable, Sendable, CollectionValuePair {
    var sealedThrough: UInt64
    var nextSegment: UInt64

    /// A new collection's state: nothing sealed, segment ids from 1.
    init(_ sealedThrough: UInt64 = 0, _ nextSegment: UInt64 = 1) { (self.sealedThrough, self.nextSegment) = (sealedThrough, nextSegment) }

    var pair: (UInt64, UInt64) { (sealedThrough, nextSegment) }
}

extension Keys {
    static func segment(_ c: UInt32, _ id: UInt64) -> [UInt8] { row(c, id) }
}

enum Manifest {
    /// Collection `c`'s manifest records (`name` names it in errors).
    static func records(_ c: UInt32, name: String, txn: LMDBTransaction, tables: Tables) throws -> [SegmentRecord] {
        var out: [SegmentRecord] = []
        try txn.forEach(tables.segments, prefix: Keys.collection(c)) { k, v in
            out.append(try SegmentRecord(stored: v, key: k, collection: name))
            return true
        }
        return out
    }

    static func state(_ c: UInt32, name: String, txn: LMDBTransaction, tables: Tables) throws -> SegmentState {
        try SegmentState.read(c, table: tables.segmentState, collection: name, txn: txn) ?? SegmentState()
    }
}
