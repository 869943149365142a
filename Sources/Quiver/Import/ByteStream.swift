import QuiverStorage

/// Reads a file front to back in 1 MiB chunks, so that imports of any size run in bounded memory.
/// Tracks the byte offset of what it hands out, which is what an import checkpoint records.
struct ByteStream {
    let file: File
    let path: String
    let size: Int
    private var buffer: [UInt8] = []
    private var start = 0          // next unread index in buffer
    private var bufferOffset = 0   // file offset of buffer[0]
    private var eof = false
    static let chunk = 1 << 20

    init(path: String) throws {
        self.path = path
        file = try File(path: path, mode: .readOnly)
        size = try file.size()
    }

    /// The file offset of the next unread byte.
    var offset: Int { bufferOffset + start }

    /// Moves to `offset` (for a resumed import).
    mutating func seek(to offset: Int) {
        buffer = []
        start = 0
        bufferOffset = offset
        eof = false
    }

    /// Makes at least `n` unread bytes available unless the file ends first; false at end of file.
    private mutating func fill(_ n: Int) throws -> Bool {
        while buffer.count - start < n && !eof {
            if start > 0 {
                buffer.removeFirst(start)
                bufferOffset += start
                start = 0
            }
            // A chunk, but no more than the file held at open (a 100-byte file does not cost a 1 MiB
            // buffer), and at least `n`, so that a file that grew since is still read to its end.
            let at = bufferOffset + buffer.count
            let more = try file.read(count: max(n, min(ByteStream.chunk, size - at)), at: at)
            if more.isEmpty { eof = true } else { buffer.append(contentsOf: more) }
        }
        return buffer.count - start >= n
    }

    /// The next byte without consuming it, or nil at end of file.
    mutating func peek() throws -> UInt8? {
        guard try fill(1) else { return nil }
        return buffer[start]
    }

    /// Consumes and returns one byte, or nil at end of file.
    mutating func byte() throws -> UInt8? {
        guard try fill(1) else { return nil }
        start += 1
        return buffer[start - 1]
    }

    /// Exactly `n` bytes, or nil when fewer remain (then what remains is consumed).
    mutating func bytes(_ n: Int) throws -> [UInt8]? {
        if try !fill(n) {
            start = buffer.count
            return nil
        }
        defer { start += n }
        return Array(buffer[start..<start + n])
    }

    /// The next line without its newline (a trailing `\r` is dropped too), or nil at end of file.
    /// A line longer than `limit` bytes is consumed and returned as nil content with `tooLong`.
    mutating func line(limit: Int) throws -> (bytes: ArraySlice<UInt8>, tooLong: Bool)? {
        guard try fill(1) else { return nil }
        var scanned = 0
        while true {
            if let i = buffer[(start + scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = buffer[start..<i]
                start = i + 1
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                return line.count > limit ? ([], true) : (line, false)
            }
            scanned = buffer.count - start
            if scanned > limit {
                // Skip to the end of this over-long line without holding it.
                while let b = try byte(), b != UInt8(ascii: "\n") {}
                return ([], true)
            }
            if try !fill(scanned + 1) {
                var line = buffer[start...]
                start = buffer.count
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                return (line, false)
            }
        }
    }
}
