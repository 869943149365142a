// HNSWBench: builds and queries Quiver's HNSW on an .fvecs data set and prints one JSON object.
//
//   swift run -c release HNSWBench --base B.fvecs --queries Q.fvecs --gt G.ivecs [--metric l2|cosine|dot]
//       [--m 16] [--ef-construction 200] [--ef 10,16,...] [--k 10] [--min-seconds 0.5] [--skip-parallel]
//   swift run -c release HNSWBench --open-test 200000 [--dim 384]   (codec save/open times)
//   --save FILE writes the single-threaded build's index (HNSWCodec); --load FILE maps such a file and
//   measures only the search curve over it (tools/bench-hnsw alternates these rounds with the peers').
//   --filters FILE (the filters.json FilterBench writes: allowed rows and exact filtered top k per
//   filter) measures, instead of the curve, each filter under each filtered-search strategy (the
//   index's own choice, then scan, graph and acorn forced) at the first --ef: recall@k, the fewest
//   results a query got, single-thread QPS; over the --load index, or else a parallel build.
//
// Measures, in this order, in one process: the single-threaded build (time, and resident memory added
// per vector), searches over the efSearch list on one thread with one reused context (recall@k against
// the ground truth, queries per second), the parallel build (time, and its recall at the median ef),
// and the codec (encoded size, encode time, open time in place over a mapped file and by copying).
// tools/bench-hnsw runs this beside hnswlib and FAISS on the same data and prints the ratios.
import Foundation
import QuiverCore
import QuiverIndex
import BenchmarkSupport

struct Options {
    var base: String?, queries: String?, gt: String?
    var metric = Metric.l2
    var m = 16, efConstruction = 200, k = 10
    var efs = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 200, 256]
    var minSeconds = 0.5
    var parallel = true
    var openTest: Int?
    var dim = 384
    var save: String?
    var load: String?
    var filters: String?
    var strategies = ["auto", "scan", "graph", "acorn"]
    /// `--sq8 FLOAT SQ8`: the sq8 comparison's build step (see `sq8Build`).
    var sq8: (float: String, sq8: String)?
    /// `--sq8-rewrite IN OUT`: see `sq8Rewrite`.
    var sq8Rewrite: (input: String, output: String)?
    var clip: Double?
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("HNSWBench: \(message)\n".utf8))
    exit(2)
}

func parse() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let v = args.popFirst() else { fail("\(name) needs a value") }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--base": o.base = value(a)
        case "--queries": o.queries = value(a)
        case "--gt": o.gt = value(a)
        case "--metric": guard let m = Metric(rawValue: value(a)) else { fail("unknown metric") }; o.metric = m
        case "--m": o.m = Int(value(a)) ?? 16
        case "--ef-construction": o.efConstruction = Int(value(a)) ?? 200
        case "--k": o.k = Int(value(a)) ?? 10
        case "--ef": o.efs = value(a).split(separator: ",").compactMap { Int($0) }
        case "--min-seconds": o.minSeconds = Double(value(a)) ?? 0.5
        case "--skip-parallel": o.parallel = false
        case "--open-test": o.openTest = Int(value(a))
        case "--dim": o.dim = Int(value(a)) ?? 384
        case "--sq8": o.sq8 = (value(a), value(a))
        case "--sq8-rewrite": o.sq8Rewrite = (value(a), value(a))
        case "--clip":
            guard let c = Double(value(a)), c >= 0, c < 0.5 else { fail("--clip takes a fraction in [0, 0.5)") }
            o.clip = c
        case "--save": o.save = value(a)
        case "--load": o.load = value(a)
        case "--filters": o.filters = value(a)
        case "--strategies": o.strategies = value(a).split(separator: ",").map(String.init)
        case "--help", "-h":
            print("usage: HNSWBench --base B.fvecs --queries Q.fvecs --gt G.ivecs [--metric l2|cosine|dot] [--m 16] [--ef-construction 200] [--ef 10,16,..] [--k 10] [--skip-parallel] [--save FILE | --load FILE] [--filters FILE]\n       HNSWBench --open-test N [--dim 384]\n       HNSWBench --sq8-rewrite IN.sq8 OUT.sq8 (the same graph and ranges, written with the link width its count chooses)")
            exit(0)
        default: fail("unknown argument \(a)")
        }
    }
    return o
}


