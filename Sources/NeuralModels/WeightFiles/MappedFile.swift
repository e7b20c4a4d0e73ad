import Foundation

/// A file memory-mapped read-only and shared (`MAP_SHARED`), so every process on a host
/// that maps the same weight file uses one page-cache copy. Unmapped on deinit.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let size: Int

    /// Maps `path`. Empty files are refused (they cannot be mapped and hold no model).
    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw ModelError(.missing, path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelError(.missing, path: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ModelError(.malformedFile, path: path, "not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw ModelError(.malformedFile, path: path,
                             "file is \(size) bytes, too short for a safetensors header (8-byte length + JSON)")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw ModelError(.malformedFile, path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        self.base = UnsafeRawPointer(p)
        self.size = size
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
    }
}
