import Diagnostics
import FarmWire
import Foundation
import Logging
import NeuralModels
import Probes
import Samplers
import Synchronization

/// How the farm runs, apart from the job.
public struct FarmSettings: Sendable {
    /// Iterations per segment: short, so that a lost worker costs little.
    public var segment = 100
    /// Seconds between heartbeats, both ways.
    public var heartbeat = 1.0
    /// Heartbeats missed before a peer counts as gone.
    public var liveness = 4
    /// Bytes per weight-file chunk.
    public var chunkBytes = 1 << 20
    /// Segments sent to a worker beyond its capacity, so it never waits for the next one.
    public var prefetch = 1
    /// The least time a segment is given before it counts as overdue and is sent to a
    /// second worker as well; once segments have been measured, the deadline is
    /// ``deadlineFactor`` × the slowest seconds per iteration seen × the segment's length,
    /// if longer. Before any is measured: ten times this floor.
    public var deadlineFloor = 60.0
    public var deadlineFactor = 4.0
    /// Deadlines a worker may miss in a row before it is dropped from the job.
    public var strikes = 3
    /// A group whose segment failed on this many workers (or on every worker there is,
    /// this many times) ends the job with the workers' error.
    public var failuresPerGroup = 3
    /// The most segments one worker is given at once, whatever capacity it claims.
    public var maxCapacity = 16
    /// The share of accepted segments computed again by a second worker (or, with no
    /// other worker, by the coordinator) and compared byte for byte; every worker's first
    /// accepted segment is checked as well. 0 checks nothing.
    public var verify = 0.05

    public init() {}

    public var silence: Double { heartbeat * Double(liveness) }
}

/// Live state of a job, reported about twice a second.
public struct FarmProgress: Sendable {
    public var chains: Int
    public var warmup: Int
    /// Iterations done by the slowest chain, and the current target.
    public var iteration: Int
    public var totalIterations: Int
    public var drawsPerSecond: Double
    public var workers: Int
    public var acceptance: Double
    public var divergences: Int
    public var maxRHat: Double?
    public var minESS: Double?
    public var elapsed: Double
    public var eta: Double?
    /// Segments accepted so far, and out to workers now (checks included).
    public var segmentsDone = 0
    public var segmentsInFlight = 0
}

/// What the farm saw, for summary.json's provenance.
public struct FarmReport: Sendable, Codable {
    public var hosts: [String] = []
    public var workers: [String] = []
    public var joined = 0
    public var lost = 0
    /// Workers that said they leave (drained on SIGTERM).
    public var left = 0
    public var reassigned = 0
    public var duplicates = 0
    public var rejectedMessages = 0
    /// Results refused: from a peer not computing that segment, for a range never
    /// assigned, or inconsistent within themselves (see ``Coordinator/ingest``).
    public var rejectedResults = 0
    /// Segments a worker reported it could not run (each reassigned).
    public var failedSegments = 0
    /// Segments past their deadline, sent to a second worker.
    public var overdueSegments = 0
    /// Workers dropped for missing deadlines again and again.
    public var droppedWorkers = 0
    /// Segments computed twice and found identical (``FarmSettings/verify``).
    public var verifiedSegments = 0
    /// Workers whose results did not verify; their unverified segments were discarded.
    public var faultyWorkers = 0
    /// Segments discarded with a faulty worker's (and those built on them) and run again.
    public var discardedSegments = 0
    /// Segments picked for verification that could not be checked or settled: no other
    /// worker nor the coordinator on the same OpenBLAS kernels, or all three differed.
    public var uncheckedSegments = 0
    /// Handshakes that failed (broken ZMTP, CURVE errors, ZAP refusals).
    public var refusedConnections = 0
    /// Workers whose CURVE key is not on the allow-list.
    public var zapDenied = 0
    /// Connections closed (workers leaving, peers disconnected for oversized messages).
    public var droppedConnections = 0
    public var segments = 0
    public var replayedSegments = 0
    public var blas: [String] = []
    public var stopReason = ""

    public init() {}
}

