import FarmWire
import Foundation
import Logging
import NeuralModels
import Probes
import Samplers
import TensorCore

public struct WorkerSettings: Sendable {
    public var name: String
    /// Where fetched files live, named by their sha256.
    public var cacheDirectory: String
    public var heartbeat = 1.0
    public var liveness = 4
    /// Chunk requests kept in flight while fetching a file.
    public var fetchWindow = 8
    public var chunkBytes = 1 << 20
    /// Leave when this process is no longer our parent (workers started by `probefarm run`).
    public var parent: Int32?
    /// Polled by the loop: a reason to leave (e.g. "SIGTERM"), and then the worker drains.
    public var stopRequested: @Sendable () -> String? = { nil }
    /// How long a draining worker may spend finishing its segment before it leaves anyway
    /// (Slurm's KillWait and Kubernetes' grace period are 30 s by default).
    public var drainSeconds = 20.0
    /// Rewritten every heartbeat for `probefarm health` (liveness and readiness probes).
    public var statusPath: String?
    /// Refused handshakes, before ever being registered, after which the worker gives up.
    public var refusals = 3
    /// When a job ends (or its coordinator stops, to be resumed): wait for the next
    /// coordinator at the same endpoint instead of leaving.
    public var waitForNext = false

    public init(name: String, cacheDirectory: String) {
        self.name = name
        self.cacheDirectory = cacheDirectory
    }
}

/// Why a worker stopped.
public enum WorkerExit: Sendable, Equatable {
    /// The coordinator said the job is over.
    case done(String)
    /// The coordinator refused us (protocol version, bad job): the message.
    case refused(String)
}

/// Runs assignments from a coordinator: one socket thread (this one) that talks and
/// heartbeats, one compute thread that steps a group of chains as one batch. Fetches
/// the files a job names into the cache by sha256 (one process per host under a lock,
/// atomic rename), then maps them.
public final class Worker {
    let transport: WorkerTransport
    public let settings: WorkerSettings
    let logger: Logger
    let compute: ComputeThread

    var specs = [String: JobSpec]()
    var waiting = [Assignment]()
    var fetches = [String: Fetch]()
    /// Files another process on this host is fetching into the same cache: this worker
    /// waits for them rather than fetching a second copy (which would also map a second
    /// inode and share no pages with its neighbours).
    var peerFetches = [String: FileRef]()
    var lastPeerCheck = Date.distantPast
    var outbox = [[[UInt8]]]()
    var lastHeard = Date()
    var lastSent = Date.distantPast
    /// When to give freed memory back to the system (after a sent result or a fetch).
    var trimDue: Date?
    /// Until the coordinator answers READY with the job, READY is repeated (a message
    /// sent before the connection is up is dropped, by IMMEDIATE).
    var registered = false
    /// Whether any coordinator ever answered: a worker once registered rides out restarts.
    var everRegistered = false
    var session = ""
    /// Set when a stop was requested: the reason and the time by which to be gone.
    var draining: (reason: String, deadline: Date)?
    var lastStatus = Date.distantPast
    public private(set) var segmentsDone = 0
    public private(set) var reconnects = 0

    struct Fetch {
        var ref: FileRef
        var handle: FileHandle
        var temporary: String
        /// The cache's lock for this file, held (flock) until it is in place.
        var lock: Int32
        var nextOffset = 0
        var received = 0
        var inFlight = 0
    }

    public init(transport: WorkerTransport, settings: WorkerSettings, logger: Logger = Logger(label: "probefarm.worker")) throws {
        self.transport = transport
        self.settings = settings
        self.logger = logger
        try FileManager.default.createDirectory(atPath: settings.cacheDirectory, withIntermediateDirectories: true)
        compute = ComputeThread()
    }

