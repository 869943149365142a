// Open time of a database whose collection holds sealed HNSW segments: the segments are mapped and
// verified, not rebuilt. Usage: swift run -c release OpenBench [--vectors N] [--dimension D] [--dir DIR]
// Builds the database once (slow: HNSW construction), then times `Database(path:)` five times.
import Foundation
import Quiver
import QuiverCore

let args = CommandLine.arguments
func option(_ name: String, _ def: Int) -> Int { args.firstIndex(of: name).flatMap { Int(args[$0 + 1]) } ?? def }
let n = option("--vectors", 200_000)
let d = option("--dimension", 384)
let dir = args.firstIndex(of: "--dir").map { args[$0 + 1] } ?? NSTemporaryDirectory() + "/quiver-openbench-\(n)-\(d)"

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t = Date()
    try body()
    return Date().timeIntervalSince(t)
}

if !FileManager.default.fileExists(atPath: dir + "/lmdb/data.mdb") {
    let db = try Database(path: dir, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
    let c = try db.createCollection("bench", dimension: d, metric: .cosine, options: CollectionOptions(index: IndexSettings(segmentSize: 50_000)))
    var rng = SplitMix64(seed: 11)
    let load = try seconds {
        var i = 0
        while i < n {
            let m = min(10_000, n - i)
            try c.upsert((i..<i + m).map { j in Document(id: "v\(j)", vector: (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }) })
            i += m
        }
    }
    print(String(format: "loaded %d %d-d vectors in %.1f s", n, d, load))
    db.close()
}
// Seal and compact everything (a no-op when an earlier run finished it).
do {
    let db = try Database(path: dir)
    let build = try seconds { try db.compact("bench") { print("  \($0.message)") } }
    print(String(format: "sealed and compacted in %.1f s", build))
    db.close()
}

var times: [Double] = []
var stats: DatabaseStats.CollectionStats?
for _ in 0..<5 {
    var db: Database?
    times.append(try seconds { db = try Database(path: dir) })
    stats = try db!.stats().collections.first
    db!.close()
}
let i = stats?.index
print(String(format: "open: best %.3f s, median %.3f s over 5 opens; %d documents, %d sealed segment(s) of %d vectors, %d in the mutable segment",
             times.min()!, times.sorted()[2], stats?.documents ?? 0, i?.sealedSegments ?? 0, i?.sealedVectors ?? 0, i?.mutableVectors ?? 0))