/// Hands a job's chain groups to workers segment by segment, keeps every accepted
/// segment in the journal, evaluates the stop rule after each round, and returns the
/// merged draws. Single-threaded over a ``CoordinatorTransport``; it never touches sockets.
public final class Coordinator {
    struct Group {
        var chains: [Int]
        var checkpoints: [ChainCheckpoint]?
        /// The next iteration to run.
        var iteration = 0
        /// The segment out for the group, from ``iteration``.
        var out: Segment?
        /// Workers (names) on which the group's current segment failed, with their errors.
        var failures = [(worker: String, message: String)]()

        var isOut: Bool { out != nil }
    }

    /// A segment being computed: its length, the peers it was sent to (a second one once
    /// it is overdue) and when it was first sent. A result is taken only from these peers,
    /// for exactly this range, once.
    struct Segment {
        var length: Int
        var peers: [[UInt8]]
        /// When it was sent to each of them (the deadline runs from the first).
        var sent: [[UInt8]: Date]
    }

    struct Peer {
        var ready: Ready
        var lastHeard: Date
        var lastSent: Date
        var outstanding = Set<Int>()
        /// Deadlines missed in a row.
        var strikes = 0
        /// Whether one of its segments has been picked for verification.
        var checked = false
        /// Segments (group, first iteration) it was computing when another worker's copy
        /// was taken: its own result, when it comes, is a duplicate.
        var superseded = Set<[Int]>()
    }

    /// A file served to workers by content hash.
    struct Served {
        var ref: FileRef
        var file: MappedFile
    }

    public let plan: JobPlan
    public let settings: FarmSettings
    let transport: CoordinatorTransport
    let journal: Journal
    let logger: Logger
    let spec: JobSpec
    let served: [String: Served]
    var sampler: SamplerSettings
    var groups: [Group]
    var peers = [[UInt8]: Peer]()
    var draws: RunDraws
    public internal(set) var report = FarmReport()
    /// Routing ids of workers dropped from this job (their READY is refused).
    var dropped = Set<[UInt8]>()
    /// Journaled segments that follow a damaged record, by group and first iteration:
    /// taken as soon as the group reaches them.
    var held = [Int: [Int: SegmentResult]]()
    /// The slowest accepted segment, in seconds per iteration (sent to accepted).
    var slowest: Double?
    var warnedResults = 0
    /// Per group, the segments accepted, in order, with what each started from.
    var ledger: [[LedgerEntry]]
    /// Accepted segments being computed again (``FarmSettings/verify``).
    var checks = [Check]()
    /// The coordinator's own run of a segment: a check with no other worker, or an arbiter.
    var local: LocalRun?
    /// Rollbacks so far: a convergence check started before one is stale.
    var rollbacks = 0
    /// The stop rule's last verdict.
    var verdict: StopVerdict?
    var warnedMalformed = 0

    /// - Parameters:
    ///   - replay: segment results read back from the journal (`--resume`).
    public init(plan: JobPlan, transport: CoordinatorTransport, journal: Journal, settings: FarmSettings = FarmSettings(),
                replay: [[[UInt8]]] = [], logger: Logger = Logger(label: "probefarm.coordinator")) throws {
        self.plan = plan
        self.transport = transport
        self.journal = journal
        self.settings = settings
        self.logger = logger
        let job = plan.job
        sampler = job.sampler
        let size = max(1, job.batch)
        groups = stride(from: 0, to: job.chains, by: size).map { Group(chains: Array($0..<min($0 + size, job.chains))) }
        draws = RunDraws(chains: job.chains, dimension: plan.target.dimension)
        ledger = Array(repeating: [], count: groups.count)

        // The files workers fetch, by content.
        var refs = [FileRef](), served = [String: Served]()
        for name in job.referencedFiles {
            let path = job.resolve(name)
            let file: MappedFile
            do { file = try MappedFile(path: path) } catch { throw RunError("\(path): cannot map for serving: \(error)") }
            let ref = FileRef(path: name, sha256: SHA256.hex(file.bytes), size: file.size)
            refs.append(ref)
            served[ref.sha256] = Served(ref: ref, file: file)
        }
        self.served = served
        spec = JobSpec(id: job.sha256, fileName: (job.file as NSString).lastPathComponent, document: job.document, files: refs)

        for frames in replay {
            if let rollback = Rollback.decode(frames) {
                guard groups.indices.contains(rollback.group), let k = ledger[rollback.group].firstIndex(where: { $0.firstIteration == rollback.iteration }) else {
                    throw RunError("\(journal.path): a rollback of group \(rollback.group) to iteration \(rollback.iteration) that no record explains")
                }
                try roll(back: rollback.group, to: k, journaled: true)
                continue
            }
            guard case .result(let r)? = try? WireCodec.decode(frames) else { throw RunError("\(journal.path): a record is not a segment result") }
            let g = r.header.group
            if accept(r) {
                report.replayedSegments += 1
                continue
            }
            // After a damaged record: kept until the segment before it is computed again.
            guard r.header.job == spec.id, groups.indices.contains(g), r.header.firstIteration > groups[g].iteration else {
                throw RunError("\(journal.path): record for group \(g) at iteration \(r.header.firstIteration) does not continue the journal")
            }
            held[g, default: [:]][r.header.firstIteration] = r
        }
    }