/// Resident set size of this process, in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = s.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

func json(_ v: Any) -> String {
    guard let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: d, as: UTF8.self)
}

/// A read-only mapping of a whole file, as the segment manager opens a sealed segment.
final class Mapping: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    init(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { fail("cannot open \(path)") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size)
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { fail("mmap failed") }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }
    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}

func codecFigures(_ index: HNSWIndex) throws -> [String: Any] {
    let path = NSTemporaryDirectory() + "hnswbench-\(getpid()).qvh"
    defer { unlink(path) }
    var t = wallSeconds()
    guard let fh = FileHandle(forWritingAtPath: path) ?? {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path)
    }() else { fail("cannot create \(path)") }
    try HNSWCodec.encode(index) { chunk in try fh.write(contentsOf: Data(chunk)) }
    try fh.close()
    let encodeSeconds = wallSeconds() - t
    // Open = map + validate; the file is in the page cache, as it is right after sealing.
    t = wallSeconds()
    let mapping = Mapping(path)
    let opened = try HNSWCodec.decode(mapping.bytes, inPlace: mapping, verify: .full)
    let openFull = wallSeconds() - t
    t = wallSeconds()
    let mapping2 = Mapping(path)
    let opened2 = try HNSWCodec.decode(mapping2.bytes, inPlace: mapping2, verify: .structure)
    let openStructure = wallSeconds() - t
    t = wallSeconds()
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let copied = try data.withUnsafeBytes { try HNSWCodec.decode($0, inPlace: nil) }
    let openCopy = wallSeconds() - t
    precondition(opened.count == index.count && opened2.count == index.count && copied.count == index.count)
    return ["bytes": HNSWCodec.encodedSize(index), "encode_seconds": encodeSeconds,
            "open_mmap_full_verify_seconds": openFull, "open_mmap_structure_only_seconds": openStructure,
            "open_read_copy_seconds": openCopy]
}

func openTest(_ o: Options, n: Int) throws {
    // Random unit vectors: open time depends on sizes, not on the data.
    var rng = SystemRandomNumberGenerator()
    var storage = [Float](repeating: 0, count: n * o.dim)
    for i in 0..<storage.count { storage[i] = Float.random(in: -1...1, using: &rng) }
    let index = try HNSWIndex(dimension: o.dim, metric: .cosine, parameters: HNSWParameters(m: o.m, efConstruction: 40))
    index.reserveCapacity(n)
    let t = wallSeconds()
    try index.add(Matrix(dimension: o.dim, storage: storage), ids: (0..<Int64(n)).map { $0 })
    var out = try codecFigures(index)
    out["vectors"] = n
    out["dimension"] = o.dim
    out["build_seconds_parallel_efc40"] = wallSeconds() - t
    print(json(out))
}

/// Recall@k and single-thread QPS for each efSearch: one context reused (the hot path), best of 3
/// rounds (each at least minSeconds / 3), the least disturbed by other work on the machine.
func measureCurve(_ index: HNSWIndex, _ queries: Matrix, _ truth: [Set<Int64>], _ o: Options) throws -> [[String: Any]] {
    let ctx = HNSWSearchContext()
    return try measureCurve(queries, truth, o) { q, k, ef in try index.search(q, k: k, ef: ef, allow: nil, context: ctx) }
}

/// The curve of any search function (query, k, ef).
func measureCurve(_ queries: Matrix, _ truth: [Set<Int64>], _ o: Options,
                  _ search: (UnsafeBufferPointer<Float>, Int, Int) throws -> [Neighbor]) throws -> [[String: Any]] {
    let k = o.k, dim = queries.dimension
    var curve = [[String: Any]]()
    var results = [[Neighbor]](repeating: [], count: queries.rows)
    for ef in o.efs where ef >= k {
        var bestWall = 0.0, bestCPU = 0.0
        for _ in 0..<3 {
            var reps = 0
            let t = wallSeconds(), c = threadCPUSeconds()
            repeat {
                try queries.storage.withUnsafeBufferPointer { q in
                    for i in 0..<queries.rows {
                        results[i] = try search(UnsafeBufferPointer(rebasing: q[i * dim ..< (i + 1) * dim]), k, ef)
                    }
                }
                reps += 1
            } while wallSeconds() - t < o.minSeconds / 3
            bestWall = max(bestWall, Double(reps * queries.rows) / (wallSeconds() - t))
            bestCPU = max(bestCPU, Double(reps * queries.rows) / (threadCPUSeconds() - c))
        }
        var hit = 0
        for i in 0..<queries.rows { hit += results[i].filter { truth[i].contains($0.id) }.count }
        curve.append(["ef": ef, "recall": Double(hit) / Double(queries.rows * k), "qps": bestWall, "qps_cpu": bestCPU])
    }
    return curve
}

