import CZstd

/// zstd compression of stored blobs (document text above a size threshold).
/// A frame records its decompressed size, which `decompress` checks against a caller-given bound
/// so that a damaged or hostile frame cannot make it allocate without limit.
public enum Zstd {
    /// Compresses `bytes` into one zstd frame at `level` (3 is zstd's default).
    public static func compress(_ bytes: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        let bound = ZSTD_compressBound(bytes.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            bytes.withUnsafeBytes { i in ZSTD_compress(o.baseAddress, bound, i.baseAddress, i.count, level) }
        }
        if ZSTD_isError(n) != 0 {
            throw StorageError(.compression, "zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        out.removeLast(bound - n)
        return out
    }

    /// Decompresses one zstd frame whose content size is recorded and at most `maxSize` bytes.
    public static func decompress(_ frame: [UInt8], maxSize: Int) throws -> [UInt8] {
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest UInt64 values.
        guard size < UInt64.max - 1 else { throw StorageError(.compression, "a zstd frame without a valid content size") }
        guard size <= UInt64(maxSize) else {
            throw StorageError(.compression, "a zstd frame claims \(size) bytes, above the limit of \(maxSize)")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        let n = out.withUnsafeMutableBytes { o in
            frame.withUnsafeBytes { i in ZSTD_decompress(o.baseAddress, o.count, i.baseAddress, i.count) }
        }
        if ZSTD_isError(n) != 0 {
            throw StorageError(.compression, "zstd decompression failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        guard n == Int(size) else { throw StorageError(.compression, "a zstd frame decompressed to \(n) bytes, not the \(size) it records") }
        return out
    }
}
