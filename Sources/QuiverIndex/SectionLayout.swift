import QuiverCore

/// Where the sections of a segment file go, as both segment codecs (`HNSWCodec`, `IVFPQCodec`) lay
/// them out: after a fixed-size header, each section starts at the first multiple of 64 at or after
/// the end of the previous one (the padding is zero), and the file ends exactly at the end of the
/// last section. A decoder compares the section table it reads with this layout.
struct SectionLayout {
    var offsets: [Int]
    var lengths: [Int]
    /// The size of the whole file.
    var total: Int

    /// The layout of sections of `count x width` bytes each, in order; nil when a size or offset
    /// would overflow Int (the caller treats that input as corrupt).
    init?(headerSize: Int, sections: [(count: Int, width: Int)]) {
        offsets = []
        lengths = []
        var at = headerSize
        for (i, s) in sections.enumerated() {
            let (length, o1) = s.count.multipliedReportingOverflow(by: s.width)
            let (end, o2) = at.addingReportingOverflow(length)
            if o1 || o2 || end > Int.max - 64 { return nil }
            offsets.append(at)
            lengths.append(length)
            at = i == sections.count - 1 ? end : (end + 63) & ~63
        }
        total = at
    }

    /// The bytes of section `i` of `bytes`.
    func section(_ i: Int, of bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[offsets[i] ..< offsets[i] + lengths[i]])
    }

    /// Checks a decoded file against this layout: its section table at `tableOffset` (per section
    /// 24 bytes: u64 LE offset, u64 LE length, u32 LE CRC32C of the section, u32 LE reserved, which
    /// must be 0 when `reservedZero`), its total size, and with `checksums` every section's CRC32C.
    /// Throws `IndexError(.corrupt)` at the offending offset.
    func check(_ bytes: UnsafeRawBufferPointer, header: CodecHeader, tableOffset: Int, reservedZero: Bool, checksums: Bool) throws {
        var crcs = [UInt32](repeating: 0, count: offsets.count)
        for i in 0..<offsets.count {
            let e = tableOffset + 24 * i
            guard header.u64(e) == UInt64(offsets[i]), header.u64(e + 8) == UInt64(lengths[i]), !reservedZero || header.u32(e + 20) == 0 else {
                throw IndexError(.corrupt, "section \(i) at \(header.u64(e)) of \(header.u64(e + 8)) bytes; the header implies \(offsets[i]) of \(lengths[i])", offset: e)
            }
            crcs[i] = header.u32(e + 16)
        }
        guard bytes.count == total else {
            throw IndexError(.corrupt, "input of \(bytes.count) bytes; the header implies \(total)", offset: min(bytes.count, total))
        }
        if checksums {
            for i in 0..<offsets.count where CRC32C.checksum(section(i, of: bytes)) != crcs[i] {
                throw IndexError(.corrupt, "checksum mismatch in section \(i)", offset: offsets[i])
            }
        }
    }
}

extension SectionLayout {
    /// What a codec's streaming `encode` writes, collected into one array (`size` bytes reserved).
    static func bytes(reserving size: Int, _ encode: (_ write: (UnsafeRawBufferPointer) -> Void) throws -> Void) rethrows -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(size)
        try encode { out.append(contentsOf: $0) }
        return out
    }
}

/// The checks both segment codecs make first on a file's fixed-size header, whose first 16 bytes
/// and last 4 they share: bytes 0..<8 the magic, u32 LE at 8 the format version, u32 LE at 12 the
/// header size, u32 LE at `size - 4` the CRC32C of the bytes before it. Throws `IndexError` (`.corrupt`,
/// or `.unsupportedVersion`) naming the offset, as the codecs' format descriptions say.
struct CodecHeader {
    let base: UnsafeRawPointer

    /// The header of an input being decoded (counted as one decode: `CodecCalls`).
    /// Versions `oldest...version` are accepted (`version` alone by default); `u32(8)` is the one found.
    init(_ bytes: UnsafeRawBufferPointer, size: Int, magic: [UInt8], version: UInt32, oldest: UInt32? = nil, what: String) throws {
        CodecCalls.decoded()
        guard bytes.count >= size, let base = bytes.baseAddress else {
            throw IndexError(.corrupt, "input of \(bytes.count) bytes is shorter than the \(size)-byte header", offset: bytes.count)
        }
        self.base = base
        guard Array(bytes[0..<8]) == magic else { throw IndexError(.corrupt, "bad magic: not \(what)", offset: 0) }
        let found = u32(8)
        let first = oldest ?? version
        guard (first...version).contains(found) else {
            let reads = first == version ? "version \(version)" : "versions \(first) to \(version)"
            throw IndexError(.unsupportedVersion, "format version \(found); this build reads \(reads)", offset: 8)
        }
        guard u32(12) == UInt32(size) else { throw IndexError(.corrupt, "header size \(u32(12)), expected \(size)", offset: 12) }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == u32(size - 4) else {
            throw IndexError(.corrupt, "header checksum mismatch", offset: size - 4)
        }
    }

    func u32(_ o: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
    func u64(_ o: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
}
