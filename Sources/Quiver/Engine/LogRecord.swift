import Foundation
import QuiverCore
import QuiverStorage

/*
 Write-ahead log payloads of a Quiver database (the record framing is in WALFormat.swift).
 Every record is self-contained: it carries the vectors already computed (encoded text included), so
 that replay needs no encoder and yields exactly what the original write applied.

 type 1  create collection   JSON object of CollectionInfo (the collection's number included)
 type 2  drop collection     u32 LE collection number, then the name (varint length + UTF-8)
 type 3  write documents     u32 LE collection number, u8 mode (0 upsert, 1 insert), varint count,
                             then per document: id (varint length + UTF-8), u8 flags (bit 0: has
                             text), [text (varint length + UTF-8)], metadata (MetadataCodec),
                             dimension x f32 LE vector
 type 4  delete documents    u32 LE collection number, varint count, then ids (varint length + UTF-8)
 type 6  payload index       u32 LE collection number, field (varint length + UTF-8), type
                             (varint length + UTF-8: keyword, integer, float or bool)
 type 7  tuning              u32 LE collection number, u8 change (0 none, 1 put adapter, 2 remove
                             adapter), [name (varint length + UTF-8)], [put: the adapter payload
                             (varint length + bytes; Tuning/AdapterStore.swift)], then the
                             collection's TuningSettings (varint length + JSON; empty: none)
 type 5  import batch        a type 3 payload, then the import checkpoint stored in the same LMDB
                             transaction: key (varint length + bytes), value (varint length + bytes)
*/

/// A mutation, as logged and as applied.
enum LogRecord {
    /// An import's resume point, written in the same transaction as the batch it follows.
    struct Checkpoint: Equatable {
        var key: [UInt8]
        var value: [UInt8]
    }

    case createCollection(CollectionInfo)
    case dropCollection(number: UInt32, name: String)
    case write(number: UInt32, insert: Bool, documents: [Document], checkpoint: Checkpoint? = nil)
    case delete(number: UInt32, ids: [String])
    case createPayloadIndex(number: UInt32, spec: PayloadIndexSpec)
    case tuning(number: UInt32, change: TuningChange, settings: TuningSettings?)

    var type: UInt8 {
        switch self {
        case .createCollection: return 1
        case .dropCollection: return 2
        case .write(_, _, _, let checkpoint): return checkpoint == nil ? 3 : 5
        case .delete: return 4
        case .createPayloadIndex: return 6
        case .tuning: return 7
        }
    }

    /// The documents a write or delete names (for messages).
    var documentCount: Int {
        switch self {
        case .write(_, _, let documents, _): return documents.count
        case .delete(_, let ids): return ids.count
        default: return 0
        }
    }

    func payload() throws -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .createCollection(let info):
            w.write(raw: try info.encoded())
        case .dropCollection(let number, let name):
            w.write(number)
            w.writeString(name)
        case .write(let number, let insert, let documents, let checkpoint):
            w.write(number)
            w.write(UInt8(insert ? 1 : 0))
            w.writeVarint(UInt64(documents.count))
            for d in documents {
                w.writeString(d.id)
                if let text = d.text {
                    w.write(UInt8(1))
                    w.writeString(text)
                } else {
                    w.write(UInt8(0))
                }
                MetadataCodec.encode(d.metadata, into: &w)
                w.write(floats: d.vector ?? [])
            }
            if let c = checkpoint {
                w.writeBlob(c.key)
                w.writeBlob(c.value)
            }
        case .delete(let number, let ids):
            w.write(number)
            w.writeVarint(UInt64(ids.count))
            for id in ids { w.writeString(id) }
        case .createPayloadIndex(let number, let spec):
            w.write(number)
            w.writeString(spec.field)
            w.writeString(spec.type.rawValue)
        case .tuning(let number, let change, let settings):
            w.write(number)
            switch change {
            case .none: w.write(UInt8(0))
            case .put(let name, let payload): w.write(UInt8(1)); w.writeString(name); w.writeBlob(payload)
            case .remove(let name): w.write(UInt8(2)); w.writeString(name)
            }
            w.writeBlob(try settings.map { Array(try CollectionInfo.jsonEncoder.encode($0)) } ?? [])
        }
        return w.bytes
    }

    /// Decodes a logged record; `dimension(number)` gives a collection's dimension for type 3.
    init(_ record: WALRecord, dimension: (UInt32) throws -> Int) throws {
        var r = ByteReader(record.payload)
        switch record.type {
        case 1:
            self = .createCollection(try CollectionInfo(encoded: record.payload))
        case 2:
            self = .dropCollection(number: try r.readUInt32(), name: try r.readString())
        case 3, 5:
            let number = try r.readUInt32()
            let insert = try r.readUInt8() == 1
            let count = try r.readLength()
            let d = try dimension(number)
            var docs: [Document] = []
            docs.reserveCapacity(count)
            for _ in 0..<count {
                let id = try r.readString()
                let text = try r.readUInt8() == 1 ? try r.readString() : nil
                let metadata = try MetadataCodec.decode(&r)
                let vector = try r.readFloats(d)
                docs.append(Document(id: id, text: text, metadata: metadata, vector: vector))
            }
            let checkpoint = record.type == 5 ? Checkpoint(key: try r.readBlob(), value: try r.readBlob()) : nil
            self = .write(number: number, insert: insert, documents: docs, checkpoint: checkpoint)
        case 4:
            let number = try r.readUInt32()
            let count = try r.readLength()
            var ids: [String] = []
            for _ in 0..<count { ids.append(try r.readString()) }
            self = .delete(number: number, ids: ids)
        case 6:
            let number = try r.readUInt32()
            let field = try r.readString()
            let typeName = try r.readString()
            guard let type = PayloadIndexType(rawValue: typeName) else {
                throw StorageError(.corrupt, "write-ahead log record \(record.sequence) names unknown payload index type '\(typeName)'")
            }
            self = .createPayloadIndex(number: number, spec: PayloadIndexSpec(field: field, type: type))
        case 7:
            let number = try r.readUInt32()
            let change: TuningChange
            switch try r.readUInt8() {
            case 0: change = .none
            case 1: change = .put(name: try r.readString(), payload: try r.readBlob())
            case 2: change = .remove(name: try r.readString())
            case let op: throw StorageError(.corrupt, "write-ahead log record \(record.sequence) has unknown tuning change \(op)")
            }
            let json = try r.readBlob()
            let settings = json.isEmpty ? nil : try CollectionInfo.jsonDecoder.decode(TuningSettings.self, from: Data(json))
            self = .tuning(number: number, change: change, settings: settings)
        default:
            throw StorageError(.corrupt, "write-ahead log record \(record.sequence) has unknown type \(record.type)")
        }
    }
}
