#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Fault injection and power-loss simulation in the file layer, for tests (in the manner of
/// SQLite's crash VFS and RocksDB's FaultInjectionTestFS).
///
/// Every open, write, fsync (of a file or a directory), ftruncate, rename, unlink and mkdir that
/// `File` and `FileSystem` make calls `FaultInjection.before(_:_:)` first. While a plan is
/// installed, the calls on paths under the plan's root are counted per operation, and:
///
/// - **Faults**: the nth call of one operation fails with the plan's errno (EIO, ENOSPC, ...),
///   once or, when persistent, from then on. The error is the one a real failure would give
///   (`StorageError(.io)` naming the call and the file), with `[injected]` appended.
/// - **Power cut**: the file layer keeps what a power loss would leave: the contents of each file
///   as of its last fsync (files are known by inode, so a rename carries its durable data along),
///   and the entries of each directory as of the directory's last fsync. At the nth fsync, before
///   it runs, the power is cut: the durable state is written out as a fresh directory tree (the
///   image), and from then on every call under the root fails with EIO, as if the machine were
///   gone. The image is what a machine would find after rebooting: unsynced appends and writes
///   gone, files created or renamed since their directory's last fsync gone or back at their old
///   names, files removed since then back.
///
/// The boundary of the model is LMDB: it does its own I/O in C. Its directory (`lmdb/`, and the
/// `LOCK` file) is copied into the image as it is at the cut, that is, with every committed
/// transaction: LMDB is opened with `MDB_NOMETASYNC` (data pages fsynced at each commit, the meta
/// page at the next commit or `mdb_env_sync`) under `full` durability, so at a real power loss the
/// last commit may also be undone, which the write-ahead log replays; the image models the other
/// outcome, a commit that survived while the log records written before it did not.
///
/// In-process use (tests): `install(_:)` a plan, run a workload, `finish()` for the counts. One
/// plan at a time per process; calls on paths outside the root are untouched, so other tests may
/// run meanwhile. Child processes: `QUIVER_FAULT=<operation>:<n>:<EIO|ENOSPC|errno>[:persistent]`
/// and, optionally, `QUIVER_FAULT_ROOT=<directory>` (default: every path).
///
/// Compiled into debug builds only: in release builds `before` and the other hooks are empty and
/// `install` refuses.
public enum FaultInjection {
    /// The file-layer calls that can fail.
    public enum Operation: String, CaseIterable, Sendable {
        case open, write, fsync, truncate, rename, unlink, mkdir
    }

    /// One injected failure: the `nth` (1-based) call of `operation` under the root fails with
    /// `errno`; with `persistent`, every later call of that operation fails too.
    public struct Fault: Sendable, Equatable {
        public var operation: Operation
        public var nth: Int
        public var errno: Int32
        public var persistent: Bool

        public init(_ operation: Operation, nth: Int, errno: Int32, persistent: Bool = false) {
            self.operation = operation
            self.nth = nth
            self.errno = errno
            self.persistent = persistent
        }
    }

    /// What to do to the calls under `root`.
    public struct Plan: Sendable {
        public var root: String
        public var fault: Fault?
        /// Cut the power before the nth fsync (files and directories counted together) and write
        /// the durable state to `powerCutImage`.
        public var powerCutAtFsync: Int?
        public var powerCutImage: String?

        public init(root: String, fault: Fault? = nil, powerCutAtFsync: Int? = nil, powerCutImage: String? = nil) {
            self.root = root
            self.fault = fault
            self.powerCutAtFsync = powerCutAtFsync
            self.powerCutImage = powerCutImage
        }
    }

    /// What happened while a plan was installed.
    public struct Report: Sendable {
        /// Calls counted under the root, per operation.
        public var counts: [Operation: Int] = [:]
        /// The call that the fault failed first ("fsync /path"), if it fired.
        public var firstFailure: String?
        /// Whether the power was cut (and the image written).
        public var powerCut = false
    }