    var cached: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: settings.cacheDirectory)) ?? []
        return names.filter { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.sorted()
    }

    var cache: WeightCache { WeightCache(directory: settings.cacheDirectory) }

    func cachePath(_ sha: String) -> String { cache.path(sha) }

    func ready() -> WireMessage {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        return .ready(Ready(name: settings.name, host: String(cString: host), pid: getpid(), session: session, capacity: 1, cached: cached,
                            probefarm: Provenance.version, blas: "\(BLAS.coreName)/\(BLAS.threads)"))
    }

    func status(_ now: Date) -> StatusFile.Status {
        let state = draining != nil ? "draining" : !registered ? "connecting" : !(fetches.isEmpty && peerFetches.isEmpty) ? "fetching"
            : compute.isIdle && waiting.isEmpty ? "idle" : "running"
        let heard = now.timeIntervalSince(lastHeard) <= settings.heartbeat * Double(settings.liveness)
        return StatusFile.Status(role: "worker", state: state, connected: registered && heard, segments: segmentsDone)
    }

    func newSession() {
        session = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        registered = false
        lastSent = .distantPast
    }

    func send(_ m: WireMessage) throws {
        if try transport.send(WireCodec.encode(m)) { lastSent = Date() }
    }

    /// Serves until the coordinator ends the job. Returns once the compute thread is idle:
    /// the process exits next, and exit's handlers free OpenBLAS's buffers — under a segment
    /// still running they crashed the worker (SIGSEGV). A segment still running when the
    /// drain time is up is abandoned at its next batched evaluation (its chains resume
    /// elsewhere from their checkpoints).
    public func run() throws -> WorkerExit {
        let exit = try serve()
        compute.stop()
        if !compute.waitUntilIdle(seconds: settings.drainSeconds) {
            logger.warning("the segment under way did not stop within \(settings.drainSeconds) s")
        }
        return exit
    }

    /// The loop of ``run()``, which stops the compute thread whatever way this returns.
    private func serve() throws -> WorkerExit {
        newSession()
        lastHeard = Date()
        while true {
            if let parent = settings.parent, getppid() != parent {
                return .done("the parent process \(parent) is gone")
            }
            if !everRegistered, transport.refusedHandshakes >= settings.refusals {
                return .refused("the coordinator refused the connection \(transport.refusedHandshakes) times (the handshake failed: this worker's CURVE key is not on its allow-list, coordinator.pub is not the coordinator's key, or only one side uses --keys)")
            }
            if draining == nil, let why = settings.stopRequested() {
                // Drain: run nothing new, finish and send the segment under way, then leave.
                draining = (why, Date().addingTimeInterval(settings.drainSeconds))
                waiting.removeAll()
                compute.dropQueued()
                logger.info("\(why): finishing the segment under way, then leaving")
            }
            if let frames = try transport.receive(timeout: 0.01) {
                lastHeard = Date()
                if let exit = try handle(frames) { return exit }
            }
            for frames in compute.takeResults() { outbox.append(frames) }
            while let next = outbox.first {
                guard try transport.send(next) else { break }
                outbox.removeFirst()
                lastSent = Date()
                segmentsDone += 1
                trimDue = lastSent.addingTimeInterval(0.02)
            }
            if let due = trimDue, Date() >= due {
                // A segment's buffers (and a fetch's chunks) are freed by now, the last ones
                // by libzmq's I/O thread once sent: give them back rather than keep the peak.
                trimDue = nil
                MemoryTuning.returnFreeMemory()
            }
            if let d = draining, (compute.isIdle && outbox.isEmpty) || Date() > d.deadline || !registered {
                // The coordinator releases whatever it still counted as ours.
                _ = try? transport.send(WireCodec.encode(.done(reason: "\(settings.name) leaves: \(d.reason)")))
                return .done("left on \(d.reason) after \(segmentsDone) segments")
            }
            let now = Date()
            if !peerFetches.isEmpty, now.timeIntervalSince(lastPeerCheck) >= 0.2 {
                lastPeerCheck = now
                try checkPeerFetches()
            }
            if let path = settings.statusPath, now.timeIntervalSince(lastStatus) >= min(settings.heartbeat, 1) {
                lastStatus = now
                StatusFile.write(status(now), to: path)
            }
            let interval = registered ? settings.heartbeat : min(settings.heartbeat, 0.2)
            if now.timeIntervalSince(lastSent) >= interval { try send(registered ? .heartbeat : ready()) }
            if now.timeIntervalSince(lastHeard) > settings.heartbeat * Double(settings.liveness) {
                reconnects += 1
                logger.warning("coordinator silent for \(String(format: "%.1f", now.timeIntervalSince(lastHeard))) s; reconnecting")
                try transport.reconnect()
                waiting.removeAll()
                compute.dropQueued()
                for f in fetches.values { abandon(f) }
                fetches.removeAll()
                peerFetches.removeAll()
                newSession()
                lastHeard = Date()
            }
        }
    }

    func handle(_ frames: [[UInt8]]) throws -> WorkerExit? {
        let message: WireMessage
        do { message = try WireCodec.decode(frames) } catch {
            if case .version = error { return .refused("the coordinator \(error)") }
            logger.warning("ignored a message from the coordinator: \(error)")
            return nil
        }
        switch message {
        case .heartbeat:
            break
        case .job(let spec):
            registered = true
            everRegistered = true
            specs[spec.id] = spec
            for ref in spec.files where !FileManager.default.fileExists(atPath: cachePath(ref.sha256)) && fetches[ref.sha256] == nil
                && peerFetches[ref.sha256] == nil {
                try startFetch(ref)
            }
            releaseWaiting()
        case .assign(let a):
            guard draining == nil else { break }  // released by the coordinator when we leave
            waiting.append(a)
            releaseWaiting()
        case .chunk(let h, let bytes):
            try receiveChunk(h, bytes)
        case .failure(let f):
            if f.kind == "unknown-peer" {
                newSession()
            } else {
                return .refused("coordinator: \(f.message)")
            }
        case .done(let reason):
            guard settings.waitForNext, draining == nil else { return .done(reason) }
            logger.warning("\(reason); waiting for the next coordinator (--wait)")
            waiting.removeAll()
            compute.dropQueued()
            specs.removeAll()
            try transport.reconnect()
            newSession()
            lastHeard = Date()
        case .ready, .result, .fetch:
            logger.warning("ignored a \(message.typeName) message from the coordinator")
        }
        return nil
    }

    /// Hands assignments whose job and files are here to the compute thread.
    func releaseWaiting() {
        waiting.removeAll { a in
            guard let spec = specs[a.job], spec.files.allSatisfy({ fetches[$0.sha256] == nil && peerFetches[$0.sha256] == nil }) else {
                return false
            }
            var overrides = [String: String]()
            for f in spec.files { overrides[f.path] = cachePath(f.sha256) }
            compute.enqueue(ComputeThread.Task(spec: spec, overrides: overrides, cacheDirectory: settings.cacheDirectory, assignment: a))
            return true
        }
    }

    // MARK: Fetching files by content

    /// Fetches a file unless another process on this host already is (the cache's lock
    /// file for it is held): then waits for that one to put it in place.
    func startFetch(_ ref: FileRef) throws {
        let lockPath = cache.lockPath(ref.sha256)
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw RunError("cannot create \(lockPath) (check --cache)") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            if peerFetches.updateValue(ref, forKey: ref.sha256) == nil {
                logger.info("another worker on this host is fetching \(ref.path); waiting for it")
            }
            return
        }
        peerFetches[ref.sha256] = nil
        if FileManager.default.fileExists(atPath: cachePath(ref.sha256)) {  // a neighbour finished meanwhile
            close(lock)
            releaseWaiting()
            return
        }
        let temporary = cache.temporaryPath(ref.sha256)
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let h = FileHandle(forWritingAtPath: temporary) else {
            close(lock)
            throw RunError("cannot write \(temporary) (check --cache)")
        }
        logger.info("fetching \(ref.path) (\(ref.size) bytes, sha256 \(ref.sha256.prefix(12))…)")
        fetches[ref.sha256] = Fetch(ref: ref, handle: h, temporary: temporary, lock: lock)
        if ref.size == 0 { try finishFetch(ref.sha256) } else { try requestChunks(ref.sha256) }
    }

    /// A neighbour's fetch either finished (the file is in place) or died (its lock is
    /// free again, and this worker takes over).
    func checkPeerFetches() throws {
        for (sha, ref) in peerFetches {
            if FileManager.default.fileExists(atPath: cachePath(sha)) {
                peerFetches[sha] = nil
                logger.info("\(ref.path) is in the cache")
            } else {
                try startFetch(ref)
            }
        }
        releaseWaiting()
    }

    func abandon(_ f: Fetch) {
        try? f.handle.close()
        try? FileManager.default.removeItem(atPath: f.temporary)
        close(f.lock)
    }

    func requestChunks(_ sha: String) throws {
        guard var f = fetches[sha] else { return }
        while f.inFlight < settings.fetchWindow && f.nextOffset < f.ref.size {
            let n = min(settings.chunkBytes, f.ref.size - f.nextOffset)
            try send(.fetch(FetchRequest(sha256: sha, offset: f.nextOffset, length: n)))
            f.nextOffset += n
            f.inFlight += 1
        }
        fetches[sha] = f
    }

    func receiveChunk(_ h: ChunkHeader, _ bytes: [UInt8]) throws {
        guard var f = fetches[h.sha256], h.total == f.ref.size else { return }
        try f.handle.seek(toOffset: UInt64(h.offset))
        try f.handle.write(contentsOf: Data(bytes))
        f.received += bytes.count
        f.inFlight -= 1
        fetches[h.sha256] = f
        if f.received >= f.ref.size { try finishFetch(h.sha256) } else { try requestChunks(h.sha256) }
    }

    func finishFetch(_ sha: String) throws {
        guard let f = fetches.removeValue(forKey: sha) else { return }
        defer { close(f.lock) }
        try f.handle.synchronize()
        try f.handle.close()
        let file = try MappedFile(path: f.temporary)
        let actual = SHA256.hex(file.bytes)
        guard actual == sha else {
            try? FileManager.default.removeItem(atPath: f.temporary)
            throw RunError("fetched \(f.ref.path) has sha256 \(actual), expected \(sha)")
        }
        if rename(f.temporary, cachePath(sha)) != 0 { throw RunError("cannot move \(f.temporary) into the cache") }
        logger.info("cached \(f.ref.path) as \(cachePath(sha))")
        trimDue = Date().addingTimeInterval(0.2)
        releaseWaiting()
    }
}

