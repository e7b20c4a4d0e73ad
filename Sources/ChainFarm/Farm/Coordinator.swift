import Diagnostics
import FarmWire
import Foundation
import Logging
import NeuralModels
import Probes
import Samplers

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
        var assignedTo: [UInt8]?
    }

    struct Peer {
        var ready: Ready
        var lastHeard: Date
        var lastSent: Date
        var outstanding = Set<Int>()
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
    public private(set) var report = FarmReport()
    var converged: Bool? = nil
    var lastCheck: (maxRHat: Double?, minBulk: Double?, minTail: Double?) = (nil, nil, nil)
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
            guard case .result(let r)? = try? WireCodec.decode(frames) else { throw RunError("\(journal.path): a record is not a segment result") }
            guard accept(r) else { throw RunError("\(journal.path): record for group \(r.header.group) at iteration \(r.header.firstIteration) does not continue the journal") }
            report.replayedSegments += 1
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
        var check: ConvergenceCheck? = nil
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

            if groups.allSatisfy({ $0.iteration >= target && $0.assignedTo == nil }) {
                if let stop = plan.job.stop {
                    if check == nil { check = ConvergenceCheck(draws.prefix(sampler.draws)) }
                    if let result = check!.result {
                        check = nil
                        lastCheck = result
                        converged = result.maxRHat.map { $0 < stop.rhat } == true && (result.minBulk ?? 0) >= stop.essBulk
                            && (result.minTail ?? 0) >= stop.essTail
                        if converged == true {
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
        report.refusedConnections = transport.refusedConnections
        report.segments = journal.records - 1
        let outcome = RunOutcome(draws: draws.prefix(sampler.draws),
                                 checkpoints: groups.flatMap { $0.checkpoints ?? [] }, settings: sampler,
                                 converged: converged, stopReason: report.stopReason,
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
        return FarmProgress(chains: plan.job.chains, warmup: sampler.warmup,
                            iteration: groups.map(\.iteration).min() ?? 0, totalIterations: target,
                            drawsPerSecond: rate, workers: peers.count, acceptance: draws.acceptanceRate,
                            divergences: draws.divergences, maxRHat: lastCheck.maxRHat,
                            minESS: lastCheck.minBulk.map { min($0, lastCheck.minTail ?? $0) }, elapsed: elapsed,
                            eta: rate > 0 ? remaining / rate : nil)
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
            // A peer we do not know (e.g. declared lost): ask it to introduce itself.
            if case .result(let r) = message { try ingest(r, frames: frames, from: id) }
            _ = try transport.send(WireCodec.encode(.failure(WireFailure(kind: "unknown-peer", message: "send ready first"))), to: id)
            return
        }
        peers[id]?.lastHeard = now
        switch message {
        case .ready(let r):
            if let old = peers[id] {
                if old.ready.session == r.session {
                    // A repeated READY (our reply crossed it): answer again, keep its work.
                    _ = try transport.send(WireCodec.encode(.job(spec)), to: id)
                    return
                }
                release(old.outstanding, reason: "\(old.ready.name) restarted or reconnected")
            }
            guard r.capacity >= 1 else {
                report.rejectedMessages += 1
                return
            }
            peers[id] = Peer(ready: r, lastHeard: now, lastSent: now)
            report.joined += 1
            if !report.hosts.contains(r.host) { report.hosts.append(r.host) }
            if !report.workers.contains(r.name) { report.workers.append(r.name) }
            if !report.blas.contains(r.blas) { report.blas.append(r.blas) }
            logger.info("worker joined: \(r.name) on \(r.host) (pid \(r.pid), capacity \(r.capacity)); \(peers.count) connected")
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
            if f.kind == "job" || f.kind == "segment" {
                throw RunError("worker \(name): \(f.message)")
            }
            logger.warning("worker \(name) reports: \(f.kind): \(f.message)")
        case .done(let reason):
            guard let p = peers.removeValue(forKey: id) else { return }
            report.left += 1
            logger.info("worker left: \(reason); \(peers.count) connected")
            release(p.outstanding, reason: "\(p.ready.name) left")
        case .job, .assign, .chunk:
            report.rejectedMessages += 1
        }
    }

    func ingest(_ r: SegmentResult, frames: [[UInt8]], from id: [UInt8]) throws {
        let g = r.header.group
        peers[id]?.outstanding.remove(g)
        if groups.indices.contains(g), groups[g].assignedTo == id { groups[g].assignedTo = nil }
        if r.header.job == spec.id, groups.indices.contains(g), r.header.firstIteration < groups[g].iteration {
            report.duplicates += 1
            return
        }
        guard isContinuation(r) else {
            report.rejectedMessages += 1
            logger.warning("rejected a result for group \(g) at iteration \(r.header.firstIteration): it does not continue the group")
            return
        }
        try journal.append(frames)
        _ = accept(r)
        if let owner = groups[g].assignedTo, owner != id {
            // Another worker is still on this segment; its copy will be a duplicate.
            groups[g].assignedTo = nil
            peers[owner]?.outstanding.remove(g)
        }
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
        draws.append(r)
        groups[g].checkpoints = r.header.checkpoints
        groups[g].iteration = r.header.firstIteration + r.header.length
        return true
    }

    // MARK: Scheduling

    func dispatch() {
        for g in groups.indices where groups[g].assignedTo == nil && groups[g].iteration < target {
            let candidates = peers.filter { $0.value.outstanding.count < $0.value.ready.capacity + settings.prefetch }
            let least = candidates.min { a, b in
                a.value.outstanding.count != b.value.outstanding.count
                    ? a.value.outstanding.count < b.value.outstanding.count : a.key.lexicographicallyPrecedes(b.key)
            }
            guard let id = least?.key else { return }
            let group = groups[g]
            let a = Assignment(job: spec.id, group: g, chains: group.chains, firstIteration: group.iteration,
                               length: min(settings.segment, target - group.iteration), checkpoints: group.checkpoints)
            let sent = (try? transport.send(WireCodec.encode(.assign(a)), to: id)) ?? false
            if sent {
                groups[g].assignedTo = id
                peers[id]?.outstanding.insert(g)
                peers[id]?.lastSent = Date()
            } else {
                lose(id, reason: "unreachable")
            }
        }
    }

    func release(_ outstanding: Set<Int>, reason: String) {
        for g in outstanding.sorted() where groups[g].assignedTo != nil {
            groups[g].assignedTo = nil
            report.reassigned += 1
            logger.info("group \(g) (chains \(groups[g].chains.first!)…\(groups[g].chains.last!)) reassigned from iteration \(groups[g].iteration): \(reason)")
        }
    }

    func lose(_ id: [UInt8], reason: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        report.lost += 1
        logger.warning("worker lost: \(p.ready.name) on \(p.ready.host) (\(reason)); \(peers.count) connected")
        release(p.outstanding, reason: "\(p.ready.name) lost")
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

/// The stop rule's diagnostics computed off the coordinator's thread, so that it keeps
/// heartbeating while they run.
final class ConvergenceCheck: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (maxRHat: Double?, minBulk: Double?, minTail: Double?)?

    init(_ draws: RunDraws) {
        let t = Thread { [self] in
            let r = draws.convergence()
            lock.lock(); value = r; lock.unlock()
        }
        t.stackSize = 8 << 20
        t.start()
    }

    var result: (maxRHat: Double?, minBulk: Double?, minTail: Double?)? {
        lock.lock(); defer { lock.unlock() }
        return value
    }
}