    /// Whether fault injection is compiled in (debug builds).
    public static var isAvailable: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }

    #if DEBUG
    private static let active = Atomic<Bool>(environmentPlan != nil)
    private static let state = Mutex<Tracker?>(environmentPlan.map { Tracker(plan: $0) })

    private static let environmentPlan: Plan? = {
        guard let spec = getenv("QUIVER_FAULT").map({ String(cString: $0) }) else { return nil }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count >= 3, let op = Operation(rawValue: parts[0]), let n = Int(parts[1]) else {
            let message = "QUIVER_FAULT=\(spec) is not <operation>:<n>:<errno>[:persistent]; ignored\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            return nil
        }
        let code: Int32 = parts[2] == "EIO" ? EIO : parts[2] == "ENOSPC" ? ENOSPC : Int32(parts[2]) ?? EIO
        let root = getenv("QUIVER_FAULT_ROOT").map { String(cString: $0) } ?? "/"
        return Plan(root: root, fault: Fault(op, nth: n, errno: code, persistent: parts.count > 3 && parts[3] == "persistent"))
    }()
    #endif

    /// Installs `plan` (replacing any other). For the power cut, the tree under the root is read
    /// now as the durable starting state.
    public static func install(_ plan: Plan) {
        #if DEBUG
        state.withLock { $0 = Tracker(plan: plan) }
        active.store(true, ordering: .sequentiallyConsistent)
        #else
        preconditionFailure("fault injection is compiled into debug builds only")
        #endif
    }

    /// Removes the plan and reports what happened under it.
    @discardableResult
    public static func finish() -> Report {
        #if DEBUG
        active.store(false, ordering: .sequentiallyConsistent)
        return state.withLock { tracker in
            defer { tracker = nil }
            return tracker?.report ?? Report()
        }
        #else
        return Report()
        #endif
    }

    /// Called before each call of `operation` on `path`: counts it and throws the injected failure.
    @inline(__always)
    static func before(_ operation: Operation, _ path: String, call: String) throws {
        #if DEBUG
        guard active.load(ordering: .relaxed) else { return }
        if let e = state.withLock({ $0?.before(operation, path) }) {
            throw StorageError(.io, "\(call) failed on \(path): \(String(cString: strerror(e))) (errno \(e)) [injected]", code: e)
        }
        #endif
    }

    /// Called after a file's fsync succeeded: its contents are now durable.
    @inline(__always)
    static func synced(_ path: String, descriptor: Int32) {
        #if DEBUG
        guard active.load(ordering: .relaxed) else { return }
        state.withLock { $0?.synced(path, descriptor: descriptor) }
        #endif
    }

    /// Called after a directory's fsync succeeded: its entries are now durable.
    @inline(__always)
    static func syncedDirectory(_ path: String) {
        #if DEBUG
        guard active.load(ordering: .relaxed) else { return }
        state.withLock { $0?.syncedDirectory(path) }
        #endif
    }

    /// Called before `path` is unlinked or replaced by a rename: its inode may be reused, so its
    /// durable data must no longer be found by inode number.
    @inline(__always)
    static func detach(_ path: String) {
        #if DEBUG
        guard active.load(ordering: .relaxed) else { return }
        state.withLock { $0?.detach(path) }
        #endif
    }
}

#if DEBUG
extension FaultInjection {
    /// The state of one installed plan. Guarded by `state`'s lock.
    struct Tracker {
        enum Entry { case file(Int), directory }

        let plan: Plan
        var report = Report()
        var faultFired = false
        var dead = false
        var fsyncs = 0
        // Power-loss model: durable data by key; inode -> key for the files alive now (a removed
        // inode gets a fresh key when it is seen again); directory path -> durable entries.
        var nextKey = 0
        var keys: [UInt64: Int] = [:]
        var durableData: [Int: [UInt8]] = [:]
        var durableEntries: [String: [String: Entry]] = [:]

        init(plan: Plan) {
            self.plan = plan
            if plan.powerCutAtFsync != nil { snapshot(plan.root) }
        }

        func covers(_ path: String) -> Bool {
            plan.root == "/" || path == plan.root || path.hasPrefix(plan.root + "/")
        }

