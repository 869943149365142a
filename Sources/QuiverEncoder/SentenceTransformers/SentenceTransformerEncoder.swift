import COpenBLAS
import Dispatch
import Foundation
import QuiverCore

/// The built-in encoder: a sentence-transformers BERT model (all-MiniLM-L6-v2 by default) run natively,
/// float32 on OpenBLAS, or with int8 Linear layers (`Options.precision = .int8`, registered as
/// `all-MiniLM-L6-v2:int8`; see `Int8BertModel`).
///
/// Batching: texts are tokenized (in parallel), sorted by token count (longest first, as
/// sentence-transformers does), cut into batches of `batchSize`, and each batch into one slice per
/// thread. Threads take slices from a shared counter; each runs the packed forward pass with its own
/// workspace, which is reused across slices and calls (the pool keeps at most `threads` of them).
/// Memory is bounded by `threads` workspaces of `ceil(batchSize / threads) * maxSequenceLength` tokens
/// (about 55 MB each for MiniLM at batch 32, 2 threads) plus the weights (about 90 MB) and the output.
///
/// OpenBLAS: the encoder parallelizes itself and sets OpenBLAS to one thread (process-wide:
/// `openblas_set_num_threads(1)`), which beats splitting each small product between threads.
///
/// Thread safety: safe to call from any number of threads at once.
public final class SentenceTransformerEncoder: TextEncoder, @unchecked Sendable {
    /// Tuning knobs; the defaults suit a 2-core machine.
    public struct Options: Sendable, Equatable {
        /// Texts per forward batch (shared between the threads).
        public var batchSize: Int = 32
        /// Worker threads (default: the active processor count).
        public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        /// Prefix added to every query; `nil` takes the model's own (`prompts.query`), usually "".
        public var queryPrefix: String? = nil
        /// Prefix added to every document; `nil` takes the model's own (`prompts.document`), usually "".
        public var documentPrefix: String? = nil
        /// A shorter maximum sequence length than the model's (nil: the model's).
        public var maxSequenceLength: Int? = nil
        /// float32 (the default) or int8 Linear layers, quantized from the float32 weights at load.
        public var precision: EncoderPrecision = .float32
        /// The int8 kernel (nil: `$QUIVER_INT8_KERNEL`, else the widest this CPU runs); int8 only.
        public var int8Kernel: Int8Kernel? = nil

        /// The defaults.
        public init() {}
    }

    /// The registry name (or the folder's name).
    public let identifier: String
    /// Pooled width: hidden size times the number of pooling modes (384 for all-MiniLM-L6-v2).
    public let dimension: Int
    /// sha256 hex of `model.safetensors`, computed once at load; with int8 precision followed by
    /// `EncoderPrecision.int8ChecksumSuffix`, so that a collection built with one precision refuses the other.
    public let weightsChecksum: String
    /// True when the folder's pipeline ends with a `Normalize` module.
    public var producesNormalizedVectors: Bool { folder.normalizes }
    /// The folder's configuration.
    public let folder: SentenceTransformerFolder
    /// The tokenizer.
    public let tokenizer: WordPieceTokenizer
    /// Longest sequence fed to the model, `[CLS]` and `[SEP]` included.
    public let maxSequenceLength: Int
    /// Prefix put before queries.
    public let queryPrefix: String
    /// Prefix put before documents.
    public let documentPrefix: String
    /// The options given at load.
    public let options: Options

    let model: any BertForward
    private let pool: WorkspacePool

