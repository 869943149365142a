import Foundation
import QuiverStorage

/// Catalog entries by collection number, for what names collections by number (log records, row
/// keys): every applied write looks its collection up, and the catalog is keyed by name, so without
/// this each lookup would scan the catalog and decode the JSON of the entries before the one wanted.
///
/// An entry is served only when the catalog value it was decoded from is, byte for byte (its
/// checksum trailer included), the value under that name in the snapshot being read: one LMDB get
/// and a comparison. Nothing therefore has to invalidate it, and no transaction can see another's
/// entry: a create, drop or alter of a collection (committed or aborted), a replay or a repair, and a
/// read-only database whose writer changed the catalog all either leave the stored value as it was
/// or make the comparison fail, and then the lookup scans the snapshot as before and refills.
///
/// Thread-safety: safe to share; lookups from any number of threads (the state is behind `lock`).
final class CatalogCache: @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`.
    private struct Entry {
        let key: [UInt8]
        let stored: [UInt8]
        let info: CollectionInfo
    }

    private let lock = NSLock()
    private var entries: [UInt32: Entry] = [:]

    /// The catalog entry of collection `number` in `txn`'s snapshot. A damaged entry of another
    /// collection is passed over; when none matches and one is damaged, that damage is the error (it
    /// may be this collection's entry).
    func info(number: UInt32, txn: LMDBTransaction, catalog: LMDBTable) throws -> CollectionInfo {
        lock.lock()
        let cached = entries[number]
        lock.unlock()
        if let cached, try txn.withValue(catalog, cached.key, { $0.map { Self.equal($0, cached.stored) } ?? false }) {
            return cached.info
        }
        return try scan(number: number, txn: txn, catalog: catalog)
    }

    private func scan(number: UInt32, txn: LMDBTransaction, catalog: LMDBTable) throws -> CollectionInfo {
        var found: Entry?
        var damage: Error?
        try txn.forEach(catalog) { k, v in
            do {
                let info = try CollectionInfo(stored: v, key: k)
                if info.number == number { found = Entry(key: Array(k), stored: Array(v), info: info) }
            } catch {
                damage = damage ?? error
            }
            return found == nil
        }
        lock.lock()
        entries[number] = found
        lock.unlock()
        if found == nil, let damage { throw damage }
        guard let entry = found else { throw StorageError(.corrupt, "collection number \(number) is named by a log record but not in the catalog") }
        return entry.info
    }

    private static func equal(_ value: UnsafeRawBufferPointer, _ bytes: [UInt8]) -> Bool {
        value.count == bytes.count && bytes.withUnsafeBytes { memcmp($0.baseAddress!, value.baseAddress!, value.count) == 0 }
    }
}
