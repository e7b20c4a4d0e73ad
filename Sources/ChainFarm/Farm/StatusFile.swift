import Foundation

/// A small JSON file a long-running farm process rewrites (atomically) every second or
/// so, for health checks: `probefarm health FILE` reads it. A process whose loop stops
/// turning stops updating it, so its age means something.
public enum StatusFile {
    public struct Status: Codable, Sendable, Equatable {
        public var role: String
        public var pid: Int32
        /// Seconds since 1970, when written.
        public var updated: Double
        /// connecting, fetching, running, idle, draining (worker); serving (coordinator).
        public var state: String
        /// A worker: registered with a coordinator heard from recently. A coordinator: bound.
        public var connected: Bool
        public var segments: Int
        public var workers: Int?

        public init(role: String, state: String, connected: Bool, segments: Int, workers: Int? = nil) {
            self.role = role
            self.pid = getpid()
            self.updated = Date().timeIntervalSince1970
            self.state = state
            self.connected = connected
            self.segments = segments
            self.workers = workers
        }
    }

    /// Writes to a temporary name and renames, so a reader never sees half a file.
    public static func write(_ status: Status, to path: String) {
        guard let data = try? JSONEncoder().encode(status) else { return }
        let temporary = path + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    public static func read(_ path: String) throws -> Status {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RunError("\(path): no status file (is the process running with --status \(path)?)", sysexit: .unavailable)
        }
        do { return try JSONDecoder().decode(Status.self, from: data) } catch {
            throw RunError("\(path): not a ProbeFarm status file", sysexit: .dataError)
        }
    }
}
