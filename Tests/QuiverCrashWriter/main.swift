// The writer child of the kill -9 harness (Tests/QuiverTests/CrashRecoveryTests.swift).
// Usage: QuiverCrashWriter <database> <ack-file> <seed> <first-batch>
// Writes batches first-batch, first-batch+1, ... forever; after each acknowledged batch it appends
// its number to the ack file. The parent kills it with SIGKILL at random moments.
import Foundation
import Quiver
import QuiverStorage

let arguments = CommandLine.arguments
// The crash-point sweep: QuiverCrashWriter --sweep <database> <ack-file>; runs SweepWorkload once
// and prints the number of crash points it passed (run it with QUIVER_CRASH_AT=0 to count).
if arguments.count == 4 && arguments[1] == "--sweep" {
    do {
        let db = try Database(path: arguments[2], options: DatabaseOptions(durability: .full))
        let ack = open(arguments[3], O_WRONLY | O_APPEND | O_CREAT, 0o644)
        try SweepWorkload.run(db) { i in
            let line = Array("\(i)\n".utf8)
            _ = line.withUnsafeBytes { write(ack, $0.baseAddress, $0.count) }
        }
        db.close()
        print("STEPS \(CrashPoints.count)")
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("QuiverCrashWriter: \(error)\n".utf8))
        exit(1)
    }
}
// The damage sweep's probe: QuiverCrashWriter --probe database|backup <path> <scratch-dir> <out.json>;
// runs every operation on the (damaged) database or backup and writes DamageFixture.Summary as JSON.
if arguments.count == 6 && arguments[1] == "--probe" && ["database", "backup"].contains(arguments[2]) {
    let summary = arguments[2] == "database" ? DamageFixture.probe(database: arguments[3], scratch: arguments[4])
                                             : DamageFixture.probe(backup: arguments[3], scratch: arguments[4])
    do {
        try JSONEncoder().encode(summary).write(to: URL(fileURLWithPath: arguments[5]))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("QuiverCrashWriter: cannot write \(arguments[5]): \(error)\n".utf8))
        exit(1)
    }
}
// QuiverCrashWriter --damage-build <database> <backup>: builds the damage sweep's database.
if arguments.count == 4 && arguments[1] == "--damage-build" {
    do {
        try DamageFixture.build(at: arguments[2], backup: arguments[3])
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("QuiverCrashWriter: \(error)\n".utf8))
        exit(1)
    }
}
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
