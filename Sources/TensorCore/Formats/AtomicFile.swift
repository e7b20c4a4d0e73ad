import Foundation

/// Writes files so that a reader never sees a half-written one: the data goes to a
/// temporary name in the same directory, is flushed to disk, then renamed over `path`.
public enum AtomicFile {
    public struct Failure: ProbeFarmError {
        public var reason: String
        /// The errno behind it (0 if none).
        public var code: Int32 = 0
        /// The file that was being written.
        public var path = ""
        public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
        /// Out of space (or quota) is an I/O error (74) wherever it happens; anything else
        /// means the output cannot be created (73).
        public var sysexit: Sysexit { code == ENOSPC || code == EDQUOT ? .ioError : .cantCreate }
    }

    /// Writes `data` to a temporary name beside `path`, syncs it and renames it into place;
    /// the file has `mode` (less the umask) from its creation on.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw Failure(reason: "cannot create a file in \(dir): \(String(cString: strerror(errno)))", code: errno, path: path)
        }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { ok = false; return }
                off += n
            }
        }
        let err = errno
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let code = ok ? errno : err
            unlink(tmp)
            throw Failure(reason: "cannot write: \(String(cString: strerror(code)))", code: code, path: path)
        }
    }
}
