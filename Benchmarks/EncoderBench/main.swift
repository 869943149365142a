// EncoderBench: measures QuiverEncoder's side of the encoder comparison and prints one JSON object.
// tools/bench-encoder runs it next to sentence-transformers on the same texts and prints ratios.
//
// Usage (from the repository root):
//   swift run -c release EncoderBench throughput --texts FILE [--batch-size N] [--threads N] [--warmup N] [--repeat N]
//   swift run -c release EncoderBench embed --texts FILE --out FILE.f32 [--kind documents|queries] [--batch-size N]
//   swift run -c release EncoderBench sgemm-peak [--threads N] [--size N]
// Common options: --models-dir DIR (default: $QUIVER_MODELS or ~/.local/share/quiver/models),
//                 --model NAME (default all-MiniLM-L6-v2), --precision float32|int8 (default float32),
//                 --int8-kernel portable|avx2|avx512-vnni (default: $QUIVER_INT8_KERNEL, else the CPU's widest).
// A texts file holds one JSON string per line. Exit codes: 0 ok, 1 failure, 2 usage error.
import COpenBLAS
import Foundation
import QuiverCore
import QuiverEncoder

struct UsageError: Error, CustomStringConvertible { let description: String }

/// Options as `--name value` pairs after the command.
struct Arguments {
    let command: String
    var values: [String: String] = [:]

    init(_ argv: [String]) throws {
        guard let command = argv.first else { throw UsageError(description: "missing command (throughput, embed, sgemm-peak)") }
        self.command = command
        var i = 1
        while i < argv.count {
            let key = argv[i]
            guard key.hasPrefix("--"), i + 1 < argv.count else { throw UsageError(description: "expected --option value at '\(key)'") }
            values[String(key.dropFirst(2))] = argv[i + 1]
            i += 2
        }
    }

    func string(_ key: String) throws -> String {
        guard let v = values[key] else { throw UsageError(description: "missing --\(key)") }
        return v
    }

    func int(_ key: String, default value: Int) throws -> Int {
        guard let s = values[key] else { return value }
        guard let v = Int(s), v > 0 else { throw UsageError(description: "--\(key) needs a positive integer") }
        return v
    }
}

/// Peak resident set size of this process, in bytes (Linux reports ru_maxrss in KiB).
func peakRSS() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}

/// Current resident set size of this process, in bytes (/proc/self/statm's second field, in pages).
func currentRSS() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// User + system CPU seconds consumed by this process so far (all threads).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func readTexts(_ path: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else { throw UsageError(description: "cannot read \(path)") }
    return try data.split(separator: UInt8(ascii: "\n")).map { line in
        guard let s = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) as? String else {
            throw UsageError(description: "\(path): every line must be a JSON string")
        }
        return s
    }
}

func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Multiply-add FLOPs of the model's matrix products for one sequence of `l` tokens:
/// dense layers 2·L·(4H² + 2HI) and attention 2·(2·L²·H) per layer.
func flops(tokens l: Int, config: BertConfig) -> Double {
    let h = Double(config.hiddenSize), i = Double(config.intermediateSize), L = Double(l)
    return Double(config.layerCount) * (2 * L * (4 * h * h + 2 * h * i) + 4 * L * L * h)
}

