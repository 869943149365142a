import Foundation
import Testing
import QuiverTestSupport

/// The worked examples of docs/cli.md, run as written: each `$ ` line of a worked example's block is
/// run by bash (in a fresh directory holding the repository's `docs/examples`, with the built
/// `quiver` first on PATH) and its output (standard output and error) is compared with the lines
/// that follow it in the document, line by line. Progress lines (they carry rates and times) are
/// left out on both sides.
struct DocsExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The code blocks that follow each "## A worked example" heading.
    static func workedExamples() throws -> [(title: String, lines: [String])] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/cli.md"), encoding: .utf8)
        var out: [(String, [String])] = []
        var title: String?
        var block: [String]?
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("## ") { title = line.hasPrefix("## A worked example") ? line : nil; continue }
            guard let t = title else { continue }
            if line.hasPrefix("```") {
                if let b = block { out.append((t, b)); block = nil; title = nil } else { block = [] }
            } else if block != nil {
                block!.append(line)
            }
        }
        return out
    }

    static func isProgress(_ line: String) -> Bool { line.contains("rows/s") }

    /// Sizes in KiB vary with LMDB's page use from run to run; they are compared as "N KiB".
    static func normalized(_ line: String) -> String {
        line.replacingOccurrences(of: #"[0-9]+(\.[0-9]+)? KiB"#, with: "N KiB", options: .regularExpression)
    }

    @Test func workedExamplesRunAsWritten() throws {
        let examples = try Self.workedExamples()
        #expect(examples.count == 3)
        let quiver = try builtProduct("quiver")
        for (title, lines) in examples {
            let dir = TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: dir.path + "/docs", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Self.root.appendingPathComponent("docs/examples").path, toPath: dir.path + "/docs/examples")
            // Commands (a trailing backslash continues one) and the output expected after each.
            var steps: [(command: String, expected: [String])] = []
            var continuing = false
            for line in lines {
                if continuing {
                    steps[steps.count - 1].command += "\n" + line
                    continuing = line.hasSuffix("\\")
                } else if line.hasPrefix("$ ") {
                    steps.append((String(line.dropFirst(2)), []))
                    continuing = line.hasSuffix("\\")
                } else if !steps.isEmpty {
                    steps[steps.count - 1].expected.append(line)
                }
            }
            // One bash script, each command's output between markers.
            var script = "cd \(dir.path)\nexport PATH=\(URL(fileURLWithPath: quiver).deletingLastPathComponent().path):$PATH\nunset QUIVER_DB\n"
            for (i, step) in steps.enumerated() {
                // The marker keeps the previous command's status for an `echo $?`.
                script += "__rc=$?\necho '@@step \(i)'\n(exit $__rc)\n\(step.command) 2>&1\n"
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", script]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            var got: [[String]] = Array(repeating: [], count: steps.count)
            var current = -1
            for line in String(decoding: data, as: UTF8.self).components(separatedBy: "\n") {
                if line.hasPrefix("@@step "), let i = Int(line.dropFirst(7)) { current = i; continue }
                if current >= 0 { got[current].append(line) }
            }
            if let last = got.indices.last, got[last].last == "" { got[last].removeLast() }
            for (i, step) in steps.enumerated() {
                let expected = step.expected.filter { !Self.isProgress($0) }.map(Self.normalized)
                let actual = got[i].filter { !Self.isProgress($0) }.map(Self.normalized)
                #expect(actual == expected, "\(title): `\(step.command)`")
            }
        }
    }
}