    var target: Int { sampler.warmup + sampler.draws }

    // MARK: The loop

    /// Runs the job to its end: fixed length, or until the stop rule is met.
    /// - Parameter interruption: polled every turn of the loop; an error it returns ends
    ///   the run there (the workers are told the job is over, the journal keeps every
    ///   accepted segment for `--resume`) and is thrown.
    public func run(progress: (FarmProgress) -> Void = { _ in }, interruption: () -> (any Error)? = { nil }) throws -> RunOutcome {
        let started = Date()
        var lastProgress = Date.distantPast
        var check: Background<StopVerdict>? = nil
        var checkGeneration = 0
        var finished = false
        let startIterations = groups.reduce(0) { $0 + $1.iteration * $1.chains.count }
        while !finished {
            if let (peer, frames) = try transport.receive(timeout: 0.05) {
                try handle(peer: peer, frames: frames)
                // Drain what is queued before housekeeping.
                var budget = 256
                while budget > 0, let (p, f) = try transport.receive(timeout: 0) {
                    try handle(peer: p, frames: f)
                    budget -= 1
                }
            }
            if let error = interruption() {
                for id in peers.keys { _ = try? transport.send(WireCodec.encode(.done(reason: "the coordinator stopped: \(error)")), to: id) }
                // libzmq sends from its I/O thread and the process exits next: give the
                // goodbyes a moment to leave (and take any last messages meanwhile).
                let until = Date().addingTimeInterval(0.5)
                while Date() < until { _ = try? transport.receive(timeout: 0.05) }
                throw error
            }
            let now = Date()
            expireSilentPeers(now)
            sendHeartbeats(now)
            if let error = try checkFailures() {
                for id in peers.keys { _ = try? transport.send(WireCodec.encode(.done(reason: "the job failed: \(error)")), to: id) }
                throw error
            }
            checkDeadlines(now)
            try advanceChecks(now)

            if groups.allSatisfy({ $0.iteration >= target && !$0.isOut }) && checks.isEmpty && local == nil {
                if let stop = plan.job.stop {
                    if check == nil || checkGeneration != rollbacks {
                        let current = draws.prefix(sampler.draws)
                        check = Background { current.verdict(stop) }
                        checkGeneration = rollbacks
                    }
                    if let result = check!.result {
                        check = nil
                        verdict = result
                        if result.converged {
                            report.stopReason = "converged: max R-hat \(fmtRHat(result.maxRHat)) < \(stop.rhat), min ESS bulk \(fmt(result.minBulk)) ≥ \(stop.essBulk), tail \(fmt(result.minTail)) ≥ \(stop.essTail) after \(sampler.draws) draws per chain"
                            finished = true
                        } else if sampler.draws >= stop.maxDraws {
                            report.stopReason = "budget spent: \(sampler.draws) draws per chain (stop.max-draws) without meeting the stop rule (max R-hat \(fmtRHat(result.maxRHat)), min ESS bulk \(fmt(result.minBulk)), tail \(fmt(result.minTail)))"
                            finished = true
                        } else {
                            let next = min(stop.maxDraws, sampler.draws * 2)
                            logger.info("not converged at \(sampler.draws) draws (max R-hat \(fmtRHat(result.maxRHat)), min ESS bulk \(fmt(result.minBulk)), tail \(fmt(result.minTail))); extending to \(next)")
                            sampler.draws = next
                        }
                    }
                } else {
                    report.stopReason = "fixed length: \(sampler.draws) draws per chain"
                    finished = true
                }
            }
            if !finished { dispatch() }
            if now.timeIntervalSince(lastProgress) >= 0.5 || finished {
                lastProgress = now
                progress(snapshot(started: started, startIterations: startIterations))
            }
        }
        for id in peers.keys { _ = try? transport.send(WireCodec.encode(.done(reason: "job finished")), to: id) }
        // Workers joining in the last moment hear it too, not silence.
        let until = Date().addingTimeInterval(min(1, settings.heartbeat))
        while Date() < until {
            guard let (id, frames) = try? transport.receive(timeout: 0.05), peers[id] == nil,
                  case .ready? = try? WireCodec.decode(frames) else { continue }
            _ = try? transport.send(WireCodec.encode(.done(reason: "job finished")), to: id)
        }
        report.refusedConnections = transport.refusedConnections
        report.segments = journal.records - 1
        let outcome = RunOutcome(draws: draws.prefix(sampler.draws),
                                 checkpoints: groups.flatMap { $0.checkpoints ?? [] }, settings: sampler,
                                 verdict: verdict, stopReason: report.stopReason,
                                 seconds: Date().timeIntervalSince(started), farm: report)
        return outcome
    }

