// swift-tools-version: 6.0
// Quiver: an embedded vector database engine. The dependency direction is the one of
// docs/architecture.md: Core at the bottom, Storage/Index/Encoder/Text above it, the
// `Quiver` facade above those, and the CLI, benchmarks and example on top of the facade only.
import Foundation
import PackageDescription

// The hot numeric targets (kernels, indexes, the encoder) are optimized even in debug builds, so that
// the test suite (which builds HNSW graphs and runs the encoder on real data) stays within its time
// budget, and compiled for the building machine's CPU (AVX2/FMA where it has them), as hnswlib's
// `-march=native` build and FAISS's run-time dispatch are: Quiver is built from source where it runs.
// QUIVER_PORTABLE=1 at build time targets the baseline CPU instead (for binaries that move).
let portable = ProcessInfo.processInfo.environment["QUIVER_PORTABLE"] != nil
let optimizedEvenInDebug: [SwiftSetting] = [.unsafeFlags(portable ? ["-O"] : ["-O", "-target-cpu", "native"])]

let package = Package(
    name: "Quiver",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Quiver", targets: ["Quiver"]),
        .executable(name: "quiver", targets: ["QuiverCLI"]),
    ],
    targets: [
        // C libraries from Debian, through system-library targets.
        .systemLibrary(name: "CLMDB", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),

        // libm: Swift's squareRoot() lowers to sqrtf, which Linux keeps in libm.
        .target(name: "QuiverCore", dependencies: ["CQuiverKernels"], swiftSettings: optimizedEvenInDebug, linkerSettings: [.linkedLibrary("m")]),
        .target(name: "QuiverStorage", dependencies: ["QuiverCore", "CLMDB", "CZstd"]),
        .target(name: "QuiverIndex", dependencies: ["QuiverCore", "COpenBLAS", "CQuiverKernels"], swiftSettings: optimizedEvenInDebug),
        // Quiver's own C kernels (int8 matrix products, float32 distances): compiled for the baseline
        // CPU, with AVX2 and AVX-512 (VNNI for int8) versions chosen at run time; optimized even in debug builds, and without FMA
        // contraction so that every kernel's scalar twin computes the same floats bit for bit.
        .target(name: "CQuiverKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(name: "QuiverEncoder", dependencies: ["QuiverCore", "QuiverStorage", "COpenBLAS", "CQuiverKernels"], swiftSettings: optimizedEvenInDebug),
        .target(name: "QuiverText", dependencies: ["QuiverCore"]),
        // Query-adapter training (contrastive and distillation) on OpenBLAS.
        .target(name: "QuiverTuning", dependencies: ["QuiverCore", "COpenBLAS"], swiftSettings: optimizedEvenInDebug),
        .target(name: "Quiver", dependencies: ["QuiverCore", "QuiverStorage", "QuiverIndex", "QuiverEncoder", "QuiverText", "QuiverTuning"]),
        .executableTarget(name: "QuiverCLI", dependencies: ["Quiver"]),
        // The host-app example of docs/library.md, compiled and run by the test suite.
        .executableTarget(name: "QuiverExample", dependencies: ["Quiver"]),
        // The text-search example of docs/library.md (the real model), compiled and run by the test suite.
        .executableTarget(name: "QuiverTextExample", dependencies: ["Quiver"]),
        // A child process for the kill -9 recovery harness (Tests/QuiverTests/CrashRecoveryTests.swift).
        .executableTarget(name: "QuiverCrashWriter", dependencies: ["Quiver", "QuiverStorage"], path: "Tests/QuiverCrashWriter"),

        .executableTarget(name: "WriteBench", dependencies: ["Quiver"], path: "Benchmarks/WriteBench"),
        .executableTarget(name: "OpenBench", dependencies: ["Quiver"], path: "Benchmarks/OpenBench"),
        .executableTarget(name: "SciFactBench", dependencies: ["Quiver", "QuiverTuning"], path: "Benchmarks/SciFactBench"),
        .executableTarget(name: "TuneBench", dependencies: ["Quiver", "QuiverTuning", "QuiverCore"], path: "Benchmarks/TuneBench"),
        .executableTarget(name: "FilterBench", dependencies: ["Quiver", "BenchmarkSupport"], path: "Benchmarks/FilterBench"),
        .executableTarget(name: "ImportBench", dependencies: ["Quiver"], path: "Benchmarks/ImportBench"),
        .executableTarget(name: "EncoderBench", dependencies: ["QuiverEncoder"], path: "Benchmarks/EncoderBench"),
        .executableTarget(name: "HNSWBench", dependencies: ["QuiverIndex", "BenchmarkSupport"], path: "Benchmarks/HNSWBench"),
        .executableTarget(name: "BM25Bench", dependencies: ["Quiver", "QuiverText", "BenchmarkSupport"], path: "Benchmarks/BM25Bench"),
        .executableTarget(name: "IVFPQBench", dependencies: ["QuiverIndex", "BenchmarkSupport"], path: "Benchmarks/IVFPQBench"),
        // Search through the engine: merged vs fresh vs a full mutable segment, exact, defaults (tools/bench-engine).
        .executableTarget(name: "EngineBench", dependencies: ["Quiver", "BenchmarkSupport"], path: "Benchmarks/EngineBench"),
        .executableTarget(name: "IndexKindBench", dependencies: ["Quiver", "BenchmarkSupport"], path: "Benchmarks/IndexKindBench"),
        .executableTarget(name: "ShapeBench", dependencies: ["Quiver", "QuiverCore", "BenchmarkSupport"], path: "Benchmarks/ShapeBench"),
        .executableTarget(name: "RangeBench", dependencies: ["Quiver", "BenchmarkSupport"], path: "Benchmarks/RangeBench"),
        .executableTarget(name: "PeerBench", dependencies: ["Quiver", "BenchmarkSupport"], path: "Benchmarks/PeerBench"),
        // Options, .fvecs/.ivecs files, timing and recall, shared by the benchmarks.
        .target(name: "BenchmarkSupport", dependencies: ["QuiverCore"], path: "Benchmarks/Support"),

        // Helpers shared by the test targets (temporary directories).
        .target(name: "QuiverTestSupport", dependencies: ["QuiverStorage"], path: "Tests/QuiverTestSupport"),
        .testTarget(name: "QuiverCoreTests", dependencies: ["QuiverCore"]),
        .testTarget(name: "QuiverStorageTests", dependencies: ["QuiverStorage", "QuiverTestSupport"]),
        .testTarget(name: "QuiverIndexTests", dependencies: ["QuiverIndex", "QuiverTestSupport"]),
        .testTarget(name: "QuiverEncoderTests", dependencies: ["QuiverEncoder", "QuiverTestSupport"]),
        .testTarget(name: "QuiverTextTests", dependencies: ["QuiverText", "QuiverCore"]),
        .testTarget(name: "QuiverTests", dependencies: ["Quiver", "QuiverStorage", "QuiverTestSupport", "QuiverCLI", "QuiverExample", "QuiverTextExample", "QuiverCrashWriter"],
                    exclude: ["Fixtures"]),
    ]
)