/// Each filter of a FilterBench filters.json under each strategy (`--filters`).
func measureFilters(_ index: HNSWIndex, _ queries: Matrix, _ path: String, _ o: Options) throws -> [[String: Any]] {
    guard let data = FileManager.default.contents(atPath: path),
          let spec = try JSONSerialization.jsonObject(with: data) as? [String: Any],
          let filters = spec["filters"] as? [[String: Any]] else { fail("cannot read filters from \(path)") }
    let k = spec["k"] as? Int ?? o.k, ef = o.efs.first ?? 64
    let nq = min(spec["queries"] as? Int ?? queries.rows, queries.rows), dim = queries.dimension
    let ctx = HNSWSearchContext()
    var out = [[String: Any]]()
    for f in filters {
        let rows = f["rows"] as! [Int]
        var bits = Bitset(capacity: index.count)
        for r in rows { bits.insert(r) }
        let allow = AllowFilter.bitset(bits)
        // A filter without "truth" gets it from an exact scan of its allowed rows.
        var truth = ((f["truth"] as? [[Int]]) ?? []).map { Set($0.map(Int64.init)) }
        if truth.isEmpty {
            index.filteredSearchOverride = .scan
            try queries.storage.withUnsafeBufferPointer { q in
                for i in 0..<nq {
                    let r = try index.search(UnsafeBufferPointer(rebasing: q[i * dim ..< (i + 1) * dim]), k: k, ef: ef, allow: allow, context: ctx)
                    truth.append(Set(r.map(\.id)))
                }
            }
        }
        var row: [String: Any] = ["filter": f["filter"] as! String, "allowed": rows.count,
                                  "chosen": index.filteredSearch(allowed: rows.count, ef: ef).rawValue]
        for strategy in [nil] + FilteredSearch.allCases where o.strategies.contains(strategy?.rawValue ?? "auto") {
            index.filteredSearchOverride = strategy
            var hit = 0, expected = 0, fewest = Int.max
            let t = wallSeconds(), c = threadCPUSeconds()
            try queries.storage.withUnsafeBufferPointer { q in
                for i in 0..<nq {
                    let r = try index.search(UnsafeBufferPointer(rebasing: q[i * dim ..< (i + 1) * dim]), k: k, ef: ef, allow: allow, context: ctx)
                    hit += r.filter { truth[i].contains($0.id) }.count
                    expected += truth[i].count
                    fewest = min(fewest, r.count)
                }
            }
            let cpu = threadCPUSeconds() - c, wall = wallSeconds() - t
            row[strategy?.rawValue ?? "auto"] = ["recall": expected == 0 ? 1 : Double(hit) / Double(expected), "fewest": fewest,
                                                 "qps_cpu": Double(nq) / cpu, "qps": Double(nq) / wall]
        }
        index.filteredSearchOverride = nil
        out.append(row)
    }
    return out
}

