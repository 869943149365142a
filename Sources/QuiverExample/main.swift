// The host-app example of docs/library.md. The test suite checks that the code block in the doc is
// this file's code, compiles it (it is a target of the package) and runs it.
import Foundation
import Quiver

// A database is a directory; it is created on first open.
let path = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : NSTemporaryDirectory() + "/quiver-example"
let db = try Database(path: path)
defer { db.close() }

// A collection holds vectors of one dimension, compared with one metric.
let notes = try (try? db.collection("notes")) ?? db.createCollection("notes", dimension: 4, metric: .cosine)

// Writes are batched; each batch is logged, fsynced and applied before the call returns.
try notes.upsert([
    Document(id: "n1", text: "buy oat milk", metadata: ["list": "groceries", "done": false], vector: [0.9, 0.1, 0, 0]),
    Document(id: "n2", text: "call the plumber", metadata: ["list": "home", "priority": 2], vector: [0, 0.8, 0.2, 0]),
    Document(id: "n3", text: "buy coffee beans", metadata: ["list": "groceries", "tags": ["coffee"]], vector: [0.8, 0.2, 0.1, 0]),
])

// Reads see every acknowledged write.
if let note = try notes.get("n2") {
    print("n2:", note.text ?? "", "on list", note.metadata["list"] ?? .null)
}

// Exact nearest-neighbour search; scores are cosine similarities.
for hit in try notes.search(vector: [1, 0, 0, 0], k: 2, options: SearchOptions(includeText: true)) {
    print(hit.id, hit.score, hit.text ?? "")
}

// Errors are typed and name the offending record.
do {
    try notes.insert([Document(id: "n4", vector: [1, 2, 3])])
} catch let error as QuiverError {
    print("rejected: \(error)")
}

// Database and Collection are Sendable: share them across tasks.
await withTaskGroup(of: Void.self) { group in
    for i in 0..<4 {
        group.addTask { try? notes.upsert(Document(id: "task-\(i)", vector: [0, 0, 1, Float(i)])) }
    }
}
print("documents: \(try notes.count())")
