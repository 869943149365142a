import Foundation
import QuiverCore
import QuiverStorage
import QuiverIndex
import QuiverEncoder

/// The parsers that `tools/fuzz/` drives with libFuzzer, one case per fuzz target, and the code that
/// feeds one input to each. The same entry point replays the crashers kept in
/// `tools/fuzz/regressions/<target>/` in the normal test suite, so a finding stays a regression test.
///
/// An input may make a parser throw (that is its job); only a crash, a sanitizer report, a hang or
/// unbounded memory is a finding. A few targets also check a property of what they parsed (a filter
/// prints back to itself, tokenizer output is framed by [CLS] and [SEP], a decoded segment can be
/// searched) with a check that traps, so that a broken invariant is a crash libFuzzer reports.
///
/// Not thread-safe: a `FuzzHarness` reuses one scratch directory, as libFuzzer runs inputs one at a time.
@_spi(Fuzzing) public enum FuzzTarget: String, CaseIterable, Sendable {
    case jsonlImport = "jsonl-import"
    case csvImport = "csv-import"
    case npyReader = "npy-reader"
    case fvecsReader = "fvecs-reader"
    case filterJSON = "filter-json"
    case filterText = "filter-text"
    case walReader = "wal-reader"
    case segmentHNSW = "segment-hnsw"
    case segmentIVFPQ = "segment-ivfpq"
    case safetensorsHeader = "safetensors-header"
    case tokenizer
}

/// Runs inputs through the parser of a `FuzzTarget`, using files in `scratch` for the parsers that
/// read files (importers, the write-ahead log, safetensors).
@_spi(Fuzzing) public struct FuzzHarness: Sendable {
    public let scratch: String
    /// The tokenizer of the `tokenizer` target (nil: that target does nothing).
    public let tokenizer: WordPieceTokenizer?

    /// - Parameters:
    ///   - scratch: a directory this harness alone writes to (created when missing).
    ///   - vocabularyFile: a WordPiece `vocab.txt` for the `tokenizer` target.
    public init(scratch: String, vocabularyFile: String? = nil) throws {
        self.scratch = scratch
        try FileSystem.createDirectory(scratch)
        tokenizer = try vocabularyFile.map { try WordPieceTokenizer(vocabularyFile: $0) }
    }

    /// Feeds `bytes` to `target`'s parser. Errors the parser throws are expected and ignored.
    public func run(_ target: FuzzTarget, _ bytes: [UInt8]) {
        switch target {
        case .jsonlImport: readRows(bytes, format: .jsonl, options: ImportOptions())
        case .csvImport:
            var options = ImportOptions()
            // Typed columns for the seeds that name them; any other column is inferred.
            options.columnTypes = ["price": .float, "count": .int, "ok": .bool, "tags": .list, "name": .string]
            readRows(bytes, format: .csv, options: options)
        case .npyReader: readRows(bytes, format: .npy, options: ImportOptions())
        case .fvecsReader:
            readRows(bytes, format: .fvecs, options: ImportOptions())
            readRows(bytes, format: .bvecs, options: ImportOptions())
        case .filterJSON: filterJSON(bytes)
        case .filterText: filterText(bytes)
        case .walReader: walReader(bytes)
        case .segmentHNSW: segmentHNSW(bytes)
        case .segmentIVFPQ: segmentIVFPQ(bytes)
        case .safetensorsHeader: safetensors(bytes)
        case .tokenizer: tokenize(bytes)
        }
    }

