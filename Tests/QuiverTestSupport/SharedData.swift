import Foundation

/// Where the shared evaluation data and encoder fixtures live (`data/`, `fixtures/`): the folder
/// named by `$QUIVER_SHARED`, else `shared/` beside the repository (the workplace layout), else
/// `/work/shared`, so that a clone anywhere (CI clones into a temporary directory) finds them.
public enum SharedData {
    public static let directory: URL = {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["QUIVER_SHARED"] { candidates.append(URL(fileURLWithPath: env)) }
        candidates.append(repository.deletingLastPathComponent().appendingPathComponent("shared"))
        candidates.append(URL(fileURLWithPath: "/work/shared"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("data").path) } ?? candidates[0]
    }()

    /// `data/<name>` in the shared folder.
    public static func data(_ name: String) -> URL { directory.appendingPathComponent("data").appendingPathComponent(name) }

    /// `fixtures/<name>` in the shared folder.
    public static func fixture(_ name: String) -> URL { directory.appendingPathComponent("fixtures").appendingPathComponent(name) }
}
