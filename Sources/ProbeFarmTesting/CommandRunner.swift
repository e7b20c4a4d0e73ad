import Foundation

/// Runs the built `probefarm` executable, as a user would, and captures its output.
public enum CommandRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The `probefarm` binary beside the test bundle (same build configuration), or
    /// `$PROBEFARM` if set.
    public static var executable: URL {
        if let p = ProcessInfo.processInfo.environment["PROBEFARM"] { return URL(fileURLWithPath: p) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("probefarm")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return Fixtures.repositoryRoot.appendingPathComponent(".build/release/probefarm")
    }

    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try run(executable, arguments, environment: environment)
    }

    /// Runs another program (a reference tool: ncdump, chromium, a fixture script).
    public static func run(_ program: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = program
        p.arguments = arguments
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently with the process so neither fills up.
        nonisolated(unsafe) var errData = Data()
        let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

extension CommandRunner {
    /// Starts `probefarm` in the background with stdout and stderr going to `log`.
    public static func start(_ arguments: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        return p
    }

    /// Waits for a background process, at most `timeout` seconds (then kills it).
    /// - Returns: its exit status, or nil if it had to be killed.
    @discardableResult
    public static func wait(_ p: Process, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return nil
        }
        return p.terminationStatus
    }

    /// Process ids whose command line contains every one of `fragments` (from /proc).
    public static func pids(matching fragments: String...) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return fragments.allSatisfy { line.contains($0) }
        }.sorted()
    }
}

extension CommandRunner {
    /// Runs `Scripts/NAME` with bash, `PROBEFARM` set to the built executable, and returns
    /// its status and its stdout and stderr together.
    public static func script(_ name: String) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Fixtures.repositoryRoot.appendingPathComponent("Scripts/\(name)").path]
        p.environment = ProcessInfo.processInfo.environment.merging(["PROBEFARM": executable.path]) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }
}
