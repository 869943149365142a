import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage
import QuiverTuning

/*
 A collection's settings file (`quiver export <c> <file> --format settings`, `Collection.exportSettings`;
 docs/file-formats.md has the same text). One JSON object, keys sorted:

   format        "quiver-collection-settings"
   version       1
   collection    the exported collection's name (information only: import applies it to any collection)
   dimension     its dimension
   metric        its metric (cosine, dot, l2)
   encoder       its encoder binding: name, identifier, dimension, weightsChecksum (absent without one)
   tuning        its TuningSettings (adapter, adapterDigest, fusion), as in the catalog (absent: none)
   adapters      every stored query adapter, by name: {name, kind, sha256, payload}, payload being the
                 adapter's stored payload (the `adapters` table's value without its CRC trailer:
                 AdapterStore.swift) in base64, sha256 its SHA-256 in hex

 `Collection.importSettings` applies such a file to a collection of the same dimension, metric and
 encoder (identifier and weights), or refuses it naming what differs; it checks every adapter's
 digest, that it decodes, and that it was trained for that encoder before it writes anything, then
 stores the adapters (replacing those of the same names) and the tuning defaults.
*/

/// A collection's settings as `Collection.exportSettings` writes them: what it must match to take
/// them (dimension, metric, encoder) and its tuning (query adapters and the default fusion).
public struct CollectionSettingsFile: Sendable, Equatable, Codable {
    public static let formatName = "quiver-collection-settings"

    public var format: String
    public var version: Int
    public var collection: String
    public var dimension: Int
    public var metric: Metric
    public var encoder: EncoderBinding?
    public var tuning: TuningSettings?
    public var adapters: [ExportedAdapter]

    /// One stored query adapter.
    public struct ExportedAdapter: Sendable, Equatable, Codable {
        public var name: String
        /// `linear` or `lowrank:R` (information; the payload holds it too).
        public var kind: String
        /// SHA-256 of the payload, hex.
        public var sha256: String
        /// The stored payload, base64.
        public var payload: String
    }
}

