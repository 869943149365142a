import Foundation
import Glibc
import Testing
import QuiverTestSupport
@testable import Quiver

/// `quiver import` into a collection with the built-in encoder, its standard error on a real
/// pseudo-terminal: the first progress is drawn within 2 s of the start and the bar is redrawn at
/// least every 2 s until the import ends (the model's loading and every batch's embedding included).
struct ImportProgressCLITests {
    /// What a process wrote to the terminal, with when each piece arrived (seconds since launch).
    final class TerminalLog: @unchecked Sendable {
        private let lock = NSLock()
        private var pieces: [(Double, String)] = []
        func add(_ t: Double, _ s: String) { lock.lock(); pieces.append((t, s)); lock.unlock() }
        var all: [(Double, String)] { lock.lock(); defer { lock.unlock() }; return pieces }
    }

    @Test func progressOnATerminalComesWithinTwoSecondsAndKeepsComing() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        let created = try cli.run(["create", "notes", "--encoder", "all-MiniLM-L6-v2"])
        #expect(created.status == 0, "\(created.stderr)")
        let words = ["protein", "cell", "signal", "tumour", "growth", "receptor", "binding", "pathway", "immune", "response",
                     "gene", "expression", "patients", "trial", "dose", "risk", "cohort", "mutation", "brain", "cortex"]
        var lines: [String] = []
        for i in 0..<200 {
            let text = (0..<(40 + i % 60)).map { words[($0 * 7 + i * 3) % words.count] }.joined(separator: " ")
            lines.append("{\"id\":\"n\(i)\",\"text\":\"\(text)\"}")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.path + "/notes.jsonl", atomically: true, encoding: .utf8)

        var master: Int32 = -1, slave: Int32 = -1
        #expect(openpty(&master, &slave, nil, nil, nil) == 0)
        defer { close(master) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try builtProduct("quiver"))
        p.arguments = ["import", "notes", dir.path + "/notes.jsonl", "--db", dir.path + "/db"]
        p.standardError = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        p.standardOutput = FileHandle.nullDevice
        let log = TerminalLog()
        let launched = ProcessInfo.processInfo.systemUptime
        try p.run()
        close(slave)
        let fd = master
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }  // EIO once the process (the last holder of the terminal) is gone
                log.add(ProcessInfo.processInfo.systemUptime - launched, String(decoding: buffer[..<n], as: UTF8.self))
            }
        }
        reader.start()
        p.waitUntilExit()
        let ended = ProcessInfo.processInfo.systemUptime - launched
        usleep(200_000)
        #expect(p.terminationStatus == 0)
        let pieces = log.all
        let text = pieces.map(\.1).joined()
        #expect(text.contains("rows/s") && text.contains("ETA"), "\(text)")
        #expect(text.contains("200 rows"), "\(text)")
        let first = try #require(pieces.first?.0)
        #expect(first <= 2, "the first progress came after \(first) s")
        let times = pieces.map(\.0) + [ended]
        let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
        #expect(gaps.allSatisfy { $0 <= 2 }, "gaps between redraws: \(gaps.map { String(format: "%.2f", $0) })")
        print("import progress on a terminal: first after \(String(format: "%.2f", first)) s, \(pieces.count) redraws in \(String(format: "%.1f", ended)) s, longest gap \(String(format: "%.2f", gaps.max() ?? 0)) s")
    }
}