    func fmt(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "—" }
    /// R-hat with four decimals: 1.0098 must not read "1.01 < 1.01".
    func fmtRHat(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "—" }

    func snapshot(started: Date, startIterations: Int) -> FarmProgress {
        let elapsed = Date().timeIntervalSince(started)
        let done = groups.reduce(0) { $0 + min($1.iteration, target) * $1.chains.count }
        let rate = Double(done - startIterations) / max(elapsed, 1e-9)
        let remaining = Double(target * plan.job.chains - done)
        var p = FarmProgress(chains: plan.job.chains, warmup: sampler.warmup,
                            iteration: groups.map(\.iteration).min() ?? 0, totalIterations: target,
                            drawsPerSecond: rate, workers: peers.count, acceptance: draws.acceptanceRate,
                            divergences: draws.divergences, maxRHat: verdict?.maxRHat,
                            minESS: verdict?.minBulk.map { min($0, verdict?.minTail ?? $0) }, elapsed: elapsed,
                            eta: rate > 0 ? remaining / rate : nil)
        p.segmentsDone = journal.records - 1 - rollbacks
        p.segmentsInFlight = groups.filter(\.isOut).count + checks.filter { $0.verifier != nil }.count + (local == nil ? 0 : 1)
        return p
    }

    // MARK: Messages