    /// Like `precondition`, but the message survives optimized builds (libFuzzer's log shows it).
    private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz check failed: " + message()) }
    }

    private func write(_ bytes: [UInt8], to path: String) {
        // A failure here is the harness's, not the parser's: stop loudly rather than fuzz nothing.
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            fatalError("fuzz harness: cannot write \(path)")
        }
    }

    // MARK: - Importers

    /// Reads every row of `bytes` as a file of `format` through the importer's row source.
    private func readRows(_ bytes: [UInt8], format: ImportOptions.Format, options: ImportOptions) {
        let path = scratch + "/input." + format.rawValue
        write(bytes, to: path)
        do {
            var source = try makeRowSource(format, path: path, options: options)
            var previous = source.position.offset
            while let row = try source.next() {
                // Every row moves the reader forward: a row that consumes nothing would loop forever.
                check(source.position.offset > previous, "the \(format) row source did not advance")
                previous = source.position.offset
                if case .document(let doc, _) = row {
                    // What the importer does next with a row: validate and encode it for the log.
                    _ = try? LogRecord.write(number: 1, insert: true, documents: [doc]).payload()
                }
            }
        } catch {}
    }

    // MARK: - Filters

    private func filterJSON(_ bytes: [UInt8]) {
        guard let filter = try? Filter(jsonUTF8: bytes) else { return }
        checkPrintsBack(filter)
    }

    private func filterText(_ bytes: [UInt8]) {
        guard let filter = try? Filter(text: String(decoding: bytes, as: UTF8.self)) else { return }
        checkPrintsBack(filter)
    }

    /// A parsed filter prints in both forms to text that parses back to the same filter (the JSON
    /// form only when no field name starts with `$`, which only the text form can name).
    private func checkPrintsBack(_ filter: Filter) {
        let text = filter.description
        check((try? Filter(text: text)) == filter, "the text form does not parse back: \(text)")
        guard !Self.names(filter, where: { $0.hasPrefix("$") }) else { return }
        let json = filter.json
        check((try? Filter(json: json)) == filter, "the JSON form does not parse back: \(json)")
    }

    private static func names(_ f: Filter, where test: (String) -> Bool) -> Bool {
        switch f {
        case .and(let cs), .or(let cs): return cs.contains { names($0, where: test) }
        case .not(let c): return names(c, where: test)
        case .field(let name, _): return test(name)
        }
    }

    // MARK: - Write-ahead log

    /// Input starting with the WAL magic is a log file: open (recover) the log and replay it, decoding
    /// each record as a Quiver log record. Any other input is one record: type byte, then payload.
    private func walReader(_ bytes: [UInt8]) {
        if bytes.starts(with: WALFormat.magic) {
            let directory = scratch + "/wal"
            try? FileSystem.removeTree(directory)
            try? FileSystem.createDirectory(directory)
            let first = WALFormat.decodeFileHeader(bytes[...]) ?? 1
            write(bytes, to: directory + "/" + WALFormat.fileName(firstSequence: first))
            guard let log = try? WriteAheadLog(directory: directory) else { return }
            defer { log.close() }
            try? log.forEachRecord(after: 0) { record in decodeLogRecord(record) }
        } else if let type = bytes.first {
            decodeLogRecord(WALRecord(sequence: 1, type: type, payload: Array(bytes.dropFirst())))
        }
    }

    private func decodeLogRecord(_ record: WALRecord) {
        // Collections 0...7 have dimensions 1...8; others do not exist.
        guard let decoded = try? LogRecord(record, dimension: { number in
            guard number < 8 else { throw StorageError(.corrupt, "no collection \(number)") }
            return Int(number) + 1
        }) else { return }
        // What replay applies can be logged again.
        _ = try? decoded.payload()
    }

    // MARK: - Segment files

    /// Decodes `bytes` as is (checksums included); then, so that the structural checks are reached,
    /// with the header checksum recomputed, and searches what decodes.
    private func segment(_ bytes: [UInt8], headerSize: Int = 256, decode: ([UInt8], Bool) throws -> any VectorIndex) {
        _ = try? decode(bytes, true)
        guard bytes.count >= headerSize else { return }
        var patched = bytes
        let end = headerSize - 4
        let crc = patched.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { patched[end + i] = $0[i] } }
        guard let index = try? decode(patched, false) else { return }
        let query = (0..<index.dimension).map { Float($0 % 7) - 3 }
        _ = try? index.search(query, k: 5)
    }

    /// HNSW segment files of both layouts, told apart by the magic: float32 (`HNSWCodec`) and sq8
    /// (`SQ8HNSWCodec`, whose header is 384 bytes).
    private func segmentHNSW(_ bytes: [UInt8]) {
        if bytes.starts(with: SQ8HNSWCodec.magic) {
            segment(bytes, headerSize: SQ8HNSWCodec.headerSize) { b, full in try SQ8HNSWCodec.decode(b, verify: full ? .full : .structure) }
        } else {
            segment(bytes) { b, full in try HNSWCodec.decode(b, verify: full ? .full : .structure) }
        }
    }

    private func segmentIVFPQ(_ bytes: [UInt8]) {
        segment(bytes) { b, full in try IVFPQCodec.decode(b, verify: full ? .full : .structure) }
    }

    // MARK: - Encoder inputs

    /// Opens `bytes` as a safetensors file and reads every float tensor it lists.
    private func safetensors(_ bytes: [UInt8]) {
        let path = scratch + "/model.safetensors"
        write(bytes, to: path)
        guard let file = try? SafetensorsFile(path: path) else { return }
        for name in file.tensors.keys.sorted() { _ = try? file.floats(name) }
    }

    /// Tokenizes `bytes` as UTF-8 text (invalid sequences become U+FFFD, as in the encoder's callers).
    private func tokenize(_ bytes: [UInt8]) {
        guard let tokenizer else { return }
        let text = String(decoding: bytes, as: UTF8.self)
        for maxLength in [2, 8, 256] {
            let ids = tokenizer.encode(text, maxLength: maxLength)
            check(ids.count >= 2 && ids.count <= maxLength, "\(ids.count) ids for maxLength \(maxLength)")
            check(ids.first == tokenizer.clsID && ids.last == tokenizer.sepID, "ids not framed by [CLS] ... [SEP]")
        }
    }
}
