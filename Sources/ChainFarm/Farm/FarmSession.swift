import FarmWire
import FarmZeroMQ
import Foundation
import Logging
import NeuralModels
import Probes

/// The coordinator's side of a job from the command line: check the job, open (or
/// resume) its run directory and journal, run the farm, write the results.
public struct FarmSession {
    public var plan: JobPlan
    public var directory: RunDirectory
    public var journal: Journal
    public var replay: [[[UInt8]]]
    /// What `--resume` found damaged in the journal (skipped; those segments run again).
    public var damage: [Journal.Damage] = []
    /// The job's reference data, read and checked before any chain runs.
    public var reference: ReferenceData?

    /// Checks the job against its models (before any chain runs) and opens the journal.
    /// - Parameters:
    ///   - resume: continue from the run directory's journal instead of starting.
    ///   - resumeIfPresent: continue when there is a journal, start when there is none
    ///     (for launchers that restart or requeue the same command: Slurm, systemd).
    ///   - cache: the weight cache of workers on this machine (`probefarm run`): the job's
    ///     files are put there first and the coordinator maps those copies, so that the
    ///     workers fetch nothing and every process maps one page-cache copy.
    public init(jobPath: String, output: String?, overwrite: Bool, resume: Bool, resumeIfPresent: Bool = false, segment: Int,
                cache: WeightCache? = nil) throws {
        var job = try Job.load(jobPath)
        plan = try JobPlan(job)  // checks the job against its files, naming the key at fault
        if let cache {
            for name in job.referencedFiles {
                let path = job.resolve(name)
                let file: MappedFile
                do { file = try MappedFile(path: path) } catch { throw RunError("\(error)", sysexit: .noInput) }
                let sha256 = withExtendedLifetime(file) { SHA256.hex(file.bytes) }
                job.fileOverrides[name] = try cache.install(path, sha256: sha256)
            }
            plan = try JobPlan(job)
        }
        reference = try plan.reference()
        directory = RunDirectory(path: output ?? job.output)
        let journalPath = (directory.path as NSString).appendingPathComponent(Journal.fileName)
        if resume || (resumeIfPresent && FileManager.default.fileExists(atPath: journalPath)) {
            let (j, header, records, damage) = try Journal.resume(at: journalPath)
            self.damage = damage
            guard header.jobSHA256 == job.sha256 else {
                throw RunError("\(journalPath) belongs to another version of the job (sha256 \(header.jobSHA256.prefix(12))…, this file \(job.sha256.prefix(12))…); resume with the job file it was started with", sysexit: .config)
            }
            journal = j
            replay = records
        } else {
            do { try directory.prepare(overwrite: overwrite) } catch { throw RunError("\(error)", sysexit: .cantCreate) }
            if overwrite { try? FileManager.default.removeItem(atPath: journalPath) }
            journal = try Journal.create(at: journalPath, header: Journal.Header(
                jobSHA256: job.sha256, jobFile: job.file, segment: segment, chains: job.chains, batch: job.batch))
            replay = []
        }
    }

    /// Writes the run directory from a finished run.
    public func write(_ outcome: RunOutcome, workers: Int) throws -> RunDirectory.Summary {
        try directory.write(plan: plan, outcome: outcome, workers: workers, reference: reference)
    }
}

/// Worker processes on this machine for `probefarm run`: started from this executable,
/// restarted if one dies (not if it leaves, exit status 0) before the job is over, told to
/// stop when it is.
public final class LocalWorkerPool: @unchecked Sendable {
    let executable: String
    let arguments: [String]
    let lock = NSLock()
    var processes = [Int: Process]()
    var stopping = false
    let logger: Logger
    public private(set) var restarts = 0
    /// Workers that failed on their own (an error exit or a crash, not a kill) soon after
    /// starting, in a row: a worker that cannot run this job is not restarted for ever.
    var quickFailures = 0
    static let quickFailureLimit = 5
    static let quickSeconds = 30.0
    var failureReason: String?

    public init(executable: String, arguments: [String], logger: Logger) {
        self.executable = executable
        self.arguments = arguments
        self.logger = logger
    }

    public func start(count: Int) throws {
        for i in 0..<count { try spawn(i) }
    }

    func spawn(_ slot: Int) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments + ["--name", "local-\(slot + 1)"]
        // A worker runs OpenBLAS on one thread; without this OpenBLAS still starts a helper
        // thread per core at load, each with its own buffer (as the Deploy units set it).
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = environment
        let started = Date()
        p.terminationHandler = { [weak self] proc in
            guard let self else { return }
            let status = proc.terminationReason == .exit ? "status \(proc.terminationStatus)" : "signal \(proc.terminationStatus)"
            let killed = proc.terminationReason == .uncaughtSignal && [SIGKILL, SIGTERM, SIGINT].contains(proc.terminationStatus)
            let failedOnItsOwn = !killed && !(proc.terminationReason == .exit && proc.terminationStatus == 0)
            lock.lock()
            if failedOnItsOwn && Date().timeIntervalSince(started) < Self.quickSeconds { quickFailures += 1 } else { quickFailures = 0 }
            if quickFailures >= Self.quickFailureLimit && failureReason == nil {
                failureReason = "worker processes failed \(quickFailures) times in a row within \(Int(Self.quickSeconds)) s of starting (last: \(status)); their log above says why"
                stopping = true
            }
            // Status 0: it left on purpose (told the job is over or stopped, or asked to
            // leave): restarting it would race the coordinator's own end.
            let again = !stopping && !(proc.terminationReason == .exit && proc.terminationStatus == 0)
            if again { restarts += 1 }
            lock.unlock()
            guard again else { return }
            logger.warning("worker process local-\(slot + 1) (pid \(proc.processIdentifier)) ended (\(status)); starting another")
            try? spawn(slot)
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { return }
        try p.run()
        processes[slot] = p
    }

    /// Why the pool gave up restarting workers, if it did.
    public var failure: String? {
        lock.lock(); defer { lock.unlock() }
        return failureReason
    }

    /// Process ids of the running workers.
    public var pids: [Int32] {
        lock.lock(); defer { lock.unlock() }
        return processes.values.map(\.processIdentifier)
    }

    /// Lets workers leave on their own (they were told the job is done), then ends any
    /// that are still there.
    public func stop(grace: Double = 5) {
        lock.lock()
        stopping = true
        let all = Array(processes.values)
        lock.unlock()
        let deadline = Date().addingTimeInterval(grace)
        for p in all {
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
        }
    }
}
