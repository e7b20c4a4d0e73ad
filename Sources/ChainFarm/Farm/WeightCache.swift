import Foundation
import NeuralModels

/// The content-addressed cache of the files a job names (weights, start points, anchors):
/// a file lives under its sha256, is written under a temporary name and renamed into
/// place, and one process per host writes it (holding `flock` on `.SHA256.lock`) while
/// the others wait. Every process on a host then maps the same inode: one page-cache copy.
public struct WeightCache: Sendable {
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// Where the file of this digest lives (whether or not it is there yet).
    public func path(_ sha256: String) -> String { (directory as NSString).appendingPathComponent(sha256) }

    func lockPath(_ sha256: String) -> String { path(".\(sha256).lock") }

    /// The writing process's temporary name: a dead writer's leftovers never collide.
    func temporaryPath(_ sha256: String) -> String { path(".\(sha256).\(getpid()).partial") }

    /// Copies a local file into the cache unless it is there, checking while copying that
    /// its content still has the digest `sha256`; returns the cached path. `probefarm run`
    /// does this before starting its workers, which then find the file instead of fetching
    /// it, and its coordinator maps the cached copy as they do.
    public func install(_ source: String, sha256: String) throws -> String {
        let target = path(sha256)
        if FileManager.default.fileExists(atPath: target) { return target }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw RunError("cannot create the weight cache \(directory): \(error)", sysexit: .cantCreate)
        }
        let lock = open(lockPath(sha256), O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw RunError("cannot create \(lockPath(sha256)) (check --cache)", sysexit: .cantCreate) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw RunError("cannot lock \(lockPath(sha256))", sysexit: .ioError) }
        if FileManager.default.fileExists(atPath: target) { return target }  // another process put it there meanwhile

        let temporary = temporaryPath(sha256)
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw RunError("\(source): cannot open: \(String(cString: strerror(errno)))", sysexit: .noInput) }
        defer { close(input) }
        let output = open(temporary, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw RunError("cannot write \(temporary) (check --cache)", sysexit: .cantCreate) }
        var hash = SHA256()
        do {
            defer { close(output) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buffer.deallocate() }
            while true {
                let n = read(input, buffer.baseAddress, buffer.count)
                guard n >= 0 else { throw RunError("\(source): read failed: \(String(cString: strerror(errno)))", sysexit: .ioError) }
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                hash.update(chunk)
                var written = 0
                while written < n {
                    let w = write(output, chunk.baseAddress! + written, n - written)
                    guard w > 0 else { throw RunError("cannot write \(temporary): \(String(cString: strerror(errno)))", sysexit: .ioError) }
                    written += w
                }
            }
            guard fsync(output) == 0 else { throw RunError("cannot sync \(temporary)", sysexit: .ioError) }
        } catch {
            unlink(temporary)
            throw error
        }
        let actual = hash.finalizeHex()
        guard actual == sha256 else {
            unlink(temporary)
            throw RunError("\(source) changed while it was read (sha256 \(actual.prefix(12))…, expected \(sha256.prefix(12))…)", sysexit: .dataError)
        }
        guard rename(temporary, target) == 0 else {
            unlink(temporary)
            throw RunError("cannot move \(temporary) into the cache", sysexit: .cantCreate)
        }
        return target
    }
}
