import ArgumentParser
import ChainFarm
import FarmWire
import FarmZeroMQ
import Foundation
import Logging
import Probes
import TensorCore

/// Options every farm command shares.
struct FarmOptions: ParsableArguments {
    @Option(help: "Iterations per segment (a lost worker costs at most one segment per group).")
    var segment = 100

    @Option(help: "Seconds between heartbeats, both ways.")
    var heartbeat = 1.0

    @Option(help: "Heartbeats missed before a peer counts as gone.")
    var liveness = 4

    @Option(help: ArgumentHelp("The least seconds a segment is given before it counts as overdue and is also sent to another worker.",
                               discussion: "Once segments are measured the deadline is 4× the slowest seconds per iteration seen, if longer; before, 10× this. A worker beaten to its own segment by the backup 3 times in a row is dropped from the job."))
    var minDeadline = 60.0

    @Option(help: ArgumentHelp("The share of segments computed again by a second worker and compared byte for byte (0 to 1; 0: none).",
                               discussion: "Every worker's first segment is checked too. A worker whose result does not verify is dropped and its unverified segments are computed again; with no second worker the coordinator checks itself."))
    var verify = 0.05

    @Option(help: ArgumentHelp("Serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 0.0.0.0:9464).",
                               discussion: "Workers, segments done and in flight, reassignments, rejected messages and results, verification, draws/s, the stop rule's max R-hat and min ESS, ETA; every series labelled with the job's name (docs/farm.md)."))
    var metricsBind: String?

    @Option(help: "Also write the metrics to this file (atomically, twice a second) for node exporter's textfile collector (name it *.prom).")
    var metricsFile: String?

    @Flag(name: .shortAndLong, help: "Log every farm event (workers joining, leaving, chains reassigned).")
    var verbose = false

    @Option(help: "Log lines as text or json (one object per line, with the event's worker, host, group and chains as fields).")
    var logFormat: LogFormat = .text

    func validate() throws {
        guard (0...1).contains(verify) else { throw ValidationError("--verify must be a share between 0 and 1") }
        guard minDeadline > 0, minDeadline.isFinite else { throw ValidationError("--min-deadline must be a positive number of seconds") }
        guard segment >= 1 else { throw ValidationError("--segment must be at least 1") }
        guard heartbeat > 0, heartbeat <= 60 else { throw ValidationError("--heartbeat must be in (0, 60] seconds") }
        guard (2...20).contains(liveness) else { throw ValidationError("--liveness must be in 2…20") }
    }

    var settings: FarmSettings {
        var s = FarmSettings()
        s.segment = segment
        s.heartbeat = heartbeat
        s.liveness = liveness
        s.deadlineFloor = minDeadline
        s.verify = verify
        return s
    }
}

/// One-time logging set-up: events on stderr, one line each.
enum FarmLog {
    nonisolated(unsafe) static var bootstrapped = false

    static func logger(_ label: String, verbose: Bool, quiet: Bool = false, format: LogFormat = .text) -> Logger {
        if !bootstrapped {
            switch format {
            case .text: LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            case .json: LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
            }
            bootstrapped = true
        }
        var l = Logger(label: label)
        l.logLevel = quiet ? .error : (verbose ? .info : .warning)
        return l
    }
}