func run() throws {
    let o = parse()
    if let n = o.openTest { return try openTest(o, n: n) }
    if let (input, output) = o.sq8Rewrite { return try sq8Rewrite(input, output) }
    guard let bp = o.base, let qp = o.queries, let gp = o.gt else { fail("--base, --queries and --gt are required (see --help)") }
    let base: Matrix, queries: Matrix, gt: [[Int64]]
    do {
        (base, queries, gt) = (try BenchmarkFiles.fvecs(bp), try BenchmarkFiles.fvecs(qp), try BenchmarkFiles.ivecs64(gp))
    } catch { fail("cannot read the data: \(error)") }
    guard base.dimension == queries.dimension, gt.count >= queries.rows else { fail("inconsistent data files") }
    let n = base.rows, k = o.k
    let ids = (0..<Int64(n)).map { $0 }
    if let filters = o.filters {
        let index: HNSWIndex
        var mapping: Mapping?
        if let path = o.load {
            mapping = Mapping(path)
            index = try HNSWCodec.decode(mapping!.bytes, inPlace: mapping, verify: .structure)
        } else {
            index = try HNSWIndex(dimension: base.dimension, metric: o.metric, parameters: HNSWParameters(m: o.m, efConstruction: o.efConstruction))
            try index.add(base, ids: ids)
            if let path = o.save {
                guard FileManager.default.createFile(atPath: path, contents: Data(HNSWCodec.encode(index))) else { fail("cannot write \(path)") }
            }
        }
        print(json(["system": "quiver", "float_kernel": activeFloatKernel(), "n": n, "filters": try measureFilters(index, queries, filters, o)]))
        withExtendedLifetime(mapping) {}
        return
    }
    if let (floatPath, sq8Path) = o.sq8 { return try sq8Build(o, base: base, floatPath: floatPath, sq8Path: sq8Path) }
    if let path = o.load {
        // Search rounds over a saved index, used in place from a read-only mapping (a sealed segment).
        let mapping = Mapping(path)
        if mapping.bytes.count >= 8, Array(mapping.bytes[0..<8]) == SQ8HNSWCodec.magic {
            let index = try SQ8HNSWCodec.decode(mapping.bytes, inPlace: mapping, verify: .structure)
            let truth = gt.map { Set($0.prefix(k)) }
            let curve = try measureCurve(queries, truth, o) { q, k, ef in try index.search(q, k: k, parameters: SearchParameters(efSearch: ef)) }
            print(json(["system": "quiver-sq8", "n": n, "curve": curve, "hot_bytes_per_vector": Double(index.hotBytes) / Double(n),
                        "link_width": index.linkWidth]))
            return
        }
        let index = try HNSWCodec.decode(mapping.bytes, inPlace: mapping, verify: .structure)
        let truth = gt.map { Set($0.prefix(k)) }
        print(json(["system": "quiver", "float_kernel": activeFloatKernel(), "n": n, "curve": try measureCurve(index, queries, truth, o)]))
        return
    }

    // Single-threaded build, with the memory it adds.
    let rss0 = residentBytes()
    let serialParams = HNSWParameters(m: o.m, efConstruction: o.efConstruction, buildThreads: 1)
    var index: HNSWIndex? = try HNSWIndex(dimension: base.dimension, metric: o.metric, parameters: serialParams)
    index!.reserveCapacity(n)
    var t = wallSeconds()
    let c = threadCPUSeconds()
    try index!.add(base, ids: ids)
    let buildSerial = wallSeconds() - t
    let buildSerialCPU = threadCPUSeconds() - c
    let rss1 = residentBytes()

    let truth = gt.map { Set($0.prefix(k)) }
    let curve = try measureCurve(index!, queries, truth, o)
    if let path = o.save {
        guard FileManager.default.createFile(atPath: path, contents: Data(HNSWCodec.encode(index!))) else { fail("cannot write \(path)") }
    }
    let codec = try codecFigures(index!)
    let memoryBytes = index!.memoryBytes
    index = nil

    var out: [String: Any] = [
        "system": "quiver", "float_kernel": activeFloatKernel(), "n": n, "dimension": base.dimension, "queries": queries.rows, "metric": o.metric.rawValue,
        "m": o.m, "ef_construction": o.efConstruction, "k": k,
        "build_seconds_1thread": buildSerial, "build_cpu_seconds_1thread": buildSerialCPU,
        "memory_bytes_per_vector_rss": Double(rss1 - rss0) / Double(n),
        "memory_bytes_per_vector_accounted": Double(memoryBytes) / Double(n),
        "curve": curve, "codec": codec,
    ]
    if o.parallel {
        let threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let p = try HNSWIndex(dimension: base.dimension, metric: o.metric,
                              parameters: HNSWParameters(m: o.m, efConstruction: o.efConstruction, buildThreads: threads))
        p.reserveCapacity(n)
        t = wallSeconds()
        let cpu0 = processCPUSeconds()
        try p.add(base, ids: ids)
        out["build_seconds_parallel"] = wallSeconds() - t
        // Total CPU of the parallel build: compared with the serial build's, it shows the locking
        // overhead, whatever share of the cores other work left to this process.
        out["build_cpu_seconds_parallel_total"] = processCPUSeconds() - cpu0
        out["build_threads_parallel"] = threads
        let ef = 64
        let found = try p.search(queries, k: k, ef: ef, allow: nil)
        var hit = 0
        for i in 0..<queries.rows { hit += found[i].filter { truth[i].contains($0.id) }.count }
        out["parallel_build_recall_at_ef64"] = Double(hit) / Double(queries.rows * k)
    }
    print(json(out))
}

