import FarmWire
import FarmZeroMQ
import Foundation
import ProbeFarmTesting
import Testing

/// CURVE with a ZAP allow-list, and a coordinator that survives hostile input: a worker
/// whose key is not on the list gets nothing; random bytes, random and truncated frames,
/// an oversized message and another protocol version are counted, never fatal.
@Suite(.serialized)
struct FarmSecurityTests {
    @Test("intruders and garbage are refused and counted; the job still finishes")
    func hostilePeers() throws {
        let (dir, job) = try FarmProcessTests.workspace("security")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys").path, other = dir.appendingPathComponent("other-keys").path
        #expect(try CommandRunner.run(["keys", "generate", keys]).status == 0)
        #expect(try CommandRunner.run(["keys", "generate", other]).status == 0)
        let secret = try FileManager.default.attributesOfItem(atPath: keys + "/coordinator.key")[.posixPermissions] as? Int
        #expect(secret == 0o600)
        // The intruder has a valid key pair that is not on the allow-list, and the coordinator's public key.
        try FileManager.default.removeItem(atPath: other + "/coordinator.pub")
        try FileManager.default.copyItem(atPath: keys + "/coordinator.pub", toPath: other + "/coordinator.pub")

        let port = FarmProcessTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let out = dir.appendingPathComponent("run").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", endpoint, "-o", out, "--keys", keys,
                                                   "--max-message-mib", "1", "--heartbeat", "0.5"],
                                                  log: dir.appendingPathComponent("coordinator.log").path)
        let intruderCache = dir.appendingPathComponent("intruder-cache").path
        let intruder = try CommandRunner.start(["worker", "--connect", endpoint, "--keys", other, "--cache", intruderCache,
                                                "--name", "intruder", "--verbose"], log: dir.appendingPathComponent("intruder.log").path)
        defer {
            kill(intruder.processIdentifier, SIGKILL)
            kill(coordinator.processIdentifier, SIGKILL)
        }
        Thread.sleep(forTimeInterval: 1)

        // Random bytes on the raw TCP port (no ZMTP greeting).
        for _ in 0..<3 { Self.sendRaw(port: port, bytes: (0..<4096).map { _ in UInt8.random(in: 0...255) }) }
        // A DEALER without CURVE: its handshake fails.
        let context = ZMQContext()
        let plain = try DealerTransport(connect: endpoint, routingID: Array("plain".utf8), context: context)
        _ = try plain.send(WireCodec.encode(.heartbeat))
        // An authorised key sending garbage at the message level.
        let pair = CurveKeyPair(publicKey: try Self.read(keys, "worker.pub"), secretKey: try Self.read(keys, "worker.key"))
        let security = CurveSecurity(keys: pair, serverKey: try Self.read(keys, "coordinator.pub"))
        let rogue = try DealerTransport(connect: endpoint, routingID: Array("rogue".utf8), security: security, context: context)
        func sendSoon(_ frames: [[UInt8]]) throws {
            let deadline = Date().addingTimeInterval(10)
            while try !rogue.send(frames) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        try sendSoon(WireCodec.encode(.heartbeat, version: 99))
        let refusal = try Self.receive(rogue, timeout: 30)
        guard case .failure(let f)? = refusal.flatMap({ try? WireCodec.decode($0) }) else {
            Issue.record("no refusal for protocol version 99")
            return
        }
        #expect(f.kind == "protocol" && f.message.contains("version 99"), "\(f.message)")
        for _ in 0..<5 { try sendSoon((0..<3).map { _ in (0..<100).map { _ in UInt8.random(in: 0...255) } }) }
        var truncated = WireCodec.encode(.result(FarmWireTests.sampleResult()))
        truncated[1].removeLast(16)
        try sendSoon(truncated)
        try sendSoon([Array(#"{"protocol":2,"type":"result","body":{"job":"x"}}"#.utf8)] + truncated.dropFirst())
        // Larger than --max-message-mib 1: libzmq drops the connection.
        try sendSoon([[UInt8](repeating: 7, count: 3 << 20)])
        Thread.sleep(forTimeInterval: 0.5)

        // A real, authorised worker does the job meanwhile.
        let worker = try CommandRunner.start(["worker", "--connect", endpoint, "--keys", keys, "--cache", dir.appendingPathComponent("cache").path,
                                              "--name", "honest", "--heartbeat", "0.5"], log: dir.appendingPathComponent("worker.log").path)
        let status = CommandRunner.wait(coordinator, timeout: 120)
        CommandRunner.wait(worker, timeout: 20)
        func log(_ name: String) -> String { (try? String(contentsOfFile: dir.appendingPathComponent(name).path, encoding: .utf8)) ?? "" }
        try #require(status == 0, "coordinator: \(log("coordinator.log"))\nworker: \(log("worker.log"))")
        kill(intruder.processIdentifier, SIGTERM)
        CommandRunner.wait(intruder, timeout: 10)
        plain.close()
        rogue.close()

        let farm = try FarmProcessTests.farm(out)
        #expect(farm["workers"] as? [String] == ["honest"])
        #expect((farm["zapDenied"] as? Int ?? 0) >= 1, "the intruder was refused by the allow-list: \(farm)")
        #expect((farm["refusedConnections"] as? Int ?? 0) >= 3, "raw bytes and the plain DEALER failed their handshakes: \(farm)")
        #expect((farm["rejectedMessages"] as? Int ?? 0) >= 8, "version, random and truncated messages: \(farm)")
        #expect((farm["droppedConnections"] as? Int ?? 0) >= 1, "the oversized message's connection: \(farm)")
        // The intruder received nothing: no job, no file.
        let fetched = (try? FileManager.default.contentsOfDirectory(atPath: intruderCache)) ?? []
        #expect(fetched.isEmpty, "\(fetched)")
        let log = try String(contentsOfFile: dir.appendingPathComponent("intruder.log").path, encoding: .utf8)
        #expect(!log.contains("fetching"))
        #expect(FileManager.default.fileExists(atPath: out + "/samples.npy"))
    }

    @Test("refused workers leave: a key not on the allow-list, no key, or the wrong coordinator key exit 69 with one line saying why")
    func refusedWorkersLeave() throws {
        let (dir, job) = try FarmProcessTests.workspace("refused")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys").path, other = dir.appendingPathComponent("other").path
        #expect(try CommandRunner.run(["keys", "generate", keys]).status == 0)
        #expect(try CommandRunner.run(["keys", "generate", other]).status == 0)
        // "stranger": its own pair, the right coordinator.pub; "wrong-server": an admitted worker key, another coordinator.pub.
        let stranger = dir.appendingPathComponent("stranger").path, wrongServer = dir.appendingPathComponent("wrong-server").path
        for d in [stranger, wrongServer] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        for f in ["worker.key", "worker.pub"] { try FileManager.default.copyItem(atPath: other + "/" + f, toPath: stranger + "/" + f) }
        try FileManager.default.copyItem(atPath: keys + "/coordinator.pub", toPath: stranger + "/coordinator.pub")
        for f in ["worker.key", "worker.pub"] { try FileManager.default.copyItem(atPath: keys + "/" + f, toPath: wrongServer + "/" + f) }
        try FileManager.default.copyItem(atPath: other + "/coordinator.pub", toPath: wrongServer + "/coordinator.pub")

        let port = FarmProcessTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", endpoint, "-o", dir.appendingPathComponent("run").path,
                                                   "--keys", keys, "--quiet"], log: dir.appendingPathComponent("coordinator.log").path)
        defer { kill(coordinator.processIdentifier, SIGKILL) }
        for (name, extra) in [("stranger", ["--keys", stranger]), ("wrong-server", ["--keys", wrongServer]), ("plain", [String]())] {
            let cache = dir.appendingPathComponent("cache-\(name)").path
            let t0 = Date()
            let r = try CommandRunner.run(["worker", "--connect", endpoint, "--cache", cache, "--name", name, "--quiet"] + extra)
            #expect(r.status == 69, "\(name): \(r.stderr)")
            #expect(r.stderr.contains("refused the connection"), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(name): \(r.stderr)")
            #expect(Date().timeIntervalSince(t0) < 30, "\(name) gave up soon")
        }
        #expect(coordinator.isRunning)
    }

    static func read(_ dir: String, _ name: String) throws -> String {
        try String(contentsOfFile: dir + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func receive(_ t: DealerTransport, timeout: Double) throws -> [[UInt8]]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let m = try t.receive(timeout: 0.1) { return m }
        }
        return nil
    }

    static func sendRaw(port: Int, bytes: [UInt8]) {
        guard let fd = FarmProcessTests.connectLoopback(port: port) else { return }
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(100_000)
    }
}