    func handle(peer id: [UInt8], frames: [[UInt8]]) throws {
        let message: WireMessage
        do {
            message = try WireCodec.decode(frames)
        } catch {
            report.rejectedMessages += 1
            if case .version = error {
                logger.warning("refused a peer speaking another protocol: \(error)")
                _ = try? transport.send(WireCodec.encode(.failure(WireFailure(kind: "protocol", message: "\(error)"))), to: id)
            } else if warnedMalformed < 10 {
                warnedMalformed += 1
                logger.warning("rejected a message: \(error)")
            }
            return
        }
        let now = Date()
        if case .ready = message {} else if peers[id] == nil {
            // A peer we do not know (e.g. declared lost): nothing it sends counts; ask it to
            // introduce itself.
            if case .result = message { reject("a result from a peer that is not a worker of this job") }
            _ = try transport.send(WireCodec.encode(.failure(WireFailure(kind: "unknown-peer", message: "send ready first"))), to: id)
            return
        }
        peers[id]?.lastHeard = now
        switch message {
        case .ready(let r):
            guard !dropped.contains(id) else {
                _ = try? transport.send(WireCodec.encode(.failure(WireFailure(kind: "dropped", message: "dropped from this job for missing \(settings.strikes) segment deadlines in a row"))), to: id)
                return
            }
            if let old = peers[id] {
                if old.ready.session == r.session {
                    // A repeated READY (our reply crossed it): answer again, keep its work.
                    _ = try transport.send(WireCodec.encode(.job(spec)), to: id)
                    return
                }
                release(old.outstanding, from: id, reason: "\(old.ready.name) restarted or reconnected")
            }
            guard r.capacity >= 1 else {
                report.rejectedMessages += 1
                return
            }
            var ready = r
            ready.capacity = min(r.capacity, settings.maxCapacity)
            peers[id] = Peer(ready: ready, lastHeard: now, lastSent: now)
            report.joined += 1
            if !report.hosts.contains(r.host) { report.hosts.append(r.host) }
            if !report.workers.contains(r.name) { report.workers.append(r.name) }
            if !report.blas.contains(r.blas) { report.blas.append(r.blas) }
            logger.info("worker joined: \(r.name) on \(r.host) (pid \(r.pid), capacity \(r.capacity)); \(peers.count) connected",
                        metadata: ["event": "joined", "worker": "\(r.name)", "host": "\(r.host)"])
            _ = try transport.send(WireCodec.encode(.job(spec)), to: id)
        case .heartbeat:
            break
        case .fetch(let f):
            guard let s = served[f.sha256], f.offset >= 0, f.length > 0, f.offset < s.ref.size else {
                _ = try transport.send(WireCodec.encode(.failure(WireFailure(kind: "fetch", message: "no file \(f.sha256) or range outside it"))), to: id)
                return
            }
            let n = min(f.length, settings.chunkBytes, s.ref.size - f.offset)
            let bytes = Array(UnsafeRawBufferPointer(rebasing: s.file.bytes[f.offset..<(f.offset + n)]))
            _ = try transport.send(WireCodec.encode(.chunk(ChunkHeader(sha256: f.sha256, offset: f.offset, total: s.ref.size), bytes)), to: id)
        case .result(let r):
            try ingest(r, frames: frames, from: id)
        case .failure(let f):
            let name = peers[id]?.ready.name ?? "?"
            guard f.kind == "job" || f.kind == "segment" else {
                logger.warning("worker \(name) reports: \(f.kind): \(f.message)")
                return
            }
            // The worker could not run what it was given: its segments go to others. Only
            // the same group failing on several workers ends the job (checkFailures).
            let mine = groups.indices.filter { groups[$0].out?.peers.contains(id) == true }
            guard !mine.isEmpty else {
                reject("an error from \(name), which was running nothing")
                return
            }
            report.failedSegments += 1
            logger.warning("worker \(name) could not run its segment: \(f.kind): \(f.message)", metadata: ["event": "failed", "worker": "\(name)"])
            for g in mine { groups[g].failures.append((name, f.message)) }
            if let p = peers[id] { release(p.outstanding, from: id, reason: "\(name) failed it") }
        case .done(let reason):
            guard let p = peers.removeValue(forKey: id) else { return }
            report.left += 1
            logger.info("worker left: \(reason); \(peers.count) connected", metadata: ["event": "left", "worker": "\(p.ready.name)"])
            release(p.outstanding, from: id, reason: "\(p.ready.name) left")
        case .job, .assign, .chunk:
            report.rejectedMessages += 1
        }
    }

