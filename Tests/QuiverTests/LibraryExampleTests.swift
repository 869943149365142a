import Foundation
import Testing
import QuiverTestSupport

/// docs/library.md shows the example host app; this keeps the doc and the compiled example equal
/// and runs the example.
struct LibraryExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func docShowsTheCompiledExample() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let source = try String(contentsOf: Self.root.appendingPathComponent("Sources/QuiverExample/main.swift"), encoding: .utf8)
        let blocks = doc.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let code = source.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)[2]
        #expect(blocks.contains(String(code)), "the swift block of docs/library.md differs from Sources/QuiverExample/main.swift")
    }

    @Test func exampleRunsAndPrintsWhatTheDocSays() throws {
        let dir = TemporaryDirectory()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try builtProduct("QuiverExample"))
        p.arguments = [dir.path + "/db"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let printed = doc.components(separatedBy: "It prints:\n\n```\n")[1].components(separatedBy: "```")[0]
        #expect(output == printed)
    }
}