/// The encoder and what loading it added to the resident set (the model's resident memory: the
/// weights file is unmapped once loaded, and no workspace exists yet).
func loadEncoder(_ args: Arguments, batchSize: Int) throws -> (SentenceTransformerEncoder, residentBytes: Int) {
    let store = ModelStore(directory: args.values["models-dir"])
    let name = args.values["model"] ?? EncoderRegistry.defaultEncoderName
    var options = SentenceTransformerEncoder.Options()
    options.batchSize = batchSize
    options.threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount)
    guard let precision = EncoderPrecision(rawValue: args.values["precision"] ?? "float32") else {
        throw UsageError(description: "--precision takes float32 or int8")
    }
    options.precision = precision
    if let kernel = args.values["int8-kernel"] {
        guard let k = Int8Kernel(rawValue: kernel) else {
            throw UsageError(description: "--int8-kernel takes \(Int8Kernel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.int8Kernel = k
    }
    let before = currentRSS()
    let encoder = try SentenceTransformerEncoder(folder: store.folder(named: name), identifier: name, options: options)
    return (encoder, currentRSS() - before)
}

/// What every command reports about the encoder it ran.
func describe(_ encoder: SentenceTransformerEncoder, residentBytes: Int) -> [String: Any] {
    ["precision": encoder.options.precision.rawValue, "int8_kernel": encoder.int8Kernel?.rawValue ?? "none",
     "parameter_bytes": encoder.parameterBytes, "model_resident_bytes": residentBytes]
}

func throughput(_ args: Arguments) throws {
    let texts = try readTexts(try args.string("texts"))
    let batchSize = try args.int("batch-size", default: 32)
    let t0 = now()
    let (encoder, resident) = try loadEncoder(args, batchSize: batchSize)
    let loadSeconds = now() - t0
    let ids = encoder.tokenize(texts)
    let tokens = ids.reduce(0) { $0 + $1.count }
    let work = ids.reduce(0.0) { $0 + flops(tokens: $1.count, config: encoder.folder.config) }
    // Warm-up: page in the weights, size the workspaces.
    _ = try encoder.encode(documents: Array(texts.prefix(try args.int("warmup", default: batchSize))))
    var best = Double.infinity, bestCPU = 0.0, all: [Double] = []
    for _ in 0..<(try args.int("repeat", default: 1)) {
        let start = now(), startCPU = cpuSeconds()
        let m = try encoder.encode(documents: texts)
        let seconds = now() - start
        precondition(m.rows == texts.count)
        if seconds < best { best = seconds; bestCPU = cpuSeconds() - startCPU }
        all.append(seconds)
    }
    try printJSON(describe(encoder, residentBytes: resident).merging([
        "side": "quiver", "texts": texts.count, "tokens": tokens, "batch_size": batchSize,
        "threads": encoder.options.threads, "seconds": best, "all_seconds": all,
        "texts_per_s": Double(texts.count) / best, "tokens_per_s": Double(tokens) / best,
        "gflops": work / best / 1e9, "cpu_seconds": bestCPU, "gflops_per_cpu_second": work / bestCPU / 1e9,
        "texts_per_cpu_second": Double(texts.count) / bestCPU,
        "load_seconds": loadSeconds, "peak_rss_bytes": peakRSS(),
    ]) { $1 })
}

func embed(_ args: Arguments) throws {
    let texts = try readTexts(try args.string("texts"))
    let out = try args.string("out")
    let batchSize = try args.int("batch-size", default: 32)
    let (encoder, resident) = try loadEncoder(args, batchSize: batchSize)
    let start = now()
    let m = args.values["kind"] == "queries" ? try encoder.encode(queries: texts) : try encoder.encode(documents: texts)
    let seconds = now() - start
    let data = m.storage.withUnsafeBytes { Data($0) }
    try data.write(to: URL(fileURLWithPath: out))
    try printJSON(describe(encoder, residentBytes: resident).merging([
        "side": "quiver", "texts": texts.count, "dimension": m.dimension, "seconds": seconds,
        "texts_per_s": Double(texts.count) / seconds, "peak_rss_bytes": peakRSS(),
        "workspace_bytes": encoder.workspaceBytes, "out": out,
    ]) { $1 })
}

/// GFLOP/s of one large square sgemm, best of a few runs: the "peak" the encoder's share is measured against.
func sgemmPeak(_ args: Arguments) throws {
    let n = try args.int("size", default: 2048)
    let threads = try args.int("threads", default: ProcessInfo.processInfo.activeProcessorCount)
    openblas_set_num_threads(Int32(threads))
    var a = [Float](repeating: 0, count: n * n), b = a, c = a
    for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
    var best = Double.infinity, bestCPU = Double.infinity
    for _ in 0..<5 {
        let start = now(), startCPU = cpuSeconds()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        best = min(best, now() - start)
        bestCPU = min(bestCPU, cpuSeconds() - startCPU)
    }
    let work = 2 * Double(n) * Double(n) * Double(n)
    // Per CPU-second: what one core's kernel reaches when it runs, whatever else shares the machine.
    try printJSON(["side": "sgemm", "size": n, "threads": threads, "seconds": best, "cpu_seconds": bestCPU,
                   "gflops": work / best / 1e9, "gflops_per_cpu_second": work / bestCPU / 1e9])
}

do {
    let args = try Arguments(Array(CommandLine.arguments.dropFirst()))
    switch args.command {
    case "throughput": try throughput(args)
    case "embed": try embed(args)
    case "sgemm-peak": try sgemmPeak(args)
    default: throw UsageError(description: "unknown command '\(args.command)'")
    }
} catch let error as UsageError {
    FileHandle.standardError.write(Data("EncoderBench: \(error)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("EncoderBench: \(error)\n".utf8))
    exit(1)
}