        mutating func before(_ operation: Operation, _ path: String) -> Int32? {
            guard covers(path) else { return nil }
            if dead { return EIO }
            let n = report.counts[operation, default: 0] + 1
            report.counts[operation] = n
            if operation == .fsync, let cut = plan.powerCutAtFsync, n == cut {
                if let image = plan.powerCutImage { writeImage(to: image) }
                report.powerCut = true
                dead = true
                return EIO
            }
            guard let f = plan.fault, f.operation == operation else { return nil }
            if n == f.nth || (f.persistent && n > f.nth) {
                if !faultFired { report.firstFailure = "\(operation.rawValue) \(path)" }
                faultFired = true
                return f.errno
            }
            return nil
        }

        var tracking: Bool { plan.powerCutAtFsync != nil && !dead }

        mutating func key(inode: UInt64) -> Int {
            if let k = keys[inode] { return k }
            nextKey += 1
            keys[inode] = nextKey
            return nextKey
        }

        /// Reads the tree under `root` as the durable starting state.
        mutating func snapshot(_ dir: String) {
            guard FileSystem.isDirectory(dir) else { return }
            syncedDirectory(dir)
            for name in (try? FileSystem.list(dir)) ?? [] {
                let path = dir + "/" + name
                if FileSystem.isDirectory(path) {
                    snapshot(path)
                } else if let file = try? File(path: path, mode: .readOnly, hooked: false) {
                    synced(path, descriptor: file.descriptor)
                }
            }
        }

        mutating func synced(_ path: String, descriptor: Int32) {
            guard tracking, covers(path) else { return }
            var st = stat()
            guard fstat(descriptor, &st) == 0 else { return }
            var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
            let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            if n >= 0 && n < bytes.count { bytes.removeLast(bytes.count - n) }
            durableData[key(inode: UInt64(st.st_ino))] = bytes
        }

        mutating func syncedDirectory(_ path: String) {
            guard tracking, covers(path) else { return }
            var entries: [String: Entry] = [:]
            for name in (try? FileSystem.list(path)) ?? [] {
                var st = stat()
                guard lstat(path + "/" + name, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    entries[name] = .directory
                } else if (st.st_mode & S_IFMT) == S_IFREG {
                    entries[name] = .file(key(inode: UInt64(st.st_ino)))
                }
            }
            durableEntries[path] = entries
        }

        mutating func detach(_ path: String) {
            guard tracking, covers(path) else { return }
            var st = stat()
            if lstat(path, &st) == 0 { keys[UInt64(st.st_ino)] = nil }
        }

        /// Writes the durable state of the tree as a fresh tree at `image` (which must not exist;
        /// the tracker holds the lock, so it cannot use the hooked calls). The LMDB directory and
        /// the lock file at the top are copied as they are (see the type's comment).
        func writeImage(to image: String) {
            writeDirectory(plan.root, to: image, top: true)
        }

        private func writeDirectory(_ dir: String, to out: String, top: Bool) {
            mkdir(out, 0o755)
            var entries = durableEntries[dir] ?? [:]
            if top {
                for name in ["lmdb", "LOCK"] where FileSystem.exists(dir + "/" + name) { entries[name] = nil }
                copyAsIs(dir + "/LOCK", to: out + "/LOCK")
                if FileSystem.isDirectory(dir + "/lmdb") {
                    mkdir(out + "/lmdb", 0o755)
                    copyAsIs(dir + "/lmdb/data.mdb", to: out + "/lmdb/data.mdb")
                }
            }
            for (name, entry) in entries {
                switch entry {
                case .directory:
                    writeDirectory(dir + "/" + name, to: out + "/" + name, top: false)
                case .file(let k):
                    writeFile(durableData[k] ?? [], to: out + "/" + name)
                }
            }
        }

        private func copyAsIs(_ from: String, to: String) {
            guard FileSystem.exists(from), let f = try? File(path: from, mode: .readOnly, hooked: false),
                  let bytes = try? f.readAll() else { return }
            writeFile(bytes, to: to)
        }

        private func writeFile(_ bytes: [UInt8], to path: String) {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
                if n <= 0 { return }
                done += n
            }
        }
    }
}
#endif
