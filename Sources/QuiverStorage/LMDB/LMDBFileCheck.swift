#if canImport(Glibc)
import Glibc
#endif

/// Checks an existing LMDB data file against LMDB's own metadata before LMDB maps it.
///
/// LMDB maps `data.mdb` and reads pages through the map; a page past the end of the file faults
/// (SIGBUS) and kills the process. A truncated file therefore killed every process that opened
/// it, readers included. This check reads the two meta pages with `pread` (the layout of LMDB 0.9,
/// `mdb.c`: a 16-byte page header, then `MDB_meta`), picks the one LMDB would use (the greater
/// transaction id), and requires every page up to that meta's last page (`mm_last_pg`) to be in
/// the file. LMDB's own comment on `mm_last_pg` says the file may be shorter when the free list
/// holds the final pages (a page allocated and freed in one transaction is never written), so when
/// the file is short the free database is walked (with `pread`, never through a map) and the
/// missing pages must all be free ones.
///
/// Layout (64-bit, LMDB 0.9): page header = pgno u64, pad u16, flags u16 (P_META 0x08),
/// lower u16, upper u16. `MDB_meta` after it: magic u32 (0xBEEFC0DE), version u32 (1), address
/// u64, mapsize u64, two `MDB_db` of 48 bytes (pad u32 (the free DB's pad is the page size),
/// flags u16, depth u16, branch/leaf/overflow pages u64, entries u64, root u64), last page u64,
/// transaction id u64.
enum LMDBFileCheck {
    static let pageHeaderSize = 16
    static let metaSize = 136
    static let magic: UInt32 = 0xBEEF_C0DE
    static let dataVersion: UInt32 = 1
    static let pMeta: UInt16 = 0x08, pBranch: UInt16 = 0x01, pLeaf: UInt16 = 0x02, pOverflow: UInt16 = 0x04
    static let invalidPage = UInt64.max

    struct Meta {
        var pageSize: Int
        var freeRoot: UInt64
        var lastPage: UInt64
        var transaction: UInt64
    }

    /// Throws `StorageError(.corrupt)` naming `path` when the file cannot be a whole LMDB file.
    static func check(_ path: String) throws {
        let file: File
        do { file = try File(path: path, mode: .readOnly, hooked: false) } catch {
            throw StorageError(.corrupt, "cannot read the LMDB data file \(path) to check it: \(error)")
        }
        defer { file.close() }
        // A writer in another process may commit while this runs: a freed page it reuses can make
        // the free-list walk read a newer page. Retry when the meta moved meanwhile.
        var attempt = 0
        while true {
            let size = try file.size()
            let meta = try pickMeta(file, size: size)
            do {
                try checkLength(file, meta: meta, size: size)
                return
            } catch let error as StorageError {
                attempt += 1
                let again = try? pickMeta(file, size: try file.size())
                if attempt >= 3 || again?.transaction == meta.transaction { throw error }
            }
        }
    }

    static func fail(_ path: String, _ what: String) -> StorageError {
        StorageError(.corrupt, "the LMDB data file \(path) is damaged: \(what) (restore it from a backup)")
    }

    /// The meta LMDB would use: both meta pages must be valid (LMDB refuses the file otherwise),
    /// the one with the greater transaction id wins.
    static func pickMeta(_ file: File, size: Int) throws -> Meta {
        if size == 0 { throw fail(file.path, "it is empty (0 bytes)") }
        let first = try readMeta(file, at: 0, size: size, which: "the first meta page")
        let second = try readMeta(file, at: first.pageSize, size: size, which: "the second meta page")
        guard second.pageSize == first.pageSize else {
            throw fail(file.path, "its meta pages disagree on the page size (\(first.pageSize) and \(second.pageSize))")
        }
        return second.transaction > first.transaction ? second : first
    }

    static func readMeta(_ file: File, at offset: Int, size: Int, which: String) throws -> Meta {
        let want = pageHeaderSize + metaSize
        guard size >= offset + want else {
            throw fail(file.path, "it is \(size) bytes long, too short to hold \(which) (\(want) bytes at offset \(offset)); it is truncated or not an LMDB file")
        }
        let b = try file.read(count: want, at: offset)
        guard b.count == want else { throw fail(file.path, "\(which) could not be read whole") }
        let flags = u16(b, 10)
        guard flags & pMeta != 0 else { throw fail(file.path, "\(which) (offset \(offset)) is not an LMDB meta page; not an LMDB file") }
        let m = pageHeaderSize
        guard u32(b, m) == magic else { throw fail(file.path, "\(which) (offset \(offset)) lacks LMDB's magic number; not an LMDB file") }
        guard u32(b, m + 4) == dataVersion else { throw fail(file.path, "\(which) has LMDB data version \(u32(b, m + 4)), not \(dataVersion)") }
        let pageSize = Int(u32(b, m + 24))
        guard pageSize >= 512, pageSize <= 0x8000, pageSize & (pageSize - 1) == 0 else {
            throw fail(file.path, "\(which) records an impossible page size \(pageSize)")
        }
        let lastPage = u64(b, m + 120)
        guard lastPage >= 1, lastPage < UInt64(Int.max) / UInt64(pageSize) else {
            throw fail(file.path, "\(which) records an impossible last page \(lastPage)")
        }
        return Meta(pageSize: pageSize, freeRoot: u64(b, m + 24 + 40), lastPage: lastPage, transaction: u64(b, m + 128))
    }

