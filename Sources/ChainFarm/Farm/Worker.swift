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
/// the files a job names into the cache by sha256 (atomic rename), then maps them.
public final class Worker {
    let transport: WorkerTransport
    public let settings: WorkerSettings
    let logger: Logger
    let compute: ComputeThread

    var specs = [String: JobSpec]()
    var waiting = [Assignment]()
    var fetches = [String: Fetch]()
    var outbox = [[[UInt8]]]()
    var lastHeard = Date()
    var lastSent = Date.distantPast
    /// Until the coordinator answers READY with the job, READY is repeated (a message
    /// sent before the connection is up is dropped, by IMMEDIATE).
    var registered = false
    var session = ""
    public private(set) var segmentsDone = 0
    public private(set) var reconnects = 0

    struct Fetch {
        var ref: FileRef
        var handle: FileHandle
        var temporary: String
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

    func cachePath(_ sha: String) -> String { (settings.cacheDirectory as NSString).appendingPathComponent(sha) }

    func ready() -> WireMessage {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        return .ready(Ready(name: settings.name, host: String(cString: host), pid: getpid(), session: session, capacity: 1, cached: cached,
                            probefarm: Provenance.version, blas: "\(BLAS.coreName)/\(BLAS.threads)"))
    }

    func newSession() {
        session = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        registered = false
        lastSent = .distantPast
    }

    func send(_ m: WireMessage) throws {
        if try transport.send(WireCodec.encode(m)) { lastSent = Date() }
    }

    /// Serves until the coordinator ends the job.
    public func run() throws -> WorkerExit {
        newSession()
        lastHeard = Date()
        while true {
            if let parent = settings.parent, getppid() != parent {
                compute.stop()
                return .done("the parent process \(parent) is gone")
            }
            if let frames = try transport.receive(timeout: 0.01) {
                lastHeard = Date()
                if let exit = try handle(frames) { compute.stop(); return exit }
            }
            for frames in compute.takeResults() { outbox.append(frames) }
            while let next = outbox.first {
                guard try transport.send(next) else { break }
                outbox.removeFirst()
                lastSent = Date()
                segmentsDone += 1
            }
            let now = Date()
            let interval = registered ? settings.heartbeat : min(settings.heartbeat, 0.2)
            if now.timeIntervalSince(lastSent) >= interval { try send(registered ? .heartbeat : ready()) }
            if now.timeIntervalSince(lastHeard) > settings.heartbeat * Double(settings.liveness) {
                reconnects += 1
                logger.warning("coordinator silent for \(String(format: "%.1f", now.timeIntervalSince(lastHeard))) s; reconnecting")
                try transport.reconnect()
                waiting.removeAll()
                compute.dropQueued()
                for f in fetches.values { try? f.handle.close(); try? FileManager.default.removeItem(atPath: f.temporary) }
                fetches.removeAll()
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
            specs[spec.id] = spec
            for ref in spec.files where !FileManager.default.fileExists(atPath: cachePath(ref.sha256)) && fetches[ref.sha256] == nil {
                try startFetch(ref)
            }
            releaseWaiting()
        case .assign(let a):
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
            return .done(reason)
        case .ready, .result, .fetch:
            logger.warning("ignored a \(message.typeName) message from the coordinator")
        }
        return nil
    }

    /// Hands assignments whose job and files are here to the compute thread.
    func releaseWaiting() {
        waiting.removeAll { a in
            guard let spec = specs[a.job], spec.files.allSatisfy({ fetches[$0.sha256] == nil }) else { return false }
            var overrides = [String: String]()
            for f in spec.files { overrides[f.path] = cachePath(f.sha256) }
            compute.enqueue(ComputeThread.Task(spec: spec, overrides: overrides, cacheDirectory: settings.cacheDirectory, assignment: a))
            return true
        }
    }

    // MARK: Fetching files by content

    func startFetch(_ ref: FileRef) throws {
        let temporary = cachePath(".\(ref.sha256).\(getpid()).partial")
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let h = FileHandle(forWritingAtPath: temporary) else {
            throw RunError("cannot write \(temporary) (check --cache)")
        }
        logger.info("fetching \(ref.path) (\(ref.size) bytes, sha256 \(ref.sha256.prefix(12))…)")
        fetches[ref.sha256] = Fetch(ref: ref, handle: h, temporary: temporary)
        if ref.size == 0 { try finishFetch(ref.sha256) } else { try requestChunks(ref.sha256) }
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

    func stop() {
        condition.lock(); stopped = true; tasks.removeAll(); condition.signal(); condition.unlock()
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
            condition.unlock()
            let frames = run(task)
            condition.lock(); results.append(frames); condition.unlock()
        }
    }

    private func run(_ task: Task) -> [[UInt8]] {
        let work: SegmentWork
        if let w = plans[task.spec.id] {
            work = w
        } else {
            do {
                var job = try Job.parse(task.spec.text, file: task.spec.fileName, directory: task.cacheDirectory)
                job.fileOverrides = task.overrides
                work = SegmentWork(plan: try JobPlan(job))
                plans[task.spec.id] = work
            } catch {
                return WireCodec.encode(.failure(WireFailure(kind: "job", message: "\(error)")))
            }
        }
        do {
            return WireCodec.encode(.result(try work.run(task.assignment)))
        } catch {
            return WireCodec.encode(.failure(WireFailure(kind: "segment", message: "\(error)")))
        }
    }
}
