import Foundation
import Prometheus
import Synchronization

/// The coordinator's state in the Prometheus text format, for operators running a farm for
/// hours (Slurm, Kubernetes): served on `/metrics` (``MetricsServer``) and, for node
/// exporter's textfile collector, written to a file. Updated from the progress snapshot and
/// the farm report about twice a second; every series carries the job's name.
public final class FarmMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let gauges: [String: Gauge]
    let counters: [String: Counter]
    /// The last cumulative value sent to each counter (counters only go up by the difference).
    private let sent = Mutex<[String: Int]>([:])

    static let gaugeHelp: [(String, String)] = [
        ("probefarm_workers", "Workers connected."),
        ("probefarm_segments_in_flight", "Segments out to workers, checks included."),
        ("probefarm_iteration", "Iterations done by the slowest chain."),
        ("probefarm_target_iterations", "Iterations per chain the job runs to now (warm-up included; the stop rule extends it)."),
        ("probefarm_draws_per_second", "Chain iterations per second, all chains."),
        ("probefarm_acceptance_rate", "Mean acceptance probability of the draws so far."),
        ("probefarm_max_rhat", "The stop rule's last verdict: the largest R-hat (NaN before the first)."),
        ("probefarm_min_ess", "The stop rule's last verdict: the smallest bulk or tail ESS (NaN before the first)."),
        ("probefarm_eta_seconds", "Estimated seconds to the current target (NaN when unknown)."),
        ("probefarm_elapsed_seconds", "Seconds since the coordinator started this run."),
    ]

    nonisolated(unsafe) static let counterHelp: [(String, String, KeyPath<FarmReport, Int>)] = [
        ("probefarm_segments_done_total", "Segments accepted and journaled.", \.segments),
        ("probefarm_workers_joined_total", "Worker joins.", \.joined),
        ("probefarm_workers_lost_total", "Workers declared lost.", \.lost),
        ("probefarm_reassigned_total", "Segments handed to another worker.", \.reassigned),
        ("probefarm_duplicates_total", "Duplicate results (a segment two workers finished).", \.duplicates),
        ("probefarm_rejected_messages_total", "Messages refused (malformed, wrong protocol).", \.rejectedMessages),
        ("probefarm_rejected_results_total", "Results refused (not the segment a peer was computing, or inconsistent).", \.rejectedResults),
        ("probefarm_failed_segments_total", "Segments a worker reported it could not run.", \.failedSegments),
        ("probefarm_overdue_segments_total", "Segments past their deadline, sent to a second worker.", \.overdueSegments),
        ("probefarm_verified_segments_total", "Segments computed twice and found identical.", \.verifiedSegments),
        ("probefarm_faulty_workers_total", "Workers whose results did not verify.", \.faultyWorkers),
        ("probefarm_discarded_segments_total", "Segments rolled back with a faulty worker's.", \.discardedSegments),
        ("probefarm_dropped_workers_total", "Workers dropped for missing deadlines.", \.droppedWorkers),
    ]

    public init(job: String) {
        let labels = [("job", job)]
        var g = [String: Gauge](), c = [String: Counter]()
        for (name, help) in Self.gaugeHelp { g[name] = registry.makeGauge(name: name, labels: labels, help: help) }
        for (name, help, _) in Self.counterHelp { c[name] = registry.makeCounter(name: name, labels: labels, help: help) }
        gauges = g
        counters = c
    }

    /// Sets every series from a progress snapshot and the farm's counts so far.
    public func update(_ p: FarmProgress, _ report: FarmReport) {
        let values: [String: Double] = [
            "probefarm_workers": Double(p.workers), "probefarm_segments_in_flight": Double(p.segmentsInFlight),
            "probefarm_iteration": Double(p.iteration), "probefarm_target_iterations": Double(p.totalIterations),
            "probefarm_draws_per_second": p.drawsPerSecond, "probefarm_acceptance_rate": p.acceptance,
            "probefarm_max_rhat": p.maxRHat ?? .nan, "probefarm_min_ess": p.minESS ?? .nan,
            "probefarm_eta_seconds": p.eta ?? .nan, "probefarm_elapsed_seconds": p.elapsed,
        ]
        for (name, v) in values { gauges[name]?.set(v) }
        var live = report
        live.segments = p.segmentsDone
        sent.withLock { last in
            for (name, _, path) in Self.counterHelp {
                let now = live[keyPath: path]
                let delta = now - (last[name] ?? 0)
                if delta > 0 { counters[name]?.increment(by: Int64(delta)) }
                last[name] = max(now, last[name] ?? 0)
            }
        }
    }

    /// The exposition, as `/metrics` serves it.
    public var text: [UInt8] { registry.emitToBuffer() }

    /// Writes the exposition atomically to `path` (node exporter's textfile collector reads
    /// `*.prom` files in its directory).
    public func write(to path: String) {
        try? Data(text).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// `/metrics` over plain HTTP/1.1 on its own thread: one request per connection, GET only.
public final class MetricsServer: @unchecked Sendable {
    public let port: Int
    let fd: Int32
    let body: @Sendable () -> [UInt8]

    /// Binds `address` ("HOST:PORT"; HOST an IPv4 address, `localhost` or `*`; PORT 0
    /// picks one) and serves `body()` on `GET /metrics`.
    public init(bind address: String, body: @escaping @Sendable () -> [UInt8]) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw RunError("--metrics-bind \(address): expected HOST:PORT (e.g. 0.0.0.0:9464)", sysexit: .usage)
        }
        var host = String(address[..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        if host == "*" || host.isEmpty { host = "0.0.0.0" }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw RunError("--metrics-bind \(address): '\(host)' is not an IPv4 address", sysexit: .usage)
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            if fd >= 0 { Foundation.close(fd) }
            throw RunError("--metrics-bind \(address): cannot listen: \(why)", sysexit: .unavailable)
        }
        var actual = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.fd = fd
        self.body = body
        let t = Thread { [self] in serve() }
        t.name = "metrics"
        t.start()
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return  // closed
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8](repeating: 0, count: 4096)
            let n = read(client, &request, request.count)
            let line = n > 0 ? String(decoding: request[0..<n], as: UTF8.self).prefix { $0 != "\r" && $0 != "\n" } : ""
            let parts = line.split(separator: " ")
            let ok = parts.count >= 2 && parts[0] == "GET" && (parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?"))
            let payload = ok ? body() : Array("not found: GET /metrics\n".utf8)
            let head = "HTTP/1.1 \(ok ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                + "Content-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
            let response = Array(head.utf8) + payload
            var sentBytes = 0
            while sentBytes < response.count {
                let w = response[sentBytes...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                sentBytes += w
            }
            Foundation.close(client)
        }
    }

    public func close() { shutdown(fd, Int32(SHUT_RDWR)); Foundation.close(fd) }
}