    /// Every page up to `meta.lastPage` must be in the file, unless the free list holds it.
    static func checkLength(_ file: File, meta: Meta, size: Int) throws {
        let pagesInFile = UInt64(size / meta.pageSize)
        let needed = meta.lastPage + 1
        if pagesInFile >= needed { return }
        // The file is shorter than the last page: only free pages may be missing.
        let missing = needed - pagesInFile
        let short = "it is \(size) bytes long, but its meta page (transaction \(meta.transaction)) uses pages up to \(meta.lastPage) of \(meta.pageSize) bytes (\(needed * UInt64(meta.pageSize)) bytes)"
        guard missing <= 1 << 24 else { throw fail(file.path, short + "; it is truncated") }
        var free = Set<UInt64>()
        try collectFreePages(file, meta: meta, pagesInFile: pagesInFile, into: &free, short: short)
        for page in pagesInFile..<needed where !free.contains(page) {
            throw fail(file.path, short + "; page \(page), past the end, is in use: it is truncated")
        }
    }

    /// Walks the free database (a B-tree keyed by transaction id whose values are page-number
    /// lists: count, then the numbers) with `pread`, collecting the free page numbers.
    static func collectFreePages(_ file: File, meta: Meta, pagesInFile: UInt64, into free: inout Set<UInt64>, short: String) throws {
        guard meta.freeRoot != invalidPage else { return }
        var stack: [(page: UInt64, depth: Int)] = [(meta.freeRoot, 0)]
        var visited = 0
        while let (pgno, depth) = stack.popLast() {
            visited += 1
            guard depth < 64, visited < 1 << 22 else { throw fail(file.path, short + "; its free list cannot be read (a loop)") }
            let page = try readPage(file, pgno, meta: meta, pagesInFile: pagesInFile, short: short, what: "a free-list page")
            let flags = u16(page, 10), lower = Int(u16(page, 12))
            guard lower >= pageHeaderSize, lower <= meta.pageSize else { throw fail(file.path, short + "; free-list page \(pgno) is malformed") }
            let keys = (lower - pageHeaderSize) >> 1
            for i in 0..<keys {
                let node = Int(u16(page, pageHeaderSize + 2 * i))
                guard node + 8 <= meta.pageSize else { throw fail(file.path, short + "; free-list page \(pgno) is malformed") }
                let lo = UInt64(u16(page, node)), hi = UInt64(u16(page, node + 2)), nodeFlags = u16(page, node + 4)
                let keySize = Int(u16(page, node + 6))
                if flags & pBranch != 0 {
                    stack.append((lo | hi << 16 | UInt64(nodeFlags) << 32, depth + 1))
                    continue
                }
                guard flags & pLeaf != 0 else { throw fail(file.path, short + "; free-list page \(pgno) is neither a branch nor a leaf") }
                let dataSize = Int(lo | hi << 16)
                let dataStart = node + 8 + keySize
                var ids: [UInt8]
                if nodeFlags & 0x01 != 0 {  // F_BIGDATA: the list is on overflow pages
                    guard dataStart + 8 <= meta.pageSize else { throw fail(file.path, short + "; free-list page \(pgno) is malformed") }
                    let overflow = u64(page, dataStart)
                    let pages = UInt64((pageHeaderSize - 1 + dataSize) / meta.pageSize + 1)
                    guard overflow < pagesInFile, pages <= pagesInFile - overflow else {
                        throw fail(file.path, short + "; the free list's overflow pages \(overflow)... are past the end: it is truncated")
                    }
                    ids = try file.read(count: dataSize, at: Int(overflow) * meta.pageSize + pageHeaderSize)
                } else {
                    guard dataStart + dataSize <= meta.pageSize else { throw fail(file.path, short + "; free-list page \(pgno) is malformed") }
                    ids = Array(page[dataStart..<(dataStart + dataSize)])
                }
                guard ids.count >= 8 else { continue }
                let count = Int(min(u64(ids, 0), UInt64(ids.count / 8 - 1)))
                for k in 0..<count { free.insert(u64(ids, 8 * (k + 1))) }
            }
        }
    }

    static func readPage(_ file: File, _ pgno: UInt64, meta: Meta, pagesInFile: UInt64, short: String, what: String) throws -> [UInt8] {
        guard pgno < pagesInFile else { throw fail(file.path, short + "; \(what) (page \(pgno)) is past the end: it is truncated") }
        let page = try file.read(count: meta.pageSize, at: Int(pgno) * meta.pageSize)
        guard page.count == meta.pageSize else { throw fail(file.path, short + "; \(what) (page \(pgno)) could not be read whole") }
        return page
    }

    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
}