/// `--sq8 FLOAT SQ8`: one float32 graph built on every core, written as an HNSW file (FLOAT) and,
/// quantized, as an sq8 file (SQ8); prints the build time, the quantization time and the memory each
/// keeps resident per vector when mapped (float32: every section; sq8: the hot sections, not the cold
/// float32 vectors). `--load` then measures each file's curve in the alternating rounds.
func sq8Build(_ o: Options, base: Matrix, floatPath: String, sq8Path: String) throws {
    let n = base.rows
    let threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let index = try HNSWIndex(dimension: base.dimension, metric: o.metric,
                              parameters: HNSWParameters(m: o.m, efConstruction: o.efConstruction, buildThreads: threads))
    index.reserveCapacity(n)
    var t = wallSeconds()
    try index.add(base, ids: (0..<Int64(n)).map { $0 })
    let build = wallSeconds() - t
    t = wallSeconds()
    let sq8 = SQ8HNSWIndex(quantizing: index, training: o.clip.map { .clip($0) } ?? .standard)
    let quantize = wallSeconds() - t
    guard FileManager.default.createFile(atPath: floatPath, contents: Data(HNSWCodec.encode(index))),
          FileManager.default.createFile(atPath: sq8Path, contents: Data(SQ8HNSWCodec.encode(sq8))) else { fail("cannot write the index files") }
    let floatMapped = Mapping(floatPath), sq8Mapped = Mapping(sq8Path)
    let f = try HNSWCodec.decode(floatMapped.bytes, inPlace: floatMapped, verify: .structure)
    let q = try SQ8HNSWCodec.decode(sq8Mapped.bytes, inPlace: sq8Mapped, verify: .structure)
    print(json([
        "system": "quiver-sq8-build", "n": n, "dimension": base.dimension, "metric": o.metric.rawValue, "m": o.m,
        "ef_construction": o.efConstruction, "build_seconds_parallel": build, "build_threads": threads, "quantize_seconds": quantize,
        "training": o.clip.map { "clip \($0)" } ?? "minmax",
        "float_bytes_per_vector": Double(f.memoryBytes) / Double(n), "sq8_hot_bytes_per_vector": Double(q.hotBytes) / Double(n),
        "sq8_cold_bytes_per_vector": Double(q.coldBytes) / Double(n), "sq8_link_width": q.linkWidth,
        "float_file_bytes": floatMapped.bytes.count, "sq8_file_bytes": sq8Mapped.bytes.count,
    ]))
}

/// `--sq8-rewrite IN OUT`: the sq8 file IN (any version this build reads) written again as OUT with
/// the same graph, ids, tombstones and ranges (retrained on the same live vectors) and the link width
/// its count chooses: an earlier build's 32-bit file of fewer than 65,536 nodes becomes a 16-bit one,
/// so `--load` compares the two widths on one graph.
func sq8Rewrite(_ input: String, _ output: String) throws {
    let mapped = Mapping(input)
    let old = try SQ8HNSWCodec.decode(mapped.bytes, inPlace: mapped, verify: .full)
    let new = SQ8HNSWIndex(quantizing: old.floatIndex(), training: old.training)
    guard new.quantizer.scales == old.quantizer.scales, new.quantizer.offsets == old.quantizer.offsets else { fail("the ranges changed") }
    guard FileManager.default.createFile(atPath: output, contents: Data(SQ8HNSWCodec.encode(new))) else { fail("cannot write \(output)") }
    print(json(["system": "quiver-sq8-rewrite", "n": old.count, "link_width_in": old.linkWidth, "link_width_out": new.linkWidth,
                "hot_bytes_per_vector_in": Double(old.hotBytes) / Double(max(1, old.count)),
                "hot_bytes_per_vector_out": Double(new.hotBytes) / Double(max(1, new.count))]))
}

do { try run() } catch { fail("\(error)") }