/// Runs the coordinator of a session over a transport and writes the run directory.
/// SIGTERM or SIGINT ends it early with exit 75, the journal kept for `--resume`;
/// `interruption` may end it for other reasons (worker processes that cannot start).
func coordinate(session: FarmSession, transport: CoordinatorTransport, options: FarmOptions, quiet: Bool,
                logger: Logger, what: String, statusPath: String? = nil,
                interruption: @escaping () -> (any Error)? = { nil }) throws -> RunOutcome {
    Termination.install()
    let j = session.plan.job
    if !quiet {
        let space = { if case .latent = session.plan.target.space { return "latent" } else { return "data" } }()
        let resumed = session.replay.isEmpty ? "" : ", resuming \(session.replay.count) journaled segments"
        FileHandle.standardError.write(Data("\(what): \(j.name): \(j.chains) chains (groups of \(j.batch)) × (\(j.sampler.warmup) warm-up + \(j.sampler.draws) draws), \(j.sampler.method.rawValue), \(session.plan.target.dimension)-d \(space)\(resumed)\n".utf8))
    }
    for d in session.damage {
        // Said even with --quiet: work was lost to disk corruption.
        FileHandle.standardError.write(Data("probefarm: warning: \(session.journal.path): \(d); the segments it held run again\n".utf8))
    }
    let coordinator = try Coordinator(plan: session.plan, transport: transport, journal: session.journal,
                                      settings: options.settings, replay: session.replay, logger: logger)
    let live = isatty(2) != 0
    var lastLine = Date.distantPast
    let stopped = { () -> (any Error)? in
        if let s = Termination.received {
            if !quiet && live { FileHandle.standardError.write(Data("\n".utf8)) }
            return RunError("stopped by \(Termination.name(s)): \(session.journal.records - 1) segments are safe in \(session.journal.path); run the same command with --resume to continue", sysexit: .tempFail)
        }
        return interruption()
    }
    let metrics = options.metricsBind != nil || options.metricsFile != nil ? FarmMetrics(job: j.name) : nil
    let server = try options.metricsBind.map { address in try MetricsServer(bind: address) { metrics!.text } }
    defer { server?.close() }
    if let server { logger.info("metrics on http://\(options.metricsBind!.split(separator: ":").dropLast().joined(separator: ":")):\(server.port)/metrics") }
    let outcome = try coordinator.run(progress: { p in
        if let metrics {
            metrics.update(p, coordinator.report)
            if let path = options.metricsFile { metrics.write(to: path) }
        }
        if let statusPath {
            StatusFile.write(StatusFile.Status(role: "coordinator", state: "serving", connected: true, segments: session.journal.records - 1,
                                               workers: p.workers), to: statusPath)
        }
        guard !quiet else { return }
        func f(_ v: Double?, _ digits: Int) -> String { v.flatMap { $0.isFinite ? String(format: "%.\(digits)f", $0) : nil } ?? "—" }
        let phase = p.iteration < p.warmup ? "warm-up" : "sampling"
        var line = "\(p.chains) chains  iteration \(p.iteration)/\(p.totalIterations) (\(phase))  \(f(p.drawsPerSecond, 0)) draws/s"
            + "  \(p.workers) workers  acceptance \(f(p.acceptance, 3))"
        if p.maxRHat != nil { line += "  max R-hat \(f(p.maxRHat, 4))  min ESS \(f(p.minESS, 0))" }
        line += "  ETA \(p.eta.map { f($0, 0) + " s" } ?? "—")"
        if live {
            FileHandle.standardError.write(Data("\r\(line)\u{1B}[K".utf8))
        } else if Date().timeIntervalSince(lastLine) >= 10 {
            lastLine = Date()
            FileHandle.standardError.write(Data("progress: \(line)\n".utf8))
        }
    }, interruption: stopped)
    if !quiet && live { FileHandle.standardError.write(Data("\n".utf8)) }
    return outcome
}

func report(_ summary: RunDirectory.Summary, _ outcome: RunOutcome, session: FarmSession) {
    func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "—" }
    let j = session.plan.job
    print("\(summary.converged ? "converged" : "NOT converged"): max R-hat \(f(summary.maxRHat, "%.4f")), min ESS bulk \(f(summary.minESSBulk, "%.0f")), tail \(f(summary.minESSTail, "%.0f")); \(j.chains) × \(outcome.draws.draws) draws in \(String(format: "%.1f", outcome.seconds)) s")
    print("stopped: \(outcome.stopReason)")
    print(samplerLine(outcome))
    let latent = { if case .latent = session.plan.target.space { return ", latent.npy" } else { return "" } }()
    print(answerLine(summary.json))
    print("wrote \(session.directory.path)/ (summary.json, samples.npy, outputs.npy\(latent), stats.csv, inference_data.nc)")
    if let failure = summary.reportFailure {
        print("report.html was not written: \(failure); the samples and summary are intact (probefarm report \(session.directory.path) retries)")
    } else {
        print("report: \(session.directory.path)/report.html")
    }
}

