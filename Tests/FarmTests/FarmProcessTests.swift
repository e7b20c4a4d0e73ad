import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// The farm with real processes over real sockets: the draws are byte-identical with one
/// worker, with three over TCP, with workers SIGKILLed mid-segment again and again, and
/// with the coordinator SIGKILLed and resumed from its journal.
@Suite(.serialized)
struct FarmProcessTests {
    /// A latent job on the shipped Fashion-MNIST VAE decoder and CNN: 8 chains in groups
    /// of 4, a few seconds on two workers (longer where failures must land mid-segment).
    static func workspace(_ name: String, warmup: Int = 200, draws: Int = 300, stop: String = "",
                          method: String = "mala") throws -> (dir: URL, job: String) {
        let dir = try Fixtures.temporaryDirectory("probefarm-farm-\(name)")
        let models = Fixtures.repositoryRoot.appendingPathComponent("Deploy/models").path
        let job = """
            name: bag-\(name)
            seed: 7
            models:
              cnn: \(models)/fashion-cnn.safetensors
              decoder: \(models)/fashion-vae-decoder.safetensors
            space:
              latent: {decoder: decoder, prior: standard-normal}
            probe:
              - level-set: {model: cnn, target: {confident: 8}, sigma: 0.01}
            sampler: {method: \(method), warmup: \(warmup), draws: \(draws), batch: 4}
            chains: 8
            \(stop)
            """
        let path = dir.appendingPathComponent("job.yaml").path
        try job.write(toFile: path, atomically: true, encoding: .utf8)
        return (dir, path)
    }

