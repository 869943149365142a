#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The single system-call layer of Quiver: every open, read, write, fsync, rename and truncate of
/// the WAL and of segment files goes through here. Calls retry `EINTR`, read `errno` at once, and
/// turn failures into `StorageError` values that name the file.
public final class File: @unchecked Sendable {
    // @unchecked: the descriptor is immutable after init; pread/pwrite/fsync on one descriptor are
    // safe from several threads, and callers serialize appends themselves.
    public let path: String
    public let descriptor: Int32
    private var closed = false
    /// Set when this handle took a flock: closing releases it explicitly (see `close`).
    private var locked = false

    /// How to open a file.
    public enum Mode: Sendable {
        case readOnly
        case readWrite
        /// Read-write, created (mode 0644) when missing.
        case createReadWrite
        /// Read-write, created; an existing file is an error.
        case createNew
    }

    public convenience init(path: String, mode: Mode) throws {
        try self.init(path: path, mode: mode, hooked: true)
    }

    /// `hooked` false: not seen by fault injection (its own reads of the files it tracks).
    init(path: String, mode: Mode, hooked: Bool) throws {
        self.path = path
        if hooked { try FaultInjection.before(.open, path, call: "open") }
        var flags: Int32 = O_CLOEXEC
        switch mode {
        case .readOnly: flags |= O_RDONLY
        case .readWrite: flags |= O_RDWR
        case .createReadWrite: flags |= O_RDWR | O_CREAT
        case .createNew: flags |= O_RDWR | O_CREAT | O_EXCL
        }
        let fd = try Syscall.retrying("open", path) { open(path, flags, 0o644) }
        descriptor = fd
    }

    /// Opens an existing regular file for reading, for a path that untrusted input names (a
    /// backup's manifest): a symbolic link is not followed and a FIFO or device does not block the
    /// open (O_NOFOLLOW | O_NONBLOCK); anything but a regular file is an `.invalidArgument` error
    /// naming the path and what it is.
    public init(regularFileForReading path: String) throws {
        self.path = path
        try FaultInjection.before(.open, path, call: "open")
        let fd: Int32
        do {
            fd = try Syscall.retrying("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
        } catch let e as StorageError where e.code == ELOOP {
            throw StorageError(.invalidArgument, "\(path) is a symbolic link, not a regular file", code: ELOOP)
        }
        var st = stat()
        let statResult = fstat(fd, &st)
        let statError = errno
        guard statResult == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            if statResult != 0 { throw Syscall.error("fstat", path, statError) }
            throw StorageError(.invalidArgument, "\(path) is \(File.describeType(st.st_mode)), not a regular file")
        }
        descriptor = fd
    }

    /// What kind of file a mode describes, for messages ("a FIFO", "a directory").
    public static func describeType(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "a special file"
        }
    }

    deinit { close() }

    /// Closes the descriptor; later calls on this handle fail with EBADF. A lock taken with
    /// `tryLockExclusive` is released first, explicitly: a flock belongs to the open file
    /// description, which a child process forked meanwhile shares until its exec, so closing alone
    /// could leave the lock held for a moment after `close` returned.
    public func close() {
        if !closed {
            closed = true
            if locked { _ = flock(descriptor, LOCK_UN) }
            _ = Glibc.close(descriptor)
        }
    }

    /// The file's size in bytes.
    public func size() throws -> Int {
        var st = stat()
        _ = try Syscall.retrying("fstat", path) { fstat(descriptor, &st) }
        return Int(st.st_size)
    }

    /// Writes all of `bytes` at `offset` (looping over short writes).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        CrashPoints.step("file write")
        try FaultInjection.before(.write, path, call: "pwrite")
        var done = 0
        while done < bytes.count {
            let n = try Syscall.retrying("pwrite", path) {
                pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            }
            done += n
        }
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    public func read(count: Int, at offset: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = try Syscall.retrying("pread", path) {
                    pread(descriptor, buf.baseAddress! + done, count - done, off_t(offset + done))
                }
                if n == 0 { break }
                done += n
            }
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    /// Reads the whole file.
    public func readAll() throws -> [UInt8] { try read(count: size(), at: 0) }

    /// Flushes the file's data (and the metadata needed to read it back) to stable storage.
    public func sync() throws {
        CrashPoints.step("file fsync")
        try FaultInjection.before(.fsync, path, call: "fdatasync")
        _ = try Syscall.retrying("fdatasync", path) { fdatasync(descriptor) }
        FaultInjection.synced(path, descriptor: descriptor)
    }

    /// Cuts the file to `length` bytes.
    public func truncate(to length: Int) throws {
        CrashPoints.step("file truncate")
        try FaultInjection.before(.truncate, path, call: "ftruncate")
        _ = try Syscall.retrying("ftruncate", path) { ftruncate(descriptor, off_t(length)) }
    }

    /// Takes an exclusive advisory lock (flock) without waiting; false when another process holds it.
    public func tryLockExclusive() throws -> Bool {
        while true {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                locked = true
                return true
            }
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK { return false }
            throw Syscall.error("flock", path, e)
        }
    }
}

