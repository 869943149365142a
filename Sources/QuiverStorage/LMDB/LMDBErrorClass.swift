import CLMDB

extension StorageError {
    /// Whether an LMDB error concerns the environment at this moment (the system, the map, the
    /// reader table, a damaged or incompatible file) rather than the operation's own arguments
    /// (`MDB_BAD_VALSIZE`, `MDB_TXN_FULL`, ...), which fail the same way every time.
    public var isEnvironmentalLMDBError: Bool {
        guard kind == .lmdb else { return false }
        if code > 0 { return true }  // an errno value
        return [MDB_MAP_FULL, MDB_READERS_FULL, MDB_MAP_RESIZED, MDB_PANIC, MDB_CORRUPTED, MDB_PAGE_NOTFOUND,
                MDB_INVALID, MDB_VERSION_MISMATCH, MDB_TLS_FULL, MDB_BAD_RSLOT].contains(code)
    }
}