    /// Loads a sentence-transformers folder. `identifier` defaults to the folder's name (followed by
    /// `:int8` with int8 precision). An int8 kernel the CPU lacks is an error (`unsupportedKernel`).
    public init(folder path: String, identifier: String? = nil, options: Options = Options()) throws {
        let folder = try SentenceTransformerFolder(path: path)
        self.folder = folder
        self.options = options
        self.identifier = identifier ?? URL(fileURLWithPath: path).lastPathComponent + options.precision.nameSuffix
        self.tokenizer = try WordPieceTokenizer(vocabularyFile: folder.vocabularyPath, options: folder.tokenizerOptions)
        self.maxSequenceLength = min(options.maxSequenceLength ?? folder.maxSequenceLength, folder.maxSequenceLength)
        self.queryPrefix = options.queryPrefix ?? folder.queryPrefix
        self.documentPrefix = options.documentPrefix ?? folder.documentPrefix
        self.dimension = folder.pooling.outputDimension(hidden: folder.config.hiddenSize)
        guard FileManager.default.fileExists(atPath: folder.weightsPath) else {
            throw EncoderError(.invalidModelFolder, "the folder has no model.safetensors (other weight formats are not read)", path: folder.weightsPath)
        }
        let file = try SafetensorsFile(path: folder.weightsPath)
        self.weightsChecksum = file.withFileBytes { SHA256.hex($0) } + options.precision.checksumSuffix
        let kernel = options.precision == .int8 ? try Int8Kernel.resolve(options.int8Kernel) : nil
        guard tokenizer.vocabulary.count <= folder.config.vocabularySize,
              tokenizer.vocabulary.values.allSatisfy({ Int($0) < folder.config.vocabularySize }) else {
            throw EncoderError(.invalidModelFolder, "vocab.txt has ids beyond the model's vocab_size \(folder.config.vocabularySize)", path: folder.vocabularyPath)
        }
        _ = blasConfigured  // before the int8 model's calibration pass, its first sgemm
        self.model = try Self.loadModel(file, config: folder.config, int8Kernel: kernel, tokenizer: tokenizer)
        if kernel != nil { releaseFreedMemory() }
        self.pool = WorkspacePool(config: folder.config, limit: max(1, options.threads))
    }

    /// Reads the weights; for int8, quantizes them and drops the float32 copy before returning.
    private static func loadModel(_ file: SafetensorsFile, config: BertConfig, int8Kernel: Int8Kernel?,
                                  tokenizer: WordPieceTokenizer) throws -> any BertForward {
        let weights = try BertWeights(file: file, config: config)
        guard let int8Kernel else { return BertModel(config: config, weights: weights) }
        return Int8BertModel(config: config, weights: weights, kernel: int8Kernel, clsID: tokenizer.clsID, sepID: tokenizer.sepID)
    }

    /// Vectors of documents (with the document prefix, if any).
    public func encode(documents: [String]) throws -> Matrix {
        embed(documentPrefix.isEmpty ? documents : documents.map { documentPrefix + $0 })
    }

    /// Vectors of queries (with the query prefix, if any).
    public func encode(queries: [String]) throws -> Matrix {
        embed(queryPrefix.isEmpty ? queries : queries.map { queryPrefix + $0 })
    }

    /// Token ids of each text, `[CLS]` ... `[SEP]`, truncated to `maxSequenceLength` (no prefix added).
    public func tokenize(_ texts: [String]) -> [[Int32]] {
        var out = [[Int32]](repeating: [], count: texts.count)
        let threads = max(1, min(options.threads, texts.count / 64 + 1))
        out.withUnsafeMutableBufferPointer { out in
            let slots = SendablePointer(out.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                var i = part
                while i < texts.count {
                    (slots.pointer + i).pointee = tokenizer.encode(texts[i], maxLength: maxSequenceLength)
                    i += threads
                }
            }
        }
        return out
    }

    /// The vectors of `texts` as they are (no prefix).
    public func embed(_ texts: [String]) -> Matrix {
        embed(tokenIDs: tokenize(texts))
    }