/// What lstat(2) says of a path: a symbolic link is described, not followed.
public struct FileStatus: Sendable, Equatable {
    /// `st_mode` (the type bits and the permissions).
    public let mode: mode_t
    /// `st_size` in bytes.
    public let size: Int

    public var isRegularFile: Bool { mode & S_IFMT == S_IFREG }
    public var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
    public var isSymbolicLink: Bool { mode & S_IFMT == S_IFLNK }
    /// What kind of file it is, for messages ("a FIFO", "a directory").
    public var kind: String { File.describeType(mode) }
}

/// Free functions over paths, with the same error conventions as `File`.
public enum FileSystem {
    /// The status of `path` itself (a link is not followed), or nil when nothing is there (ENOENT,
    /// or ENOTDIR: a component on the way is not a directory). Any other failure throws.
    public static func status(_ path: String) throws -> FileStatus? {
        var st = stat()
        if lstat(path, &st) == 0 { return FileStatus(mode: st.st_mode, size: Int(st.st_size)) }
        let e = errno
        if e == ENOENT || e == ENOTDIR { return nil }
        throw Syscall.error("lstat", path, e)
    }

    /// The absolute path of `path` with every link, `.` and `..` resolved (realpath(3)); nil when
    /// it cannot be resolved (it does not exist, or a component cannot be searched).
    public static func realPath(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates `path` and missing parents (mode 0755); an existing directory is fine. The parent
    /// of each created directory is fsynced, so that the new entry survives a power loss (files
    /// later created in it and fsynced with it would otherwise be lost with it).
    public static func createDirectory(_ path: String) throws {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path && !parent.isEmpty && !isDirectory(parent) { try createDirectory(parent) }
        try FaultInjection.before(.mkdir, path, call: "mkdir")
        if mkdir(path, 0o755) != 0 {
            let e = errno
            if e == EEXIST && isDirectory(path) { return }
            throw Syscall.error("mkdir", path, e)
        }
        if !parent.isEmpty {
            // A parent this process may not read (or a file system without directory fsync) cannot
            // be synced; the directory is still usable, only its entry's durability is the system's.
            do { try syncDirectory(parent) } catch let e as StorageError where [EACCES, EPERM, EINVAL].contains(e.code) {}
        }
    }

    /// The names in a directory (without `.` and `..`), sorted.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw Syscall.error("opendir", path, errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func remove(_ path: String) throws {
        CrashPoints.step("unlink")
        try FaultInjection.before(.unlink, path, call: "unlink")
        FaultInjection.detach(path)
        if unlink(path) != 0 {
            let e = errno
            if e != ENOENT { throw Syscall.error("unlink", path, e) }
        }
    }

    /// Removes a directory tree (no symlinks are followed: a link is removed, not entered).
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw Syscall.error("rmdir", path, errno) }
        } else {
            try remove(path)
        }
    }

    public static func rename(_ from: String, _ to: String) throws {
        CrashPoints.step("rename")
        try FaultInjection.before(.rename, from, call: "rename to \(to)")
        FaultInjection.detach(to)
        _ = try Syscall.retrying("rename", from + " -> " + to) { Glibc.rename(from, to) }
    }

    /// fsyncs a directory so that creations, renames and removals in it are durable.
    public static func syncDirectory(_ path: String) throws {
        CrashPoints.step("directory fsync")
        try FaultInjection.before(.fsync, path, call: "fsync")
        let fd = try Syscall.retrying("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try Syscall.retrying("fsync", path) { fsync(fd) }
        FaultInjection.syncedDirectory(path)
    }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
    /// directory. A crash leaves either the old file or the new one, never a mix.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp"
        try remove(tmp)
        let file = try File(path: tmp, mode: .createNew)
        try file.write(bytes, at: 0)
        try file.sync()
        file.close()
        try rename(tmp, path)
        try syncDirectory(parentDirectory(of: path))
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The total size in bytes of the regular files under `path`.
    public static func diskUsage(_ path: String) -> Int {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            return ((try? list(path)) ?? []).reduce(0) { $0 + diskUsage(path + "/" + $1) }
        }
        return (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : 0
    }
}

/// EINTR-retrying wrappers that read errno at once.
enum Syscall {
    static func retrying<T: BinaryInteger>(_ name: String, _ path: String, _ call: () -> T) throws -> T {
        while true {
            let r = call()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            throw error(name, path, e)
        }
    }

    static func error(_ name: String, _ path: String, _ e: Int32) -> StorageError {
        StorageError(.io, "\(name) failed on \(path): \(String(cString: strerror(e))) (errno \(e))", code: e)
    }
}
