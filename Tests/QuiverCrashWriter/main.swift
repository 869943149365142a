// The writer child of the kill -9 harness (Tests/QuiverTests/CrashRecoveryTests.swift).
// Usage: QuiverCrashWriter <database> <ack-file> <seed> <first-batch>
// Writes batches first-batch, first-batch+1, ... forever; after each acknowledged batch it appends
// its number to the ack file. The parent kills it with SIGKILL at random moments.
import Foundation
import Quiver

let arguments = CommandLine.arguments
guard arguments.count == 5, let seed = UInt64(arguments[3]), let first = Int(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: QuiverCrashWriter <database> <ack-file> <seed> <first-batch>\n".utf8))
    exit(2)
}
do {
    let db = try Database(path: arguments[1])
    let collection = try db.collection(CrashWorkload.collection)
    let workload = CrashWorkload(seed: seed)
    let ack = open(arguments[2], O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard ack >= 0 else { throw QuiverError.invalidArgument("cannot open the ack file \(arguments[2])") }
    var n = first
    while true {
        switch workload.batch(n) {
        case .upsert(let docs): try collection.upsert(docs)
        case .delete(let ids): try collection.delete(ids: ids)
        }
        let line = Array("\(n)\n".utf8)
        _ = line.withUnsafeBytes { write(ack, $0.baseAddress, $0.count) }
        n += 1
    }
} catch {
    FileHandle.standardError.write(Data("QuiverCrashWriter: \(error)\n".utf8))
    exit(1)
}
