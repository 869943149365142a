import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage

/*
 LMDB layout of a Quiver database (format 1; docs/file-formats.md has the same text).
 Integers in keys are big-endian, so that LMDB's bytewise order is numeric order; integers in values
 are little-endian. `C` is a collection's number (u32, never reused), `R` a row id (u64, assigned
 from 1 per collection, a fresh one for every stored vector, never reused).

 table       key                         value
 meta        "format"                    u32 LE: 1
             "applied_seq"               u64 LE: sequence number of the last WAL record applied
             "next_collection"           u32 LE: the number the next collection gets
 catalog     collection name (UTF-8)     JSON object of CollectionInfo (see CollectionInfo)
 counters    C                           u64 LE live documents, u64 LE next row id
 documents   C ++ document id (UTF-8)    DocumentRecord (below)
 vectors     C ++ R                      dimension x f32 LE, as written (not normalized)
 rows        C ++ R                      document id (UTF-8)
 imports     C ++ input path (UTF-8)     JSON object of ImportCheckpoint: the resume point of an import
             (a path over 400 bytes: its first 400 bytes ++ 0x00 ++ its SHA-256)

 DocumentRecord: u8 version (1), u64 LE row id, u8 flags (bit 0: has text; bit 1: text is a zstd
 frame), if has text: varint length + bytes (UTF-8, or a zstd frame of UTF-8), then the metadata
 encoding of MetadataCodec.
*/

/// The LMDB tables of a database.
struct Tables: Sendable {
    let meta: LMDBTable
    let catalog: LMDBTable
    let counters: LMDBTable
    let documents: LMDBTable
    let vectors: LMDBTable
    let rows: LMDBTable
    let segments: LMDBTable
    let segmentState: LMDBTable
    let imports: LMDBTable
    let payload: LMDBTable
    let terms: LMDBTable
    let postings: LMDBTable
    let textStats: LMDBTable
    let fields: LMDBTable

    init(_ env: LMDBEnvironment) throws {
        meta = try env.table("meta")
        catalog = try env.table("catalog")
        counters = try env.table("counters")
        documents = try env.table("documents")
        vectors = try env.table("vectors")
        rows = try env.table("rows")
        segments = try env.table("segments")
        segmentState = try env.table("segment_state")
        imports = try env.table("imports")
        payload = try env.table("payload")
        terms = try env.table("terms")
        postings = try env.table("postings")
        textStats = try env.table("text_stats")
        fields = try env.table("fields")
    }
}

/// Key builders for the layout above.
enum Keys {
    static func collection(_ c: UInt32) -> [UInt8] { withUnsafeBytes(of: c.bigEndian) { Array($0) } }

    static func document(_ c: UInt32, _ id: String) -> [UInt8] { collection(c) + Array(id.utf8) }

    static func row(_ c: UInt32, _ r: UInt64) -> [UInt8] { collection(c) + withUnsafeBytes(of: r.bigEndian) { Array($0) } }

    /// Input paths up to this many UTF-8 bytes key the `imports` table as they are.
    static let maxInlineImportPathBytes = 400

    /// The `imports` key of an input path: C ++ the path, or for a longer path C ++ its first 400
    /// bytes ++ 0x00 ++ its SHA-256 (32 bytes; a path holds no NUL), at most 437 bytes in all. The
    /// value names the whole path, which a resume compares.
    static func importKey(_ c: UInt32, path: String) -> [UInt8] {
        let p = Array(path.utf8)
        if p.count <= maxInlineImportPathBytes { return collection(c) + p }
        return collection(c) + p[..<maxInlineImportPathBytes] + [0] + SHA256.digest(p)
    }

    /// The row id of a `vectors`/`rows` key.
    static func rowID(of key: UnsafeRawBufferPointer) -> UInt64 {
        var r: UInt64 = 0
        for i in 4..<12 { r = r << 8 | UInt64(key[i]) }
        return r
    }
}

/// Per-collection counters.
struct Counters: Equatable {
    var liveDocuments: UInt64 = 0
    var nextRow: UInt64 = 1

    var bytes: [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.write(liveDocuments)
        w.write(nextRow)
        return w.bytes
    }

    init() {}

    init(_ bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        liveDocuments = try r.readUInt64()
        nextRow = try r.readUInt64()
    }
}

/// A stored document without its vector.
struct DocumentRecord {
    var row: UInt64
    var text: String?
    var metadata: Metadata

    static let hasText: UInt8 = 1
    static let compressed: UInt8 = 2

    func encode(compressionThreshold: Int) throws -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt8(1))
        w.write(row)
        if let text = text {
            let utf8 = Array(text.utf8)
            if utf8.count > compressionThreshold {
                let frame = try Zstd.compress(utf8)
                if frame.count < utf8.count {
                    w.write(DocumentRecord.hasText | DocumentRecord.compressed)
                    w.writeBlob(frame)
                } else {
                    w.write(DocumentRecord.hasText)
                    w.writeBlob(utf8)
                }
            } else {
                w.write(DocumentRecord.hasText)
                w.writeBlob(utf8)
            }
        } else {
            w.write(UInt8(0))
        }
        MetadataCodec.encode(metadata, into: &w)
        return w.bytes
    }

    /// Decodes a record; `withText: false` skips decompressing the text.
    init(_ bytes: [UInt8], withText: Bool = true) throws {
        var r = ByteReader(bytes)
        let version = try r.readUInt8()
        guard version == 1 else { throw CodecError("unknown document record version \(version)", offset: 0) }
        row = try r.readUInt64()
        let flags = try r.readUInt8()
        text = nil
        if flags & DocumentRecord.hasText != 0 {
            let blob = try r.readBlob()
            if withText {
                let utf8 = flags & DocumentRecord.compressed != 0 ? try Zstd.decompress(blob, maxSize: Limits.maxTextBytes) : blob
                guard let s = String(validating: utf8, as: UTF8.self) else { throw CodecError("stored text is not UTF-8", offset: 0) }
                text = s
            }
        }
        metadata = try MetadataCodec.decode(&r)
    }

    init(row: UInt64, text: String?, metadata: Metadata) {
        self.row = row
        self.text = text
        self.metadata = metadata
    }
}

/// Vectors as stored: little-endian float32.
enum VectorCodec {
    static func encode(_ v: [Float]) -> [UInt8] {
        var w = ByteWriter(capacity: v.count * 4)
        w.write(floats: v)
        return w.bytes
    }

    /// Copies a stored vector into `out` (which must hold `dimension` floats).
    static func decode(_ bytes: UnsafeRawBufferPointer, dimension: Int, into out: UnsafeMutablePointer<Float>) throws {
        guard bytes.count == dimension * 4 else {
            throw StorageError(.corrupt, "a stored vector has \(bytes.count) bytes, expected \(dimension * 4)")
        }
        // The host is little-endian (x86-64, arm64); a memcpy is the decode. LMDB values are not
        // necessarily 4-byte aligned, which is why this copies instead of binding memory.
        UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, dimension: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        try out.withUnsafeMutableBufferPointer { try decode(bytes, dimension: dimension, into: $0.baseAddress!) }
        return out
    }
}

extension CollectionInfo {
    static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .secondsSince1970
        return e
    }()

    static let jsonDecoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .secondsSince1970
        return d
    }()

    func encoded() throws -> [UInt8] { Array(try CollectionInfo.jsonEncoder.encode(self)) }

    init(encoded bytes: [UInt8]) throws {
        self = try CollectionInfo.jsonDecoder.decode(CollectionInfo.self, from: Data(bytes))
    }
}