extension Collection {
    /// The collection's settings from one snapshot: its dimension, metric and encoder, its tuning
    /// defaults and every stored query adapter.
    public func settings() throws -> CollectionSettingsFile {
        try database.readTransaction { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            var names: [String] = []
            try txn.forEach(database.tables.adapters, prefix: Keys.collection(info.number)) { k, _ in
                names.append(String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self))
                return true
            }
            let adapters = try names.map { n -> CollectionSettingsFile.ExportedAdapter in
                guard let (stored, digest) = try StoredAdapter.read(current, n, txn: txn, tables: database.tables) else {
                    throw QuiverError.storage(StorageError(.corrupt, "collection '\(name)': adapter '\(n)' vanished within one snapshot"))
                }
                return .init(name: n, kind: stored.adapter.kind.description, sha256: digest, payload: Data(try stored.payload()).base64EncodedString())
            }
            return CollectionSettingsFile(format: CollectionSettingsFile.formatName, version: 1, collection: name, dimension: current.dimension,
                                          metric: current.metric, encoder: current.encoder, tuning: current.tuning, adapters: adapters)
        }
    }

    /// Writes `settings()` to `path` as JSON (a new file: atomically, through a temporary file and
    /// a rename). Returns the number of adapters written.
    @discardableResult
    public func exportSettings(to path: String) throws -> Int {
        let s = try settings()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let bytes = Array(try encoder.encode(s)) + [UInt8(ascii: "\n")]
        let tmp = path + ".tmp-export"
        try? FileSystem.remove(tmp)
        try wrapStorage {
            var out = try FileWriter(path: tmp)
            try out.write(bytes)
            try out.finish()
            try FileSystem.rename(tmp, path)
            try FileSystem.syncDirectory(FileSystem.parentDirectory(of: URL(fileURLWithPath: path).standardizedFileURL.path))
        }
        return s.adapters.count
    }

    /// Reads a settings file that `exportSettings` wrote and applies it (`applySettings`).
    /// Returns the number of adapters stored.
    @discardableResult
    public func importSettings(from path: String) throws -> Int {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw QuiverError.invalidArgument("cannot read settings file \(path)")
        }
        let file: CollectionSettingsFile
        do {
            file = try JSONDecoder().decode(CollectionSettingsFile.self, from: data)
        } catch {
            throw QuiverError.invalidArgument("\(path) is not a collection settings file (`quiver export --format settings`): \(error)")
        }
        return try applySettings(file, source: path)
    }

    /// Applies `file` to this collection: its query adapters (replacing those of the same names)
    /// and its tuning defaults. Refused, with nothing written, when the file is of another format or
    /// version, when the collection's dimension, metric or encoder differ from the file's, or when an
    /// adapter's payload does not match its digest, does not decode, or was trained for another
    /// encoder, or the default adapter or fusion names nothing usable. Returns the adapters stored.
    @discardableResult
    public func applySettings(_ file: CollectionSettingsFile, source: String = "settings") throws -> Int {
        guard file.format == CollectionSettingsFile.formatName, file.version == 1 else {
            throw QuiverError.invalidArgument("\(source): format '\(file.format)' version \(file.version) is not quiver-collection-settings version 1")
        }
        let current = try database.describe(name)
        guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
        guard file.dimension == current.dimension, file.metric == current.metric else {
            throw QuiverError.invalidArgument("\(source): the settings of '\(file.collection)' (dimension \(file.dimension), \(file.metric)) do not fit '\(name)' (dimension \(current.dimension), \(current.metric))")
        }
        guard file.encoder == current.encoder else {
            throw QuiverError.encoder("\(source): the settings of '\(file.collection)' are for encoder \(file.encoder?.identifier ?? "none") (weights \(file.encoder?.weightsChecksum.prefix(16) ?? "none")), not the encoder of '\(name)' (\(current.encoder?.identifier ?? "none"), weights \(current.encoder?.weightsChecksum.prefix(16) ?? "none")); its adapters adapt another query tower")
        }
        var adapters: [(StoredAdapter, [UInt8])] = []
        var seen = Set<String>()
        for a in file.adapters {
            try StoredAdapter.checkName(a.name)
            guard seen.insert(a.name).inserted else { throw QuiverError.invalidArgument("\(source): adapter '\(a.name)' is given twice") }
            guard let bytes = Data(base64Encoded: a.payload).map(Array.init) else {
                throw QuiverError.invalidArgument("\(source): adapter '\(a.name)': the payload is not base64")
            }
            guard SHA256.hex(bytes) == a.sha256 else {
                throw QuiverError.invalidArgument("\(source): adapter '\(a.name)': the payload's SHA-256 is \(SHA256.hex(bytes).prefix(16)), not the \(a.sha256.prefix(16)) the file names (the file is damaged)")
            }
            let stored: StoredAdapter
            do { stored = try StoredAdapter(name: a.name, payload: bytes) } catch {
                throw QuiverError.invalidArgument("\(source): adapter '\(a.name)' does not decode: \(error)")
            }
            guard stored.adapter.dimension == current.dimension, let binding = current.encoder,
                  stored.encoderIdentifier == binding.identifier, stored.encoderWeights == binding.weightsChecksum else {
                throw QuiverError.encoder("\(source): adapter '\(a.name)' was trained for encoder \(stored.encoderIdentifier) (weights \(stored.encoderWeights.prefix(16))), not the encoder of '\(name)'")
            }
            adapters.append((stored, bytes))
        }
        let tuning = file.tuning
        if let t = tuning {
            if let a = t.adapter {
                guard let given = adapters.first(where: { $0.0.name == a }), SHA256.hex(given.1) == t.adapterDigest else {
                    throw QuiverError.invalidArgument("\(source): the default adapter '\(a)' is not among the file's adapters with the digest the settings name")
                }
            } else if t.adapterDigest != nil {
                throw QuiverError.invalidArgument("\(source): the tuning settings name an adapter digest but no adapter")
            }
            if let f = t.fusion { try TunedFusion.check(f, source: source) }
        }
        // Everything is checked: one write per adapter (a record holds one), then the defaults.
        for (stored, bytes) in adapters {
            try database.write { txn in
                let now = try database.info(name, txn: txn)
                guard now.number == info.number else { throw QuiverError.unknownCollection(name) }
                // A replaced default keeps serving: the catalog's digest follows its new payload.
                var kept = now.tuning
                if kept?.adapter == stored.name { kept?.adapterDigest = SHA256.hex(bytes) }
                return (.tuning(number: info.number, change: .put(name: stored.name, payload: bytes), settings: kept), ())
            }
        }
        try database.write { txn in
            guard try database.info(name, txn: txn).number == info.number else { throw QuiverError.unknownCollection(name) }
            return (.tuning(number: info.number, change: .none, settings: tuning), ())
        }
        return adapters.count
    }
}

extension TunedFusion {
    /// Refuses a stored fusion this version cannot apply or whose parameters are out of range.
    static func check(_ f: TunedFusion, source: String) throws {
        switch f.fusion {
        case .reciprocalRank(let k)? where (1...100_000).contains(k): return
        case .weighted(let w)?, .distribution(let w)?: if (0...1).contains(w) { return }
        default: break
        }
        throw QuiverError.invalidArgument("\(source): the fusion \(f) is not one this version applies (rrf with k 1 to 100000, weighted or distribution with a dense weight from 0 to 1)")
    }
}