/// The answer's headline figures, draws (and reference data): level-set share inside,
/// validity, disagreement.
func answerLine(_ summary: [String: Any]) -> String {
    let answer = summary["answer"] as? [String: Any] ?? [:]
    let draws = (answer["draws"] as? [String: Any])?["terms"] as? [[String: Any]] ?? []
    let reference = (answer["reference"] as? [String: Any])?["terms"] as? [[String: Any]] ?? []
    var parts = [String]()
    for (i, t) in draws.enumerated() {
        for (key, label) in [("inside", "inside the level set"), ("validity", "validity"), ("disagreement", "models disagree")] {
            guard let v = t[key] as? Double else { continue }
            let r = i < reference.count ? (reference[i][key] as? Double).map { String(format: " (reference %.1f %%)", $0 * 100) } ?? "" : ""
            parts.append("\(t["term"] as? String ?? ""): \(label) \(String(format: "%.1f %%", v * 100))\(r)")
        }
    }
    var line = "answer: " + (parts.isEmpty ? "see summary.json's answer" : parts.joined(separator: "; "))
    for t in draws where (t["inside"] as? Double).map({ $0 < 0.5 }) ?? false {
        line += "\nwarning: most draws are outside \(t["term"] as? String ?? "the level set") (every statistic within 2σ of its target):"
            + " the chains have not reached it, or the decoder cannot produce it; read the report before the draws"
    }
    return line
}

/// What the sampler did, in one line: method and metric, gradients, NUTS's tree depth,
/// divergences, tempering's swap rates, chains restarted at the end of warm-up.
func samplerLine(_ outcome: RunOutcome) -> String {
    let settings = outcome.settings, draws = outcome.draws
    var parts = ["\(settings.method.rawValue), \(settings.metric.rawValue) metric",
                 "\(draws.gradientEvaluations.formatted()) gradients"]
    if settings.method == .nuts {
        let depths = draws.treeDepth.flatMap { $0 }
        let mean = depths.reduce(0, +) / Double(max(depths.count, 1))
        let atMax = depths.filter { Int($0) >= settings.maxTreeDepth }.count
        parts.append(String(format: "mean tree depth %.1f", mean) + (atMax > 0 ? " (\(atMax) draws at the maximum \(settings.maxTreeDepth))" : ""))
    }
    parts.append("\(draws.divergences) divergences")
    if settings.tempering != nil {
        let rates = outcome.checkpoints.flatMap { ($0.ladder?.swapRates ?? []).compactMap { $0 } }
        if let lo = rates.min(), let hi = rates.max() { parts.append(String(format: "swap rates %.2f–%.2f", lo, hi)) }
    }
    let restarted = outcome.checkpoints.filter { $0.restartedFrom != nil }
    if !restarted.isEmpty {
        parts.append("restarted at the end of warm-up: " + restarted.map { "chain \($0.chain) from \($0.restartedFrom!)" }.joined(separator: ", "))
    }
    return "sampler: " + parts.joined(separator: "; ")
}

/// The default weight cache: $XDG_CACHE_HOME/probefarm or ~/.cache/probefarm.
func defaultCache() -> String {
    let env = ProcessInfo.processInfo.environment
    let base = env["XDG_CACHE_HOME"] ?? ((env["HOME"] ?? NSTemporaryDirectory()) as NSString).appendingPathComponent(".cache")
    return (base as NSString).appendingPathComponent("probefarm")
}

func thisExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// CURVE key files in a keys directory (`probefarm keys generate`).
enum KeyFiles {
    static func read(_ dir: String, _ name: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent(name)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("\(path): cannot read (create keys with `probefarm keys generate \(dir)`)", sysexit: .noInput)
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard CurveKeyPair.decode(key) != nil else { throw UsageError("\(path): not a Z85 CURVE key", sysexit: .dataError) }
        return key
    }

