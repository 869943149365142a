import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage
import QuiverTuning

/*
 Query adapters in LMDB (table `adapters`; docs/file-formats.md has the same text).

 key    C ++ adapter name (UTF-8, 1 to 128 bytes)
 value  payload ++ u32 LE CRC-32C of key and payload (StoredValue), the payload being:
        u8 version (1), u8 kind (0 full-rank linear, 1 low rank), u32 LE dimension d, u32 LE rank r
        (d for full rank), encoder identifier (varint length + UTF-8), encoder weights checksum
        (varint length + UTF-8), training report (varint length + JSON of TuneReport), then the
        weights as f32 LE: W (d x d, row-major) for full rank; A (d x r) then B (r x d) for low rank.

 The collection's catalog entry (CollectionInfo.tuning) names the default adapter with the SHA-256
 of its payload: a search that applies it checks both the checksum trailer and that digest, and
 that the collection's encoder is the one the adapter was trained on (identifier and weights).
*/

/// A query adapter as stored: the adapter, what it was trained on, and its training report.
struct StoredAdapter {
    var name: String
    var adapter: QueryAdapter
    var encoderIdentifier: String
    var encoderWeights: String
    var report: TuneReport

    func payload() throws -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt8(1))
        switch adapter.kind {
        case .linear: w.write(UInt8(0))
        case .lowRank: w.write(UInt8(1))
        }
        w.write(UInt32(adapter.dimension))
        w.write(UInt32(adapter.rank))
        w.writeString(encoderIdentifier)
        w.writeString(encoderWeights)
        w.writeBlob(Array(try CollectionInfo.jsonEncoder.encode(report)))
        w.write(floats: adapter.weights)
        return w.bytes
    }

    init(name: String, adapter: QueryAdapter, encoderIdentifier: String, encoderWeights: String, report: TuneReport) {
        self.name = name
        self.adapter = adapter
        self.encoderIdentifier = encoderIdentifier
        self.encoderWeights = encoderWeights
        self.report = report
    }

    init(name: String, payload: [UInt8]) throws {
        var r = ByteReader(payload)
        let version = try r.readUInt8()
        guard version == 1 else { throw CodecError("unknown adapter record version \(version)", offset: 0) }
        let kindByte = try r.readUInt8()
        let d = Int(try r.readUInt32()), rank = Int(try r.readUInt32())
        guard (1...Limits.maxDimension).contains(d), (1...d).contains(rank), kindByte <= 1 else {
            throw CodecError("adapter kind \(kindByte), dimension \(d), rank \(rank) are not valid", offset: 0)
        }
        let kind: QueryAdapter.Kind = kindByte == 0 ? .linear : .lowRank(rank)
        self.name = name
        encoderIdentifier = try r.readString()
        encoderWeights = try r.readString()
        report = try CollectionInfo.jsonDecoder.decode(TuneReport.self, from: Data(try r.readBlob()))
        adapter = QueryAdapter(kind: kind, dimension: d, weights: try r.readFloats(QueryAdapter.weightCount(kind, dimension: d)))
    }

    static func key(_ number: UInt32, _ name: String) -> [UInt8] { Keys.document(number, name) }

    static func checkName(_ name: String) throws {
        guard (1...128).contains(name.utf8.count), !name.contains("\0") else {
            throw QuiverError.invalidArgument("an adapter name must be 1 to 128 bytes of UTF-8 without NUL, not '\(name)'")
        }
    }

    /// Reads adapter `name` of collection `info` (nil when none is stored under that name).
    static func read(_ info: CollectionInfo, _ name: String, txn: LMDBTransaction, tables: Tables) throws -> (StoredAdapter, digest: String)? {
        let key = key(info.number, name)
        guard let value = try txn.get(tables.adapters, key) else { return nil }
        let payload = try StoredValue.open(value, key: key, table: tables.adapters, collection: info.name)
        do {
            return (try StoredAdapter(name: name, payload: payload), SHA256.hex(payload))
        } catch {
            throw StoredValue.damaged(table: "adapters", key: key, collection: info.name, detail: "it does not decode: \(error)")
        }
    }
}

/// Decoded adapters by the SHA-256 of their stored payload (content-addressed, so an entry can never
/// be stale: a replaced adapter has another digest), so that a search does not decode 600 KB.
final class AdapterCache: @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`.
    static let shared = AdapterCache()
    private let lock = NSLock()
    private var entries: [String: QueryAdapter] = [:]
    private var order: [String] = []

    func get(_ digest: String) -> QueryAdapter? {
        lock.lock(); defer { lock.unlock() }
        return entries[digest]
    }

    func put(_ digest: String, _ adapter: QueryAdapter) {
        lock.lock(); defer { lock.unlock() }
        if entries[digest] == nil { order.append(digest) }
        entries[digest] = adapter
        while order.count > 16 { entries[order.removeFirst()] = nil }
    }
}

/// Applying a tuning record (log type 7) to LMDB.
enum TuningApply {
    static func apply(number: UInt32, change: TuningChange, settings: TuningSettings?, txn: LMDBTransaction, tables: Tables) throws {
        var info = try Database.info(number: number, txn: txn, tables: tables)
        switch change {
        case .none: break
        case .put(let name, let payload):
            let key = StoredAdapter.key(number, name)
            try txn.put(tables.adapters, key, StoredValue.seal(payload, key: key))
        case .remove(let name):
            try txn.delete(tables.adapters, StoredAdapter.key(number, name))
        }
        info.tuning = settings
        try txn.put(tables.catalog, Array(info.name.utf8), try info.stored())
    }
}

/// What a tuning record does to the adapters table.
enum TuningChange: Equatable {
    case none
    case put(name: String, payload: [UInt8])
    case remove(name: String)
}