    /// A workspace, its weight cache, and the undisturbed run of its job (one local worker)
    /// that a disturbed run's draws must equal.
    static func referenceRun(_ name: String, warmup: Int, draws: Int, segment: Int = 50)
        throws -> (dir: URL, job: String, cache: String, reference: String) {
        let (dir, job) = try workspace(name, warmup: warmup, draws: draws)
        let cache = dir.appendingPathComponent("cache").path
        let reference = dir.appendingPathComponent("reference").path
        let r = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache, "--quiet", "--segment", "\(segment)"])
        try #require(r.status == 0, "\(r.stderr)")
        return (dir, job, cache, reference)
    }

    /// A TCP socket connected to 127.0.0.1:`port` (closed by the caller), or nil.
    static func connectLoopback(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); return nil }
        return fd
    }

    static let compared = ["samples.npy", "latent.npy", "stats.npy", "outputs.npy"]

    static func expectIdentical(_ a: String, _ b: String, _ what: String) throws {
        for f in compared {
            let x = try Data(contentsOf: URL(fileURLWithPath: "\(a)/\(f)"))
            let y = try Data(contentsOf: URL(fileURLWithPath: "\(b)/\(f)"))
            #expect(x == y, "\(f) differs: \(what)")
        }
    }

    static func summary(_ run: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as? [String: Any])
    }

    static func farm(_ run: String) throws -> [String: Any] {
        let provenance = try #require(try summary(run)["provenance"] as? [String: Any])
        return try #require(provenance["farm"] as? [String: Any])
    }

    /// A free loopback TCP port.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// MALA steps every chain in lockstep; NUTS chains each follow their own trajectory
    /// through the batch, and a segment boundary or a kill falls wherever each chain is.
    @Test("draws are byte-identical: 1 worker, 3 over TCP, workers SIGKILLed, coordinator SIGKILLed and resumed",
          arguments: [("mala", 400, 800), ("nuts, max-tree-depth: 5", 150, 250)])
    func determinism(_ method: String, _ warmup: Int, _ draws: Int) throws {
        // Long enough (~10 s on two workers) for several kills to land mid-segment.
        let (dir, job) = try Self.workspace("determinism", warmup: warmup, draws: draws, method: method)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        let fast = ["--heartbeat", "0.5", "--quiet"]

        // Reference: the embedded farm with one worker process (fetches the weights).
        let reference = dir.appendingPathComponent("one").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache] + fast)
        try #require(r1.status == 0, "\(r1.stderr)")
        let cached = try FileManager.default.contentsOfDirectory(atPath: cache).filter { !$0.hasPrefix(".") }
        #expect(cached.count == 2, "both weight files fetched into the cache by sha256: \(cached)")

        // A coordinator and three separate worker processes over TCP.
        let port = Self.freePort()
        let tcp = dir.appendingPathComponent("tcp").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", "tcp://127.0.0.1:\(port)", "-o", tcp, "--segment", "40"] + fast,
                                                  log: dir.appendingPathComponent("tcp.log").path)
        let workers = try (1...3).map {
            try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--cache", cache, "--name", "tcp-\($0)", "--heartbeat", "0.5"],
                                    log: dir.appendingPathComponent("tcp-worker-\($0).log").path)
        }
        #expect(CommandRunner.wait(coordinator, timeout: 240) == 0)
        for w in workers { #expect(CommandRunner.wait(w, timeout: 20) == 0, "a worker leaves when the job is done") }
        try Self.expectIdentical(reference, tcp, "3 workers over TCP")
        #expect((try Self.farm(tcp)["workers"] as? [String])?.count == 3)

        // Worker processes SIGKILLed mid-segment, again and again (the embedded farm starts new ones).
        let killed = dir.appendingPathComponent("killed").path
        let killCache = dir.appendingPathComponent("cache-killed").path
        let run = try CommandRunner.start(["run", job, "--workers", "2", "-o", killed, "--cache", killCache, "--segment", "50"] + fast,
                                          log: dir.appendingPathComponent("killed.log").path)
        var kills = 0
        Thread.sleep(forTimeInterval: 1.5)
        while run.isRunning && kills < 4 {
            if let victim = CommandRunner.pids(matching: "worker --connect", "--cache \(killCache)").first {
                kill(victim, SIGKILL)
                kills += 1
            }
            Thread.sleep(forTimeInterval: 0.8)
        }
        #expect(CommandRunner.wait(run, timeout: 240) == 0)
        #expect(kills >= 3, "the job outlived \(kills) kills")
        try Self.expectIdentical(reference, killed, "workers SIGKILLed \(kills) times")

        // The coordinator SIGKILLed once segments are journaled, then resumed.
        let resumed = dir.appendingPathComponent("resumed").path
        let port2 = Self.freePort()
        let args = ["coordinator", job, "--bind", "tcp://127.0.0.1:\(port2)", "-o", resumed, "--segment", "50"] + fast
        let first = try CommandRunner.start(args, log: dir.appendingPathComponent("resumed-1.log").path)
        let resumeWorkers = try (1...2).map {
            try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port2)", "--cache", cache, "--name", "r-\($0)", "--heartbeat", "0.5"],
                                    log: dir.appendingPathComponent("resumed-worker-\($0).log").path)
        }
        let journal = resumed + "/journal.pfj"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && ((try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0) < 30_000 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: resumed + "/summary.json"))
        let again = try CommandRunner.start(args + ["--resume"], log: dir.appendingPathComponent("resumed-2.log").path)
        #expect(CommandRunner.wait(again, timeout: 240) == 0)
        for w in resumeWorkers { CommandRunner.wait(w, timeout: 20) }
        try Self.expectIdentical(reference, resumed, "coordinator SIGKILLed and resumed")
        #expect((try Self.farm(resumed)["replayedSegments"] as? Int ?? 0) > 0)
    }

    @Test("SIGTERM: a worker drains and leaves, the coordinator stops with exit 75 and --resume finishes the same draws")
    func termination() throws {
        let (dir, job) = try Self.workspace("sigterm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        let reference = dir.appendingPathComponent("one").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache, "--quiet"])
        try #require(r1.status == 0, "\(r1.stderr)")

        let port = Self.freePort()
        let out = dir.appendingPathComponent("run").path
        let args = ["coordinator", job, "--bind", "tcp://127.0.0.1:\(port)", "-o", out, "--segment", "25", "--heartbeat", "0.5"]
        let log = dir.appendingPathComponent("coordinator.log").path
        let coordinator = try CommandRunner.start(args, log: log)
        let workers = try (1...2).map {
            try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--cache", cache, "--name", "t-\($0)", "--heartbeat", "0.5"],
                                    log: dir.appendingPathComponent("worker-\($0).log").path)
        }
        let journal = out + "/journal.pfj"
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && ((try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0) < 30_000 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(workers[0].processIdentifier, SIGTERM)
        let t0 = Date()
        #expect(CommandRunner.wait(workers[0], timeout: 30) == 0, "a drained worker exits 0")
        #expect(Date().timeIntervalSince(t0) < 25, "it leaves within its drain time")
        #expect(coordinator.isRunning, "the job goes on with the other worker")

        kill(coordinator.processIdentifier, SIGTERM)
        #expect(CommandRunner.wait(coordinator, timeout: 30) == 75, "exit 75 (EX_TEMPFAIL): stopped, resumable")
        #expect(CommandRunner.wait(workers[1], timeout: 30) == 0, "the coordinator told its worker the job is over")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("worker left: t-1 leaves: SIGTERM"), "the coordinator saw the worker leave: \(text.suffix(800))")
        #expect(text.contains("stopped by SIGTERM") && text.contains("--resume"), "\(text.suffix(400))")
        #expect(!FileManager.default.fileExists(atPath: out + "/summary.json"))

        let port2 = Self.freePort()
        let again = try CommandRunner.start(["coordinator", job, "--bind", "tcp://127.0.0.1:\(port2)", "-o", out, "--segment", "25", "--resume", "--quiet"],
                                            log: dir.appendingPathComponent("resume.log").path)
        let worker = try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port2)", "--cache", cache, "--quiet"],
                                             log: dir.appendingPathComponent("worker-3.log").path)
        #expect(CommandRunner.wait(again, timeout: 240) == 0)
        CommandRunner.wait(worker, timeout: 20)
        try Self.expectIdentical(reference, out, "coordinator stopped by SIGTERM and resumed")
        #expect((try Self.farm(out)["replayedSegments"] as? Int ?? 0) > 0)
    }

    @Test("SIGTERM during a segment longer than the drain time: the worker abandons it at once and exits 0 (no crash under BLAS)")
    func drainOutlasted() throws {
        // One NUTS segment of the whole run, far longer than --drain 0.5: the worker must
        // stop it part-way. Before, it exited under the running segment and OpenBLAS's exit
        // handlers crashed it (SIGSEGV, "Bad pointer dereference").
        let (dir, job) = try Self.workspace("outlasted", warmup: 3000, draws: 3000, method: "nuts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = Self.freePort()
        let out = dir.appendingPathComponent("run").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", "tcp://127.0.0.1:\(port)", "-o", out,
                                                   "--segment", "6000", "--heartbeat", "0.5", "--quiet"],
                                                  log: dir.appendingPathComponent("coordinator.log").path)
        let status = dir.appendingPathComponent("worker.status").path
        let workerLog = dir.appendingPathComponent("worker.log").path
        let worker = try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--cache", dir.appendingPathComponent("cache").path,
                                              "--heartbeat", "0.5", "--drain", "0.5", "--status", status], log: workerLog)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && !((try? String(contentsOfFile: status, encoding: .utf8))?.contains("\"running\"") ?? false) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 1)
        kill(worker.processIdentifier, SIGTERM)
        let t0 = Date()
        let code = CommandRunner.wait(worker, timeout: 30)
        let text = (try? String(contentsOfFile: workerLog, encoding: .utf8)) ?? ""
        #expect(code == 0, "the worker exits 0: \(text.suffix(1500))")
        #expect(Date().timeIntervalSince(t0) < 10, "it leaves soon after its drain time")
        #expect(!text.contains("crashed") && !text.contains("did not stop"), "\(text.suffix(1500))")
        kill(coordinator.processIdentifier, SIGTERM)
        #expect(CommandRunner.wait(coordinator, timeout: 30) == 75)
    }

    @Test("a flipped byte in the middle of the journal: --resume says what it skipped, keeps the records after it, and the draws are the same")
    func damagedJournal() throws {
        let (dir, job) = try Self.workspace("damaged")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        let reference = dir.appendingPathComponent("one").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache, "--quiet"])
        try #require(r1.status == 0, "\(r1.stderr)")

        let out = dir.appendingPathComponent("run").path
        let journal = out + "/journal.pfj"
        let run = try CommandRunner.start(["run", job, "--workers", "1", "-o", out, "--cache", cache, "--segment", "25", "--quiet"],
                                          log: dir.appendingPathComponent("run.log").path)
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && ((try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0) < 60_000 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(run.processIdentifier, SIGTERM)
        #expect(CommandRunner.wait(run, timeout: 30) == 75)
        // Records start with the sync word "PFR2"; damage the payload of the third segment's.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: journal)))
        let sync = Array("PFR2".utf8)
        let starts = (0..<(bytes.count - 4)).filter { Array(bytes[$0..<($0 + 4)]) == sync }
        try #require(starts.count >= 6, "\(starts.count) records")
        bytes[starts[3] + 200] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: journal))

        let resumed = try CommandRunner.run(["run", job, "--workers", "1", "-o", out, "--cache", cache, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("damaged record at byte \(starts[3])") && resumed.stderr.contains("valid records after it kept"),
                "\(resumed.stderr)")
        try Self.expectIdentical(reference, out, "a damaged journal record recomputed")
        let replayed = try Self.farm(out)["replayedSegments"] as? Int ?? 0
        #expect(replayed >= starts.count - 2, "the records after the damaged one were replayed, not recomputed: \(replayed) of \(starts.count - 2)")
    }

    @Test("worker --wait outlives a coordinator stopped by SIGTERM and serves its --resume (bound to localhost)")
    func waitingWorker() throws {
        let (dir, job) = try Self.workspace("wait")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        let reference = dir.appendingPathComponent("one").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache, "--quiet"])
        try #require(r1.status == 0, "\(r1.stderr)")

        let port = Self.freePort()
        let endpoint = "tcp://localhost:\(port)"  // a host name binds too (libzmq binds addresses)
        let out = dir.appendingPathComponent("run").path
        let args = ["coordinator", job, "--bind", endpoint, "-o", out, "--segment", "25", "--heartbeat", "0.5", "--quiet"]
        let first = try CommandRunner.start(args, log: dir.appendingPathComponent("first.log").path)
        let workerLog = dir.appendingPathComponent("worker.log").path
        let worker = try CommandRunner.start(["worker", "--connect", endpoint, "--cache", cache, "--heartbeat", "0.5", "--wait"], log: workerLog)
        defer { kill(worker.processIdentifier, SIGKILL) }
        let journal = out + "/journal.pfj"
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && ((try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0) < 30_000 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(first.processIdentifier, SIGTERM)
        #expect(CommandRunner.wait(first, timeout: 30) == 75)
        Thread.sleep(forTimeInterval: 1)
        #expect(worker.isRunning, "the worker waits for the next coordinator")
        let second = try CommandRunner.start(args + ["--resume"], log: dir.appendingPathComponent("second.log").path)
        #expect(CommandRunner.wait(second, timeout: 240) == 0, "the waiting worker finished the resumed job")
        try Self.expectIdentical(reference, out, "resumed with a waiting worker")
        Thread.sleep(forTimeInterval: 1)
        #expect(worker.isRunning, "and waits again")
        kill(worker.processIdentifier, SIGTERM)
        #expect(CommandRunner.wait(worker, timeout: 30) == 0)
        let text = (try? String(contentsOfFile: workerLog, encoding: .utf8)) ?? ""
        #expect(text.contains("waiting for the next coordinator"), "\(text.suffix(1000))")
    }

    @Test("out of space is exit 74, in the journal as in the outputs, with one line naming the file")
    func outOfSpace() throws {
        let (dir, job) = try Self.workspace("nospace")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        // The journal (latent draws, ~0.3 MB) fits in 2 MB, samples.npy (784 pixels a draw, 15 MB) does not; in 100 KB nothing does.
        for (size, file) in [("100k", "journal.pfj"), ("2m", "samples.npy")] {
            let mountPoint = dir.appendingPathComponent("small-\(size)").path
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let mount = Process()
            mount.executableURL = URL(fileURLWithPath: "/bin/mount")
            mount.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint]
            try mount.run()
            mount.waitUntilExit()
            try #require(mount.terminationStatus == 0, "mounting a \(size) tmpfs (the tests run as root, as CI does)")
            defer {
                let umount = Process()
                umount.executableURL = URL(fileURLWithPath: "/bin/umount")
                umount.arguments = [mountPoint]
                try? umount.run()
                umount.waitUntilExit()
            }
            let r = try CommandRunner.run(["run", job, "--workers", "1", "-o", mountPoint + "/run", "--cache", cache, "--quiet"])
            #expect(r.status == 74, "\(size): \(r.stderr)")
            #expect(r.stderr.contains(file) && r.stderr.contains("No space left"), "\(size): \(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(size): \(r.stderr)")
        }
    }

    @Test("the coordinator serves Prometheus metrics on --metrics-bind and writes --metrics-file")
    func metrics() throws {
        let (dir, job) = try Self.workspace("metrics")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = Self.freePort(), metricsPort = Self.freePort()
        let out = dir.appendingPathComponent("run").path, file = dir.appendingPathComponent("farm.prom").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", "tcp://127.0.0.1:\(port)", "-o", out, "--segment", "25",
                                                   "--metrics-bind", "127.0.0.1:\(metricsPort)", "--metrics-file", file, "--quiet"],
                                                  log: dir.appendingPathComponent("coordinator.log").path)
        defer { kill(coordinator.processIdentifier, SIGKILL) }
        let worker = try CommandRunner.start(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--cache", dir.appendingPathComponent("cache").path],
                                             log: dir.appendingPathComponent("worker.log").path)
        var scraped = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && coordinator.isRunning {
            scraped = Self.httpGet(port: metricsPort, path: "/metrics")
            if scraped.contains("probefarm_workers{job=\"bag-metrics\"} 1.0"), !scraped.contains("probefarm_segments_done_total{job=\"bag-metrics\"} 0\n") { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(scraped.contains("# TYPE probefarm_segments_done_total counter"), "\(scraped.prefix(600))")
        #expect(scraped.contains("probefarm_workers{job=\"bag-metrics\"} 1.0"), "\(scraped.prefix(2000))")
        #expect(!scraped.contains("probefarm_segments_done_total{job=\"bag-metrics\"} 0\n"), "segments counted while running")
        for name in ["probefarm_segments_in_flight", "probefarm_draws_per_second", "probefarm_eta_seconds", "probefarm_max_rhat",
                     "probefarm_rejected_results_total", "probefarm_verified_segments_total", "probefarm_reassigned_total"] {
            #expect(scraped.contains(name + "{job=\"bag-metrics\"}"), "\(name) missing")
        }
        #expect(Self.httpGet(port: metricsPort, path: "/").hasPrefix("HTTP/1.1 404"))
        #expect(CommandRunner.wait(coordinator, timeout: 120) == 0)
        CommandRunner.wait(worker, timeout: 20)
        let written = try String(contentsOfFile: file, encoding: .utf8)
        let segments = try Self.farm(out)["segments"] as? Int ?? -1
        #expect(written.contains("probefarm_segments_done_total{job=\"bag-metrics\"} \(segments)\n"), "\(segments): \(written.prefix(3000))")
    }

    /// The body of a plain HTTP GET on loopback (headers included), or "" on failure.
    static func httpGet(port: Int, path: String) -> String {
        guard let fd = connectLoopback(port: port) else { return "" }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response = [UInt8](), buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test("a job with a stop rule ends when converged and says why")
    func stopRule() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-farm-stop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reg = SmallModels.linear([0.8, -0.5, 0.3], bias: 0.2)
        try Model.save(reg, architecture: Architecture(input: [3], output: .value, layers: [LayerSpec.linear("weight", bias: "bias")]),
                       to: dir.appendingPathComponent("reg.safetensors").path)
        let job = dir.appendingPathComponent("job.yaml").path
        try """
            name: stop
            seed: 11
            models: {reg: reg.safetensors}
            space:
              data: {dimension: 3, lower: [0, -3, -3], upper: [1, 3, 3]}
            probe:
              - fixed-value: {model: reg, value: 1.0}
            sampler: {method: mala, warmup: 200, draws: 50, batch: 2}
            chains: 4
            stop: {rhat: 1.02, ess-bulk: 300, ess-tail: 300, max-draws: 51200}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "--workers", "2", "-o", out, "--cache", dir.appendingPathComponent("cache").path, "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        let s = try Self.summary(out)
        let reason = try #require(s["stop_reason"] as? String)
        #expect(reason.hasPrefix("converged"), "\(reason)")
        #expect(r.stdout.contains("stopped: converged"))
        let n = try #require(s["draws_per_chain"] as? Int)
        #expect(n < 51200 && n > 50, "ended early, after extending, at \(n) draws per chain")
        let diagnostics = try #require(s["diagnostics"] as? [String: Any])
        #expect((diagnostics["max_rhat"] as? Double ?? 9) < 1.02)
        // One verdict: the coordinator's reason, summary.json and the printed line carry the same figures.
        #expect(s["converged"] as? Bool == true)
        let maxR = try #require(diagnostics["max_rhat"] as? Double), bulk = try #require(diagnostics["min_ess_bulk"] as? Double)
        let tail = try #require(diagnostics["min_ess_tail"] as? Double)
        #expect(reason.contains("max R-hat \(String(format: "%.4f", maxR))"), "\(reason) vs \(maxR)")
        #expect(reason.contains("min ESS bulk \(String(format: "%.4g", bulk))") && reason.contains("tail \(String(format: "%.4g", tail))"),
                "\(reason) vs \(bulk), \(tail)")
        #expect(r.stdout.contains("converged: max R-hat \(String(format: "%.4f", maxR)), min ESS bulk \(String(format: "%.0f", bulk)), tail \(String(format: "%.0f", tail))"),
                "\(r.stdout)")
        #expect(!r.stdout.contains("NOT converged"))
    }

    @Test("a non-loopback bind without keys is refused, and says why")
    func insecureBind() throws {
        let (dir, job) = try Self.workspace("insecure")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CommandRunner.run(["coordinator", job, "--bind", "tcp://*:5555", "-o", dir.appendingPathComponent("run").path])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--keys") && r.stderr.contains("--insecure"), "\(r.stderr)")
    }
}
