import QuiverCore

/*
 The write-ahead log file format (version 1). Every mutation of a Quiver database is appended here
 before it is applied to LMDB; recovery replays the log past the sequence number LMDB recorded.

 A log is a directory of files named `<first sequence number, 20 decimal digits>.wal`, e.g.
 `00000000000000000001.wal`. Sequence numbers start at 1 and grow by exactly 1 from record to record,
 across files. All integers are little-endian.

 File header (24 bytes):
   offset 0   8 bytes  magic "QUIVRWAL"
   offset 8   u32      format version (1)
   offset 12  u64      sequence number of the first record this file holds (or will hold)
   offset 20  u32      CRC-32C of bytes 0..<20

 Then zero or more records, back to back:
   offset 0   u32      CRC-32C of bytes 4..<(17 + length) of the record (everything after this field)
   offset 4   u32      length of the payload in bytes (at most 256 MiB)
   offset 8   u64      sequence number
   offset 16  u8       record type (defined by the layer above; the log does not interpret it)
   offset 17  length bytes of payload

 A record is valid when it lies wholly inside the file, its length is within bounds, its CRC matches
 and its sequence number is the previous record's plus one (the header's number for the first).

 Recovery at open reads every file in order. The first invalid record of the last file ends the log:
 - if no valid record can be found anywhere after it, the tail is torn (a crash interrupted an
   append); the file is truncated to the end of the last valid record, and fsynced;
 - otherwise the log is damaged in the middle, and open fails with an error naming the file and
   offset, because dropping the valid records after the damage would lose acknowledged writes.
 An invalid record in any file but the last is likewise damage in the middle. A last file shorter
 than its header (a crash while rolling over to a new file) is removed.

 Truncation works on whole files: `truncate(upTo: n)` removes each file all of whose records have
 sequence numbers <= n, rolling over to a fresh file first when the active file is one of them.
*/

/// One record of the write-ahead log.
public struct WALRecord: Sendable, Equatable {
    public let sequence: UInt64
    public let type: UInt8
    public let payload: [UInt8]

    public init(sequence: UInt64, type: UInt8, payload: [UInt8]) {
        self.sequence = sequence
        self.type = type
        self.payload = payload
    }
}

/// Encoding and validation of WAL files and records (see the format above).
public enum WALFormat {
    public static let magic: [UInt8] = Array("QUIVRWAL".utf8)
    public static let version: UInt32 = 1
    public static let fileHeaderSize = 24
    public static let recordHeaderSize = 17
    public static let maxPayload = 256 << 20

    public static func fileName(firstSequence: UInt64) -> String {
        let digits = String(firstSequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".wal"
    }

    /// The first sequence number named by a log file name, or nil for other names.
    public static func firstSequence(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".wal"), name.count == 24 else { return nil }
        return UInt64(name.prefix(20))
    }

    public static func encodeFileHeader(firstSequence: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: fileHeaderSize)
        w.write(raw: magic)
        w.write(version)
        w.write(firstSequence)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The first sequence number recorded in a file header, or nil when the header is invalid.
    public static func decodeFileHeader(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        guard bytes.count >= fileHeaderSize else { return nil }
        let b = Array(bytes.prefix(fileHeaderSize))
        guard Array(b[0..<8]) == magic else { return nil }
        var r = ByteReader(b, offset: 8)
        guard let v = try? r.readUInt32(), v == version,
              let first = try? r.readUInt64(),
              let crc = try? r.readUInt32(),
              crc == CRC32C.checksum(b[0..<20]) else { return nil }
        return first
    }

    /// Appends one encoded record to `out`.
    public static func encodeRecord(sequence: UInt64, type: UInt8, payload: [UInt8], into out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0])
        var w = ByteWriter(capacity: 13)
        w.write(UInt32(payload.count))
        w.write(sequence)
        w.write(type)
        out.append(contentsOf: w.bytes)
        out.append(contentsOf: payload)
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 4)...])) }
        withUnsafeBytes(of: crc.littleEndian) { c in for i in 0..<4 { out[start + i] = c[i] } }
    }

    /// Decodes the record at `offset` of `file` when it is wholly present and its checksum holds
    /// (the sequence number is checked by the caller). Returns the record and its encoded size.
    public static func decodeRecord(_ file: [UInt8], at offset: Int) -> (WALRecord, Int)? {
        guard file.count - offset >= recordHeaderSize else { return nil }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(file[o + $1]) << (8 * $1) } }
        let crc = u32(offset)
        let length = Int(u32(offset + 4))
        guard length <= maxPayload, file.count - offset - recordHeaderSize >= length else { return nil }
        let end = offset + recordHeaderSize + length
        let actual = file.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(offset + 4)..<end])) }
        guard actual == crc else { return nil }
        let seq = (0..<8).reduce(UInt64(0)) { $0 | UInt64(file[offset + 8 + $1]) << (8 * $1) }
        let record = WALRecord(sequence: seq, type: file[offset + 16], payload: Array(file[(offset + recordHeaderSize)..<end]))
        return (record, recordHeaderSize + length)
    }
}