    static func allowList(_ dir: String) throws -> [String] {
        let path = (dir as NSString).appendingPathComponent("authorized_workers")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("\(path): cannot read the workers' allow-list", sysexit: .noInput)
        }
        var keys = [String]()
        // One key per line, optionally followed by a comment; lines starting with '#' that
        // hold no key are comments ('#' is also a Z85 digit, so a key may start with it).
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let token = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) else { continue }
            if CurveKeyPair.decode(token) != nil {
                keys.append(token)
            } else if !token.hasPrefix("#") {
                throw UsageError("\(path):\(n + 1): not a Z85 CURVE public key", sysexit: .dataError)
            }
        }
        return keys
    }

    static func coordinator(_ dir: String) throws -> CurveSecurity {
        let secret = try read(dir, "coordinator.key")
        return CurveSecurity(keys: CurveKeyPair(publicKey: try CurveKeyPair.publicKey(forSecret: secret), secretKey: secret),
                             allowedClients: try allowList(dir))
    }

    static func worker(_ dir: String, name: String) throws -> CurveSecurity {
        let keyName = FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("\(name).key")) ? name : "worker"
        let secret = try read(dir, "\(keyName).key")
        return CurveSecurity(keys: CurveKeyPair(publicKey: try CurveKeyPair.publicKey(forSecret: secret), secretKey: secret),
                             serverKey: try read(dir, "coordinator.pub"))
    }
}

