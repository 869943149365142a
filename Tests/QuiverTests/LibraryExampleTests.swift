import Foundation
import Testing
import QuiverTestSupport

/// docs/library.md shows two example host apps; this keeps the doc and the compiled examples equal
/// and runs them: the first (`QuiverExample`), and the text-search one (`QuiverTextExample`) with the
/// real model, found where the guide says, and without it.
struct LibraryExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelName = "all-MiniLM-L6-v2"

    static func doc() throws -> String {
        try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
    }

    /// The file's code: everything after its two header-comment lines.
    static func code(_ target: String) throws -> String {
        let source = try String(contentsOf: root.appendingPathComponent("Sources/\(target)/main.swift"), encoding: .utf8)
        return String(source.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)[2])
    }

    /// The first plain code block after `marker` in the doc.
    static func block(after marker: String) throws -> String {
        let parts = try doc().components(separatedBy: marker)
        try #require(parts.count == 2, "docs/library.md has \(parts.count - 1) occurrences of \(marker)")
        return parts[1].components(separatedBy: "```\n")[1]
    }

    /// Runs `executable` with `arguments` and `environment` (nil: this process's); stdout and status.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    directory: String? = nil) throws -> (output: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (output, p.terminationStatus)
    }

    /// This process's environment without `QUIVER_MODELS` and with `HOME` set to `home`: a machine
    /// where the model is in no default place.
    static func environmentWithoutModels(home: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["QUIVER_MODELS"] = nil
        env["HOME"] = home
        return env
    }

    /// The installed model's folder (tools/setup installs it), or a failed requirement.
    static func installedModel() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let dir = env["QUIVER_MODELS"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/share/quiver/models")
        let folder = dir + "/" + modelName
        try #require(FileManager.default.fileExists(atPath: folder + "/model.safetensors"), "the model is not installed at \(folder): run tools/install-model")
        return folder
    }

    @Test func docShowsTheCompiledExamples() throws {
        let doc = try Self.doc()
        let blocks = doc.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.contains(try Self.code("QuiverExample")), "a swift block of docs/library.md should be Sources/QuiverExample/main.swift")
        #expect(blocks.contains(try Self.code("QuiverTextExample")), "a swift block of docs/library.md should be Sources/QuiverTextExample/main.swift")
    }

    @Test func exampleRunsAndPrintsWhatTheDocSays() throws {
        let dir = TemporaryDirectory()
        let (output, status) = try Self.run(try builtProduct("QuiverExample"), [dir.path + "/db"])
        #expect(status == 0)
        #expect(output == (try Self.block(after: "It prints:\n\n")))
    }

    /// The text example with the model where tools/install-model put it; again (a second run over
    /// the same database changes nothing) from a copy of the binary that has the model in a
    /// `models` directory beside it, with QUIVER_MODELS unset and HOME elsewhere; and with
    /// QUIVER_MODELS naming that directory.
    @Test func textExampleRunsAndPrintsWhatTheDocSays() throws {
        let expected = try Self.block(after: "With the model installed, it prints:\n\n")
        let model = try Self.installedModel()
        let dir = TemporaryDirectory()
        let (output, status) = try Self.run(try builtProduct("QuiverTextExample"), [dir.path + "/db"])
        #expect(status == 0)
        #expect(output == expected)

        let app = TemporaryDirectory()
        try FileManager.default.copyItem(atPath: try builtProduct("QuiverTextExample"), toPath: app.path + "/PaperSearch")
        try FileManager.default.createDirectory(atPath: app.path + "/models", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: app.path + "/models/" + Self.modelName, withDestinationPath: model)
        let home = TemporaryDirectory()
        let shipped = try Self.run(app.path + "/PaperSearch", [dir.path + "/db"], environment: Self.environmentWithoutModels(home: home.path))
        #expect(shipped.status == 0)
        #expect(shipped.output == expected)

        // The environment variable: the original binary, HOME elsewhere, QUIVER_MODELS naming the
        // directory that holds the folder.
        var env = Self.environmentWithoutModels(home: home.path)
        env["QUIVER_MODELS"] = app.path + "/models"
        let fromEnvironment = try Self.run(try builtProduct("QuiverTextExample"), [dir.path + "/db"], environment: env)
        #expect(fromEnvironment.status == 0)
        #expect(fromEnvironment.output == expected)
    }

    /// Without the model, the text example prints the error the doc shows (the doc's HOME is
    /// /home/app) and exits with status 1.
    @Test func textExampleWithoutTheModelPrintsTheDocumentedError() throws {
        let home = TemporaryDirectory()
        let dir = TemporaryDirectory()
        let (output, status) = try Self.run(try builtProduct("QuiverTextExample"), [dir.path + "/db"],
                                            environment: Self.environmentWithoutModels(home: home.path))
        #expect(status == 1)
        let documented = try Self.block(after: "exits with status 1; the test suite runs it so and compares:\n\n")
        #expect(output.replacingOccurrences(of: home.path, with: "/home/app") == documented)
    }

    /// The acceptance test of the guide: a host app made from docs/library.md alone, in a fresh
    /// directory, built with `swift build` against this checkout, finds the model shipped beside
    /// its binary. Compiling Quiver from scratch takes minutes: opt-in with QUIVER_SLOW=1.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["QUIVER_SLOW"] != nil))
    func hostAppBuiltFromTheGuideFindsTheShippedModel() throws {
        let doc = try Self.doc()
        let swiftBlocks = doc.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let manifest = try #require(swiftBlocks.first { $0.hasPrefix("// swift-tools-version") }, "docs/library.md shows no host-app manifest")
        let mainSwift = try #require(swiftBlocks.first { $0.contains("createCollection(\"papers\", encoder:") }, "docs/library.md shows no text example")
        let model = try Self.installedModel()

        // A fresh directory: `quiver` (a link to this checkout, as the manifest's `../quiver`) and the app.
        let work = TemporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: work.path + "/quiver", withDestinationPath: Self.root.path)
        let app = work.path + "/PaperSearch"
        try FileManager.default.createDirectory(atPath: app + "/Sources/PaperSearch", withIntermediateDirectories: true)
        try manifest.write(toFile: app + "/Package.swift", atomically: true, encoding: .utf8)
        try mainSwift.write(toFile: app + "/Sources/PaperSearch/main.swift", atomically: true, encoding: .utf8)

        // The portable build of the guide: QUIVER_PORTABLE=1 reaches Quiver's manifest as a dependency.
        var env = ProcessInfo.processInfo.environment
        env["QUIVER_PORTABLE"] = "1"
        let started = Date()
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        build.arguments = ["swift", "build", "-v"]
        build.environment = env
        build.currentDirectoryURL = URL(fileURLWithPath: app)
        let log = app + "/build.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        build.standardOutput = logHandle
        build.standardError = logHandle
        try build.run()
        build.waitUntilExit()
        try logHandle.close()
        let buildLog = try String(contentsOfFile: log, encoding: .utf8)
        print("host app: swift build took \(Int(Date().timeIntervalSince(started))) s")
        try #require(build.terminationStatus == 0, "swift build of the guide's host app failed:\n\(buildLog.suffix(4_000))")
        #expect(!buildLog.contains("-target-cpu"), "QUIVER_PORTABLE=1 did not reach Quiver's manifest")
        #expect(buildLog.contains("QuiverEncoder"), "the build log does not show Quiver being compiled")

        let binary = app + "/.build/debug/PaperSearch"
        let home = TemporaryDirectory()
        let bare = Self.environmentWithoutModels(home: home.path)
        let expected = try Self.block(after: "With the model installed, it prints:\n\n")

        // Without the model: the documented error.
        let missing = try Self.run(binary, [work.path + "/db-missing"], environment: bare)
        #expect(missing.status == 1)
        let documented = try Self.block(after: "exits with status 1; the test suite runs it so and compares:\n\n")
        #expect(missing.output.replacingOccurrences(of: home.path, with: "/home/app") == documented)

        // Shipped as the guide says: the folder copied into `models` beside the binary.
        try FileManager.default.createDirectory(atPath: app + "/.build/debug/models", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: model, toPath: app + "/.build/debug/models/" + Self.modelName)
        let shipped = try Self.run(binary, [work.path + "/db"], environment: bare)
        #expect(shipped.status == 0)
        #expect(shipped.output == expected)
    }
}