    /// Takes a result only from a peer computing that very segment (the group's range
    /// from its current iteration, the length it was given), once, and only if it is
    /// consistent in itself; a worker's result for a range already taken is a duplicate (a
    /// reassigned or overdue segment both finished), anything else is rejected and counted,
    /// and a peer that sent the wrong thing loses the segment to another worker. Nothing
    /// refused reaches the journal or the draws.
    func ingest(_ r: SegmentResult, frames: [[UInt8]], from id: [UInt8]) throws {
        let g = r.header.group
        let name = peers[id]?.ready.name ?? "?"
        guard r.header.job == spec.id, groups.indices.contains(g) else {
            reject("a result from \(name) for a job or group that does not exist")
            return
        }
        if let i = checks.firstIndex(where: { $0.verifier == id && $0.assignment.group == g && $0.assignment.firstIteration == r.header.firstIteration }) {
            checked(i, digest: Self.digest(r), by: name)
            return
        }
        guard let out = groups[g].out, out.peers.contains(id), r.header.firstIteration == groups[g].iteration else {
            if peers[id]?.superseded.remove([g, r.header.firstIteration]) != nil
                || peers[id] != nil && r.header.firstIteration < groups[g].iteration {
                report.duplicates += 1  // a segment done twice (overdue, reassigned): already taken
            } else {
                reject("a result from \(name) for group \(g) at iteration \(r.header.firstIteration), which it was not computing")
                if groups[g].out?.peers.contains(id) == true { release([g], from: id, reason: "\(name) sent another range") }
            }
            return
        }
        guard r.header.length == out.length, isContinuation(r) else {
            reject("a result from \(name) for group \(g) at iteration \(r.header.firstIteration) that is not the segment it was given")
            release([g], from: id, reason: "\(name) sent another segment")
            return
        }
        if let flaw = Self.inconsistency(r) {
            // Its segment goes to another worker, as if it had failed.
            reject("a result from \(name) for group \(g) at iteration \(r.header.firstIteration): \(flaw)")
            release([g], from: id, reason: "\(name) sent an inconsistent result")
            return
        }
        let given = Assignment(job: spec.id, group: g, chains: groups[g].chains, firstIteration: groups[g].iteration,
                               length: out.length, checkpoints: groups[g].checkpoints)
        try journal.append(frames)
        peers[id]?.outstanding.remove(g)
        let k = ledger[g].count
        _ = accept(r)
        ledger[g][k].worker = id
        ledger[g][k].verified = false
        pickForVerification(given, result: r, from: id)
        peers[id]?.strikes = 0
        let perIteration = Date().timeIntervalSince(out.sent[id] ?? Date()) / Double(max(1, out.length))
        slowest = max(slowest ?? 0, perIteration)
        for other in out.peers where other != id {
            // Still on this segment (it was overdue): its copy will be a duplicate. The
            // worker it was overdue on was beaten to it: a strike.
            peers[other]?.outstanding.remove(g)
            peers[other]?.superseded.insert([g, r.header.firstIteration])
            if other == out.peers[0] { strike(other) }
        }
    }

    func reject(_ why: String) {
        report.rejectedResults += 1
        if warnedResults < 20 {
            warnedResults += 1
            logger.warning("rejected \(why)")
        }
    }

    /// What makes a result impossible whatever the job: a draw or checkpoint that is not
    /// finite, a chain whose last draw is not where its checkpoint says it stopped,
    /// acceptance probabilities outside [0, 1], step sizes that are not positive.
    static func inconsistency(_ r: SegmentResult) -> String? {
        let h = r.header, d = h.dimension, n = h.draws
        guard r.positions.allSatisfy(\.isFinite) else { return "a draw is not finite" }
        guard r.acceptance.allSatisfy({ $0.isNaN || (0...1).contains($0) }) else { return "an acceptance probability outside [0, 1]" }
        guard r.stepSize.allSatisfy({ $0 > 0 && $0.isFinite }) else { return "a step size that is not positive" }
        guard r.divergent.allSatisfy({ $0 <= 1 }) else { return "a divergence flag that is not 0 or 1" }
        for (c, checkpoint) in h.checkpoints.enumerated() {
            let x = checkpoint.state.position
            guard x.count == d, x.allSatisfy(\.isFinite), checkpoint.state.logDensity.isFinite else {
                return "chain \(checkpoint.chain)'s checkpoint is not a finite point of the space"
            }
            guard n > 0, h.firstDraw + n == h.firstIteration + h.length else { continue }
            let last = (c * n + n - 1) * d
            guard r.positions[last..<(last + d)].elementsEqual(x) else {
                return "chain \(checkpoint.chain)'s last draw is not its checkpoint"
            }
        }
        return nil
    }

