import Foundation
import QuiverStorage

/// A fresh directory under the system temp dir, removed when the value is released.
public final class TemporaryDirectory {
    public let path: String

    /// - Parameter inMemory: under /dev/shm when it exists (a tmpfs: fsync costs nothing there), for
    ///   tests that run a workload hundreds of times and do not need a disk's durability.
    public init(inMemory: Bool = false) {
        let base = inMemory && FileSystem.isDirectory("/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        var template = Array((base + "/quiver-test-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit { try? FileSystem.removeTree(path) }
}
