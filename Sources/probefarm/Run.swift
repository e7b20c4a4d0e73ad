import ArgumentParser
import ChainFarm
import FarmZeroMQ
import Foundation
import Logging
import TensorCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a probing job on this machine: a coordinator and local worker processes.",
        discussion: """
            Reads JOB.yaml (JOBSPEC §2) and checks it against its models before any chain runs. Then \
            starts the coordinator in this process on loopback and --workers worker processes (default: \
            the number of cores), exactly as `probefarm coordinator` and `probefarm worker` would across \
            hosts; a worker process that dies is replaced and its chains continue from their last \
            checkpoint. Writes summary.json (diagnostics, the verdict, the answer's figures over the \
            draws and the job's reference data), report.html, inference_data.nc (ArviZ), \
            samples.npy, latent.npy (latent jobs), stats.npy/.csv, outputs.npy and the journal to \
            the output directory (--output, else the job's `output`). The draws depend neither on \
            --workers nor on failures.

            Job limits (refused with exit 78 before anything is allocated): chains ≤ 100000, \
            batch ≤ 4096, warmup, draws and stop.max-draws ≤ 10000000, init-candidates and \
            leapfrog-steps ≤ 10000, max-tree-depth 1…15, tempering replicas 2…64, finite numbers, \
            stop.rhat > 1; a job file of at most 1 MiB of UTF-8 expanding to at most 100000 values.
            """)

    @Argument(help: "A job file (YAML).")
    var job: String

    @Option(help: "Worker processes (default: the number of cores).")
    var workers: Int?

    @Option(name: .shortAndLong, help: "The run directory (default: the job's `output`).")
    var output: String?

    @Option(help: "The workers' weight cache, where the job's files are copied (by sha256) before the workers start (default: $XDG_CACHE_HOME/probefarm or ~/.cache/probefarm).")
    var cache: String?

    @Flag(help: "Replace a run directory that already holds a run.")
    var overwrite = false

    @Flag(help: "Continue the run in the output directory from its journal.")
    var resume = false

    @Flag(help: "Continue from the journal if the output directory has one, else start.")
    var resumeIfPresent = false

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup var farm: FarmOptions

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if (resume || resumeIfPresent) && overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let logger = FarmLog.logger("probefarm.run", verbose: farm.verbose, quiet: quiet, format: farm.logFormat)
        let cacheDirectory = cache ?? defaultCache()
        let session = try FarmSession(jobPath: job, output: output, overwrite: overwrite, resume: resume,
                                   resumeIfPresent: resumeIfPresent, segment: farm.segment,
                                   cache: WeightCache(directory: cacheDirectory))
        let n = workers ?? ProcessInfo.processInfo.activeProcessorCount
        let transport = try RouterTransport(bind: "tcp://127.0.0.1:*")
        var arguments = ["worker", "--connect", transport.endpoint, "--cache", cacheDirectory,
                         "--heartbeat", "\(farm.heartbeat)", "--liveness", "\(farm.liveness)",
                         "--parent", "\(getpid())"]
        arguments.append(farm.verbose ? "--verbose" : "--quiet")
        arguments += ["--log-format", farm.logFormat.rawValue]
        let pool = LocalWorkerPool(executable: thisExecutable(), arguments: arguments, logger: logger)
        try pool.start(count: n)
        let outcome: RunOutcome
        do {
            outcome = try coordinate(session: session, transport: transport, options: farm, quiet: quiet, logger: logger,
                                     what: "run (\(n) worker processes)") {
                pool.failure.map { RunError("\($0); the journal keeps what finished (--resume)", sysexit: .software) }
            }
        } catch {
            pool.stop(grace: 0)
            throw error
        }
        pool.stop()
        transport.close()
        let summary = try session.write(outcome, workers: n)
        report(summary, outcome, session: session)
    }
}