    func isContinuation(_ r: SegmentResult) -> Bool {
        let h = r.header, g = h.group
        guard h.job == spec.id, groups.indices.contains(g), h.chains == groups[g].chains,
              h.firstIteration == groups[g].iteration, h.dimension == plan.target.dimension else { return false }
        let firstDraw = max(h.firstIteration, sampler.warmup)
        return h.firstDraw == firstDraw && h.draws == max(0, h.firstIteration + h.length - firstDraw)
            && h.checkpoints.allSatisfy { $0.iteration == h.firstIteration + h.length }
            && h.checkpoints.map(\.chain) == h.chains
    }

    /// Adds a continuing segment to the group and the draws.
    @discardableResult
    func accept(_ r: SegmentResult) -> Bool {
        guard isContinuation(r) else { return false }
        let g = r.header.group
        ledger[g].append(LedgerEntry(firstIteration: r.header.firstIteration, length: r.header.length, input: groups[g].checkpoints))
        draws.append(r)
        groups[g].checkpoints = r.header.checkpoints
        groups[g].iteration = r.header.firstIteration + r.header.length
        groups[g].out = nil
        groups[g].failures = []
        if let next = held[g]?.removeValue(forKey: groups[g].iteration), accept(next) { report.replayedSegments += 1 }
        return true
    }

    // MARK: Scheduling

    func dispatch() {
        for g in groups.indices where !groups[g].isOut && groups[g].iteration < target {
            // Workers on which this segment failed get it again only if no other can take it.
            let failed = Set(groups[g].failures.map(\.worker))
            guard let id = leastLoaded(excluding: []) { !failed.contains($0.ready.name) } ?? leastLoaded(excluding: []) else { return }
            // Up to a held record, exactly, if there is one.
            let heldStart = held[g]?.keys.filter { $0 > groups[g].iteration }.min() ?? target
            let length = min(settings.segment, target - groups[g].iteration, heldStart - groups[g].iteration)
            guard send(group: g, length: length, to: id) else { continue }
            groups[g].out = Segment(length: length, peers: [id], sent: [id: Date()])
        }
    }

    /// The peer with the fewest segments among those with credit left (ties by id).
    func leastLoaded(excluding: [[UInt8]], where allowed: (Peer) -> Bool = { _ in true }) -> [UInt8]? {
        peers.filter { !excluding.contains($0.key) && $0.value.outstanding.count < $0.value.ready.capacity + settings.prefetch && allowed($0.value) }
            .min { a, b in
                a.value.outstanding.count != b.value.outstanding.count
                    ? a.value.outstanding.count < b.value.outstanding.count : a.key.lexicographicallyPrecedes(b.key)
            }?.key
    }

    /// Sends the group's segment from its current iteration; false if the peer is unreachable (then lost).
    func send(group g: Int, length: Int, to id: [UInt8]) -> Bool {
        let a = Assignment(job: spec.id, group: g, chains: groups[g].chains, firstIteration: groups[g].iteration,
                           length: length, checkpoints: groups[g].checkpoints)
        guard (try? transport.send(WireCodec.encode(.assign(a)), to: id)) == true else {
            lose(id, reason: "unreachable")
            return false
        }
        peers[id]?.outstanding.insert(g)
        peers[id]?.lastSent = Date()
        return true
    }

    /// Takes `id` off the groups' segments; a segment left with no peer is free again.
    func release(_ outstanding: Set<Int>, from id: [UInt8], reason: String) {
        for g in outstanding.sorted() {
            peers[id]?.outstanding.remove(g)
            guard var out = groups[g].out, out.peers.contains(id) else { continue }
            out.peers.removeAll { $0 == id }
            groups[g].out = out.peers.isEmpty ? nil : out
            guard out.peers.isEmpty else { continue }
            report.reassigned += 1
            logger.info("group \(g) (chains \(groups[g].chains.first!)…\(groups[g].chains.last!)) reassigned from iteration \(groups[g].iteration): \(reason)",
                        metadata: ["event": "reassigned", "group": "\(g)", "chains": "\(groups[g].chains.first!)…\(groups[g].chains.last!)", "iteration": "\(groups[g].iteration)"])
        }
    }

