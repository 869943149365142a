/// Little-endian binary encoding for every on-disk structure (WAL payloads, LMDB values, segment
/// files). Writers append to a byte array; readers consume a byte array and throw `CodecError` on a
/// short or malformed input instead of trapping, because their input may be a damaged file.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ v: UInt8) { bytes.append(v) }
    public mutating func write(_ v: UInt16) { appendLE(v) }
    public mutating func write(_ v: UInt32) { appendLE(v) }
    public mutating func write(_ v: UInt64) { appendLE(v) }
    public mutating func write(_ v: Int64) { appendLE(UInt64(bitPattern: v)) }
    public mutating func write(_ v: Float) { appendLE(v.bitPattern) }
    public mutating func write(_ v: Double) { appendLE(v.bitPattern) }

    /// Appends raw bytes with no length prefix.
    public mutating func write<C: Collection>(raw: C) where C.Element == UInt8 { bytes.append(contentsOf: raw) }

    /// Appends a LEB128 unsigned varint.
    public mutating func writeVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    /// Appends a varint byte count, then the bytes.
    public mutating func writeBlob<C: Collection>(_ blob: C) where C.Element == UInt8 {
        writeVarint(UInt64(blob.count))
        bytes.append(contentsOf: blob)
    }

    /// Appends a varint byte count, then the UTF-8 bytes of `s`.
    public mutating func writeString(_ s: String) { writeBlob(Array(s.utf8)) }

    /// Appends `floats` as little-endian float32 with no length prefix.
    public mutating func write(floats: [Float]) {
        #if _endian(little)
        // The host's layout is the format's: one bulk copy (a 384-d import spent 16% of its time
        // here when this appended float by float).
        floats.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        bytes.reserveCapacity(bytes.count + floats.count * 4)
        for f in floats { appendLE(f.bitPattern) }
        #endif
    }

    private mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// What a reader found wrong in its input.
public struct CodecError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "\(message) at byte \(offset)" }
}

/// Reads what `ByteWriter` wrote.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    private mutating func readLE<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw CodecError("unexpected end of data reading \(size) bytes", offset: offset) }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return v
    }

    public mutating func readUInt8() throws -> UInt8 { try readLE(UInt8.self) }
    public mutating func readUInt16() throws -> UInt16 { try readLE(UInt16.self) }
    public mutating func readUInt32() throws -> UInt32 { try readLE(UInt32.self) }
    public mutating func readUInt64() throws -> UInt64 { try readLE(UInt64.self) }
    public mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readLE(UInt64.self)) }
    public mutating func readFloat() throws -> Float { Float(bitPattern: try readLE(UInt32.self)) }
    public mutating func readDouble() throws -> Double { Double(bitPattern: try readLE(UInt64.self)) }

    public mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw CodecError("unexpected end of data in a varint", offset: offset) }
            let b = bytes[offset]
            offset += 1
            guard shift < 64 else { throw CodecError("varint longer than 64 bits", offset: offset) }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    /// Reads a varint length, checked against the bytes left and against `limit`.
    public mutating func readLength(limit: Int = Int.max) throws -> Int {
        let start = offset
        let n = try readVarint()
        guard n <= UInt64(remaining), n <= UInt64(limit) else {
            throw CodecError("length \(n) exceeds the \(min(remaining, limit)) bytes allowed", offset: start)
        }
        return Int(n)
    }

    public mutating func readRaw(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw CodecError("unexpected end of data reading \(count) bytes", offset: offset) }
        defer { offset += count }
        return bytes[offset ..< offset + count]
    }

    public mutating func readBlob() throws -> [UInt8] { Array(try readRaw(try readLength())) }

    public mutating func readString() throws -> String {
        let start = offset
        let blob = try readBlob()
        guard let s = String(validating: blob, as: UTF8.self) else { throw CodecError("invalid UTF-8 in a string", offset: start) }
        return s
    }

    public mutating func readFloats(_ count: Int) throws -> [Float] {
        guard count >= 0, remaining / 4 >= count else { throw CodecError("unexpected end of data reading \(count) floats", offset: offset) }
        var out = [Float](repeating: 0, count: count)
        #if _endian(little)
        out.withUnsafeMutableBytes { o in
            bytes.withUnsafeBytes { b in o.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[offset..<(offset + 4 * count)])) }
        }
        offset += 4 * count
        #else
        for i in 0..<count { out[i] = Float(bitPattern: try readLE(UInt32.self)) }
        #endif
        return out
    }
}
