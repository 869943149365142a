// The libFuzzer entry point shared by the fuzz targets. `tools/fuzz/build` compiles it together with
// one file of `targets/` (which names the target in `fuzzTargetName`) into `.build/fuzz/bin/<target>`,
// linked against the Quiver modules built with `-sanitize=fuzzer,address`.
//
// Each input goes to `FuzzHarness.run`, the entry point the regression replay test also uses
// (Tests/QuiverTests/FuzzRegressionTests.swift), so a crasher replays through the same code.
//
// Environment: QUIVER_FUZZ_SCRATCH, a directory for the files the file-reading targets write
// (default: a fresh one under $TMPDIR); QUIVER_FUZZ_VOCAB, the vocab.txt of the tokenizer target.
@_spi(Fuzzing) import Quiver
import Foundation

let target: FuzzTarget = {
    guard let t = FuzzTarget(rawValue: fuzzTargetName) else { fatalError("unknown fuzz target \(fuzzTargetName)") }
    return t
}()

let harness: FuzzHarness = {
    let env = ProcessInfo.processInfo.environment
    let scratch = env["QUIVER_FUZZ_SCRATCH"] ?? (NSTemporaryDirectory() + "/quiver-fuzz-\(getpid())")
    do {
        return try FuzzHarness(scratch: scratch, vocabularyFile: env["QUIVER_FUZZ_VOCAB"])
    } catch {
        fatalError("fuzz harness: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    harness.run(target, Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