    /// The vectors of already tokenized sequences (each starting with `[CLS]` and ending with `[SEP]`).
    public func embed(tokenIDs sequences: [[Int32]]) -> Matrix {
        let n = sequences.count
        let d = dimension, h = model.config.hiddenSize
        guard n > 0 else { return Matrix(dimension: d) }
        // The forward pass reads embedding rows by id without bounds checks: validate ids here.
        let vocabularySize = model.config.vocabularySize
        for s in sequences {
            precondition(!s.isEmpty && s.count <= model.config.maxPositions, "a sequence of \(s.count) tokens")
            precondition(s.allSatisfy { $0 >= 0 && Int($0) < vocabularySize }, "a token id outside the vocabulary")
        }
        // Longest first: the first slices size the workspaces, and slices hold similar lengths.
        let order = (0..<n).sorted { sequences[$0].count > sequences[$1].count }
        let threads = max(1, options.threads)
        let sliceSize = max(1, (max(1, options.batchSize) + threads - 1) / threads)
        let sliceCount = (n + sliceSize - 1) / sliceSize
        let workers = min(threads, sliceCount)

        var storage = [Float](repeating: 0, count: n * d)
        let next = SliceCounter()
        storage.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                let ws = pool.take()
                defer { pool.give(ws) }
                var batch = PackedBatch()
                while let slice = next.take(below: sliceCount) {
                    let members = order[(slice * sliceSize)..<min(n, (slice + 1) * sliceSize)]
                    batch.ids.removeAll(keepingCapacity: true)
                    batch.offsets.removeAll(keepingCapacity: true)
                    batch.offsets.append(0)
                    for m in members { batch.append(sequences[m]) }
                    let hidden = model.forward(batch, workspace: ws)
                    for (s, m) in members.enumerated() {
                        let row = out.pointer + m * d
                        let start = batch.offsets[s]
                        folder.pooling.pool(hidden + start * h, length: batch.offsets[s + 1] - start, width: h, into: row)
                        if folder.normalizes { Pooling.l2Normalize(row, count: d) }
                    }
                }
            }
        }
        return Matrix(dimension: d, storage: storage)
    }

    /// Bytes held by pooled workspaces (for memory accounting).
    public var workspaceBytes: Int { pool.byteCount }

    /// Bytes of model parameters held in memory (int8: the quantized Linear and embedding weights).
    public var parameterBytes: Int { model.parameterBytes }

    /// The int8 kernel in use, or nil for float32.
    public var int8Kernel: Int8Kernel? { (model as? Int8BertModel)?.kernel }
}

/// The encoder parallelizes over slices itself, so OpenBLAS runs one thread per call (threads of its
/// own would only contend with the workers). Set once per process, before the first encoder exists,
/// because changing it while another thread is inside sgemm is not safe.
private let blasConfigured: Void = openblas_set_num_threads(1)

/// A raw pointer handed to worker threads that write disjoint parts of one buffer.
struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Hands out slice numbers 0, 1, 2, ... to worker threads.
final class SliceCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// Workspaces kept between calls, at most `limit` of them; extra ones (concurrent callers) are dropped.
final class WorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [BertWorkspace] = []
    private let config: BertConfig
    private let limit: Int

    init(config: BertConfig, limit: Int) {
        self.config = config
        self.limit = limit
    }

    func take() -> BertWorkspace {
        lock.lock(); defer { lock.unlock() }
        return free.popLast() ?? BertWorkspace(config: config)
    }

    func give(_ ws: BertWorkspace) {
        lock.lock(); defer { lock.unlock() }
        if free.count < limit { free.append(ws) }
    }

    var byteCount: Int {
        lock.lock(); defer { lock.unlock() }
        return free.reduce(0) { $0 + $1.byteCount }
    }
}

/// The arithmetic of the encoder's Linear layers.
public enum EncoderPrecision: String, Sendable, Equatable, CaseIterable {
    /// float32 weights and products (OpenBLAS sgemm).
    case float32
    /// int8 weights (symmetric, per output channel) and per-token int8 activations, int32 accumulation.
    case int8

    /// Appended to an encoder name to choose int8 (`all-MiniLM-L6-v2:int8`).
    public static let int8NameSuffix = ":int8"
    /// Appended to the weights' sha256 in an int8 encoder's `weightsChecksum`: the scheme's version, so
    /// a change of quantization is a different encoder to the catalog.
    public static let int8ChecksumSuffix = "+int8-v1"

    var nameSuffix: String { self == .int8 ? Self.int8NameSuffix : "" }
    var checksumSuffix: String { self == .int8 ? Self.int8ChecksumSuffix : "" }
}