    func lose(_ id: [UInt8], reason: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        report.lost += 1
        for i in checks.indices where checks[i].verifier == id { checks[i].verifier = nil }
        logger.warning("worker lost: \(p.ready.name) on \(p.ready.host) (\(reason)); \(peers.count) connected",
                       metadata: ["event": "lost", "worker": "\(p.ready.name)", "host": "\(p.ready.host)"])
        release(p.outstanding, from: id, reason: "\(p.ready.name) lost")
    }

    /// The time a segment of `length` iterations is given before it counts as overdue.
    func deadline(length: Int) -> Double {
        guard let slowest else { return 10 * settings.deadlineFloor }
        return max(settings.deadlineFloor, settings.deadlineFactor * slowest * Double(length))
    }

    /// Overdue segments go to a second worker as well (whichever identical result comes
    /// first is taken).
    func checkDeadlines(_ now: Date) {
        for g in groups.indices {
            guard let out = groups[g].out, out.peers.count == 1, let sent = out.sent[out.peers[0]],
                  now.timeIntervalSince(sent) > deadline(length: out.length) else { continue }
            let late = out.peers[0]
            if let backup = leastLoaded(excluding: [late]), send(group: g, length: out.length, to: backup) {
                report.overdueSegments += 1
                groups[g].out?.peers.append(backup)
                groups[g].out?.sent[backup] = now
                logger.warning("group \(g)'s segment from iteration \(groups[g].iteration) is overdue on \(peers[late]?.ready.name ?? "?") (\(Int(now.timeIntervalSince(sent))) s); also sent to \(peers[backup]?.ready.name ?? "?")",
                               metadata: ["event": "overdue", "group": "\(g)", "worker": "\(peers[late]?.ready.name ?? "?")"])
            }
        }
    }

    /// A worker beaten to its own segment by the backup: alive and heartbeating is not
    /// enough, it must deliver. ``FarmSettings/strikes`` in a row drop it from the job.
    func strike(_ id: [UInt8]) {
        guard let p = peers[id] else { return }
        peers[id]?.strikes += 1
        guard p.strikes + 1 >= settings.strikes else { return }
        dropped.insert(id)
        report.droppedWorkers += 1
        _ = try? transport.send(WireCodec.encode(.failure(WireFailure(kind: "dropped", message: "dropped from this job for missing \(settings.strikes) segment deadlines in a row"))), to: id)
        lose(id, reason: "dropped: beaten to \(settings.strikes) of its segments in a row by other workers")
    }

    /// The job's error when a group's segment failed on ``FarmSettings/failuresPerGroup``
    /// workers, or that often on the only workers there are: the job, not a worker, is at fault.
    func checkFailures() throws -> RunError? {
        for group in groups where !group.failures.isEmpty {
            let workers = Set(group.failures.map(\.worker))
            let everyone = Set(peers.values.map(\.ready.name)).isSubset(of: workers)
            guard workers.count >= settings.failuresPerGroup || (everyone && group.failures.count >= settings.failuresPerGroup) else { continue }
            let last = group.failures.last!
            return RunError("worker \(last.worker): \(last.message) (chains \(group.chains.first!)…\(group.chains.last!) failed on \(workers.sorted().joined(separator: ", ")))")
        }
        return nil
    }

    func expireSilentPeers(_ now: Date) {
        for (id, p) in peers where now.timeIntervalSince(p.lastHeard) > settings.silence {
            lose(id, reason: "silent for \(String(format: "%.1f", now.timeIntervalSince(p.lastHeard))) s")
        }
    }

    func sendHeartbeats(_ now: Date) {
        for (id, p) in peers where now.timeIntervalSince(p.lastSent) >= settings.heartbeat {
            if (try? transport.send(WireCodec.encode(.heartbeat), to: id)) == true {
                peers[id]?.lastSent = now
            }
        }
    }
}

/// A value computed on a thread of its own (the stop rule's diagnostics, a segment the
/// coordinator runs itself), so that the coordinator keeps heartbeating meanwhile.
final class Background<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)

    init(_ work: @escaping @Sendable () -> Value) {
        let t = Thread { [self] in
            let v = work()
            value.withLock { $0 = v }
        }
        t.stackSize = 16 << 20
        t.start()
    }

    /// nil until the work is done.
    var result: Value? { value.withLock { $0 } }
}
