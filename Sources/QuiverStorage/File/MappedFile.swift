#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (`mmap(PROT_READ, MAP_PRIVATE)`), unmapped when the
/// last reference goes away. Segment files are opened this way so that an index can use its vectors
/// and links in place. The bytes must not change while mapped: Quiver never rewrites a segment file,
/// and a file that is removed stays readable through an existing mapping.
public final class MappedFile: @unchecked Sendable {
    // @unchecked: immutable after init; the mapping is read-only.
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let file = try File(path: path, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, file.descriptor, 0)
        guard let base = p, base != MAP_FAILED else { throw Syscall.error("mmap", path, errno) }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