/// The worker's compute thread: builds a job's plan once (mapping the cached weights)
/// and runs assignments in order, handing back encoded results.
final class ComputeThread: @unchecked Sendable {
    struct Task {
        var spec: JobSpec
        var overrides: [String: String]
        var cacheDirectory: String
        var assignment: Assignment
    }

    private let condition = NSCondition()
    private var tasks = [Task]()
    private var results = [[[UInt8]]]()
    private var stopped = false
    private var plans = [String: SegmentWork]()
    private var running = false

    init() {
        let t = Thread { [self] in loop() }
        t.stackSize = 16 << 20
        t.start()
    }

    func enqueue(_ task: Task) {
        condition.lock(); tasks.append(task); condition.signal(); condition.unlock()
    }

    func dropQueued() {
        condition.lock(); tasks.removeAll(); condition.unlock()
    }

    /// Runs nothing more and abandons the segment under way at its next batched evaluation.
    func stop() {
        condition.lock(); stopped = true; tasks.removeAll(); condition.signal(); condition.unlock()
    }

    private var isStopped: Bool {
        condition.lock(); defer { condition.unlock() }
        return stopped
    }

    /// Waits until no segment is running, at most `seconds`; whether it is idle.
    func waitUntilIdle(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock(); defer { condition.unlock() }
        while running && Date() < deadline { _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.05))) }
        return !running
    }

    /// Nothing queued, nothing running, nothing waiting to be taken.
    var isIdle: Bool {
        condition.lock(); defer { condition.unlock() }
        return tasks.isEmpty && !running && results.isEmpty
    }

    func takeResults() -> [[[UInt8]]] {
        condition.lock(); defer { condition.unlock() }
        let r = results
        results.removeAll()
        return r
    }

    private func loop() {
        BLAS.setThreads(1)
        while true {
            condition.lock()
            while tasks.isEmpty && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            let task = tasks.removeFirst()
            running = true
            condition.unlock()
            let frames = run(task)
            condition.lock()
            if let frames { results.append(frames) }
            running = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The encoded result or failure; nil for a segment abandoned by ``stop()``.
    private func run(_ task: Task) -> [[UInt8]]? {
        let work: SegmentWork
        if let w = plans[task.spec.id] {
            work = w
        } else {
            do {
                var job = try Job.parse(task.spec.document, file: task.spec.fileName, directory: task.cacheDirectory,
                                        sha256: task.spec.id)
                job.fileOverrides = task.overrides
                work = SegmentWork(plan: try JobPlan(job))
                plans[task.spec.id] = work
            } catch {
                return WireCodec.encode(.failure(WireFailure(kind: "job", message: "\(error)")))
            }
        }
        // The last segment's memory, freed but still resident where the main thread's trim
        // came too late, would otherwise hold this one's draws: they are to be touched
        // only as they arrive.
        MemoryTuning.returnFreeMemory()
        do {
            return WireCodec.encode(.result(try work.run(task.assignment) { [self] in isStopped }))
        } catch is SegmentCancelled {
            return nil
        } catch {
            return WireCodec.encode(.failure(WireFailure(kind: "segment", message: "\(error)")))
        }
    }
}
