import Foundation
import QuiverCore

/// The rows a filter allows in one collection, with what the planner found on the way: what a
/// search plan carries, what `explain` reports, and what `FilterCache` keeps.
struct AllowedRows {
    /// The allowed rows.
    let set: Bitset
    /// The number of allowed rows.
    let count: Int
    /// The planner's estimate before reading documents: the candidates from payload indexes, or
    /// every document when no index bounds the filter.
    let candidates: Int
    /// The payload indexes that bounded the filter, sorted.
    let indexes: [String]
    /// The field catalog's figures of the fields the filter names (nil: no complete catalog).
    let fields: [FieldStats]?
}

/// The allowed rows of recent filters, per collection, valid until the collection next changes:
/// applications tend to repeat a few filters across many queries, and building the allowed set of
/// a broad filter (tens of thousands of index entries) costs more than the search itself. An entry
/// is keyed by the collection, the filter and the collection's write generation, so a write makes
/// every older entry unreachable; the cache holds at most `capacity` entries.
final class FilterCache: @unchecked Sendable {
    // @unchecked: all state is guarded by `lock`.
    struct Key: Hashable {
        let collection: UInt32
        let generation: UInt64
        let filter: Filter
    }

    private let lock = NSLock()
    private var entries: [Key: AllowedRows] = [:]
    let capacity = 64

    func get(_ key: Key) -> AllowedRows? {
        lock.lock(); defer { lock.unlock() }
        return entries[key]
    }

    /// Forgets every entry (a read-only database reloaded its segments: generations restart).
    func removeAll() {
        lock.lock(); defer { lock.unlock() }
        entries.removeAll()
    }

    func put(_ key: Key, _ entry: AllowedRows) {
        lock.lock(); defer { lock.unlock() }
        if entries.count >= capacity {
            // Entries of older generations are dead; drop them first, then everything if still full.
            entries = entries.filter { $0.key.collection != key.collection || $0.key.generation == key.generation }
            if entries.count >= capacity { entries.removeAll() }
        }
        entries[key] = entry
    }
}