struct Coordinate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a job to workers over ZeroMQ and write its run directory.",
        discussion: """
            Binds a ROUTER socket, hands chain groups to the workers that connect (probefarm worker \
            --connect …) segment by segment, journals every accepted segment (journal.pfj in the run \
            directory, fsync'd), reassigns a lost worker's chains from their last checkpoint, applies \
            the job's stop rule after each round, and writes the run directory. After a crash, run the \
            same command with --resume to continue from the journal: the draws are identical. On \
            SIGTERM or SIGINT it tells the workers the job is over and exits 75 with the journal \
            intact, ready for --resume. Binding \
            a non-loopback address needs --keys (CURVE encryption, workers admitted by public key) or \
            an explicit --insecure.
            """)

    @Argument(help: "A job file (YAML).")
    var job: String

    @Option(help: "The ZeroMQ endpoint to bind, e.g. tcp://*:5555.")
    var bind: String

    @Option(name: .shortAndLong, help: "The run directory (default: the job's `output`).")
    var output: String?

    @Option(help: "A keys directory (probefarm keys generate): CURVE with an allow-list of worker keys.")
    var keys: String?

    @Flag(help: "Allow a non-loopback bind without --keys (traffic in clear, anyone may connect).")
    var insecure = false

    @Flag(help: "Continue the run in --output from its journal.")
    var resume = false

    @Flag(help: "Continue from the journal if --output has one, else start (for requeued or restarted launches).")
    var resumeIfPresent = false

    @Option(help: "The largest message accepted from a peer, in MiB (a peer sending more is disconnected).")
    var maxMessageMib = 256

    @Option(help: "A status file rewritten every half second, for `probefarm health` probes.")
    var status: String?

    @Flag(help: "Replace a run directory that already holds a run.")
    var overwrite = false

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup var farm: FarmOptions

    func validate() throws {
        if (resume || resumeIfPresent) && overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
        if maxMessageMib < 1 { throw ValidationError("--max-message-mib must be at least 1") }
    }

    func run() throws {
        BLAS.setThreads(1)
        if keys == nil && !insecure && !Self.isLoopback(bind) {
            throw UsageError("refusing to bind \(bind) without --keys: anyone who reaches it could join and read the job; create keys with `probefarm keys generate DIR` and pass --keys DIR (workers too), or pass --insecure on a trusted network")
        }
        let logger = FarmLog.logger("probefarm.coordinator", verbose: true, quiet: quiet, format: farm.logFormat)
        let session = try FarmSession(jobPath: job, output: output, overwrite: overwrite, resume: resume,
                                   resumeIfPresent: resumeIfPresent, segment: farm.segment)
        let security = try keys.map { try KeyFiles.coordinator($0) }
        let transport: RouterTransport
        do { transport = try RouterTransport(bind: bind, security: security, maxMessageBytes: Int64(maxMessageMib) << 20) } catch {
            throw UsageError("cannot bind \(bind): \(error)", sysexit: .unavailable)
        }
        logger.info("listening on \(transport.endpoint)\(security == nil ? " (no encryption)" : " (CURVE, \(security!.allowedClients.count) authorised worker keys)")")
        let outcome = try coordinate(session: session, transport: transport, options: farm, quiet: quiet, logger: logger, what: "coordinator",
                                     statusPath: status)
        var o = outcome
        o.farm.refusedConnections = transport.refusedConnections
        o.farm.zapDenied = transport.zapDenied
        o.farm.droppedConnections = transport.disconnects
        let summary = try session.write(o, workers: o.farm.workers.count)
        transport.close()
        report(summary, o, session: session)
    }

    static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let rest = endpoint.dropFirst(6)
        let host = rest.hasPrefix("[") ? String(rest.dropFirst().prefix { $0 != "]" }) : String(rest.prefix { $0 != ":" })
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "lo"
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run chains for a coordinator.",
        discussion: """
            Connects a DEALER socket to the coordinator, fetches the weight files the job names into \
            the cache (by sha256, verified, then memory-mapped: workers on one host share one copy), \
            and runs the chain groups it is given, one batch at a time, heartbeating throughout. If \
            the coordinator falls silent the worker reconnects; it exits 0 when the coordinator says \
            the job is done or stopped (with --wait it waits for the next coordinator instead), 69 if \
            the coordinator refuses it (a failed handshake three times before ever joining: its key \
            is not on the allow-list, or the keys do not match). On SIGTERM or SIGINT it drains: it \
            takes no new work, sends the segment under way (within --drain seconds), tells the \
            coordinator it leaves (its chains go to others at once) and exits 0.
            """)

    @Option(help: "The coordinator's endpoint, e.g. tcp://node1:5555.")
    var connect: String

    @Option(help: "The weight cache (default: $XDG_CACHE_HOME/probefarm or ~/.cache/probefarm).")
    var cache: String?

    @Option(help: "A keys directory: worker.key (or NAME.key) and coordinator.pub.")
    var keys: String?

    @Option(help: "This worker's name, also its routing id (default: HOST-PID).")
    var name: String?

    @Option(help: "Seconds between heartbeats, both ways.")
    var heartbeat = 1.0

    @Option(help: "Heartbeats missed before the coordinator counts as gone (then: reconnect).")
    var liveness = 4

    @Option(help: "On SIGTERM or SIGINT: seconds to finish and send the segment under way before leaving.")
    var drain = 20.0

    @Flag(help: "When the job ends or its coordinator stops (to be resumed), wait for the next coordinator at --connect instead of exiting.")
    var wait = false

    @Option(help: "Log lines as text or json (one object per line).")
    var logFormat: LogFormat = .text

    @Option(help: "A status file rewritten every heartbeat, for `probefarm health` probes.")
    var status: String?

    @Flag(name: .shortAndLong, help: "Log every event.")
    var verbose = false

    @Flag(help: "Log errors only.")
    var quiet = false

    @Option(help: .hidden)
    var parent: Int32?

    func run() throws {
        MemoryTuning.singleArena()   // before libzmq's and the compute thread start
        BLAS.setThreads(1)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let name = self.name ?? "\(String(cString: host))-\(getpid())"
        let logger = FarmLog.logger("probefarm.worker", verbose: verbose, quiet: quiet, format: logFormat)
        let security = try keys.map { try KeyFiles.worker($0, name: name) }
        let transport: DealerTransport
        do { transport = try DealerTransport(connect: connect, routingID: Array(name.utf8), security: security) } catch {
            throw UsageError("cannot connect to \(connect): \(error)", sysexit: .unavailable)
        }
        var settings = WorkerSettings(name: name, cacheDirectory: cache ?? defaultCache())
        settings.heartbeat = heartbeat
        settings.liveness = liveness
        settings.parent = parent
        settings.drainSeconds = drain
        settings.waitForNext = wait
        settings.statusPath = status
        settings.stopRequested = { Termination.received.map(Termination.name) }
        Termination.install()
        let worker = try Worker(transport: transport, settings: settings, logger: logger)
        logger.info("worker \(name) connecting to \(connect)")
        switch try worker.run() {
        case .done(let reason):
            logger.info("\(reason); \(worker.segmentsDone) segments run")
            transport.close(flushing: 10)
        case .refused(let why):
            transport.close()
            throw UsageError("refused: \(why)", sysexit: .unavailable)
        }
    }
}

struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a running worker or coordinator through its --status file.",
        discussion: """
            Exits 0 when the status file was rewritten within --max-age seconds (the process's loop \
            is turning) and, with --ready, the worker is registered with a coordinator it hears from \
            (a coordinator: serving). Otherwise exits 69 with one line saying why. Meant for \
            Kubernetes liveness (without --ready) and readiness (with --ready) probes and for \
            container health checks.
            """)

    @Argument(help: "The file given to `probefarm worker --status` or `probefarm coordinator --status`.")
    var file: String

    @Option(help: "The oldest status accepted, in seconds.")
    var maxAge = 15.0

    @Flag(help: "Also require a worker to be connected to its coordinator.")
    var ready = false

    func run() throws {
        let s = try StatusFile.read(file)
        let age = Date().timeIntervalSince1970 - s.updated
        guard age <= maxAge else {
            throw UsageError("\(s.role) \(s.pid): status is \(Int(age)) s old (limit \(Int(maxAge)) s): its loop is stuck or it has exited", sysexit: .unavailable)
        }
        if ready && !s.connected {
            throw UsageError("\(s.role) \(s.pid): \(s.state), not connected to a coordinator", sysexit: .unavailable)
        }
        print("\(s.role) \(s.pid): \(s.state)\(s.connected ? ", connected" : ""), \(s.segments) segments\(s.workers.map { ", \($0) workers" } ?? "")")
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage CURVE keys for a farm.",
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create key pairs for a coordinator and its workers.",
            discussion: """
                Writes DIR/coordinator.key and .pub, DIR/worker.key and .pub (or one pair per --names \
                entry), and DIR/authorized_workers (the workers' public keys, one per line). Secret keys \
                are created with mode 0600; give workers worker.key and coordinator.pub only.
                """)

        @Argument(help: "The directory to write (created; existing keys are kept unless --force).")
        var directory: String

        @Option(parsing: .upToNextOption, help: "Worker key names (default: worker).")
        var names: [String] = ["worker"]

        @Flag(help: "Replace existing keys.")
        var force = false

        func run() throws {
            let fm = FileManager.default
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            func path(_ n: String) -> String { (directory as NSString).appendingPathComponent(n) }
            if fm.fileExists(atPath: path("coordinator.key")) && !force {
                throw UsageError("\(path("coordinator.key")) exists; pass --force to replace the keys", sysexit: .cantCreate)
            }
            func write(_ pair: CurveKeyPair, _ stem: String) throws {
                try AtomicFile.write(Data((pair.secretKey + "\n").utf8), to: path("\(stem).key"), mode: 0o600)
                try AtomicFile.write(Data((pair.publicKey + "\n").utf8), to: path("\(stem).pub"))
            }
            try write(try CurveKeyPair.generate(), "coordinator")
            var allow = "# workers admitted by the coordinator (Z85 public keys)\n"
            for n in names {
                let pair = try CurveKeyPair.generate()
                try write(pair, n)
                allow += "\(pair.publicKey)  # \(n)\n"
            }
            try AtomicFile.write(Data(allow.utf8), to: path("authorized_workers"))
            print("wrote \(directory)/: coordinator.key/.pub, \(names.map { "\($0).key/.pub" }.joined(separator: ", ")), authorized_workers")
        }
    }
}
