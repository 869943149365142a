import Foundation
import Quiver

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
let data = try SciFactData(folder: option("--data") ?? "../shared/data/scifact")
let scratch = option("--scratch") ?? ".scratch/tune"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
let vectors = try cachedCorpusVectors(data, path: scratch + "/scifact-corpus.f32", scratch: scratch)
print("corpus vectors: \(vectors.count); unseen test claims: \(data.unseenTestClaims.count) of \(data.testQrels.count)")
