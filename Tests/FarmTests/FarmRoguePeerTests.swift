import ChainFarm
import FarmWire
import FarmZeroMQ
import Foundation
import Probes
import ProbeFarmTesting
import Testing

/// A peer that speaks the protocol but not honestly: it joins, then sends a forged
/// result, a result for a range it was never given, one from a peer that never joined,
/// an error meant to end the job, and then hoards segments without ever answering. The
/// coordinator must refuse every one of them, reassign what the rogue held, drop it for
/// missing deadlines, and finish with draws byte-identical to an undisturbed run.
@Suite(.serialized)
struct FarmRoguePeerTests {
    @Test("forged, unassigned and stray results are refused; an error ends only the rogue's segment; a hoarding peer is dropped")
    func roguePeer() throws {
        let (dir, job) = try FarmProcessTests.workspace("rogue", warmup: 20, draws: 200)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        let reference = dir.appendingPathComponent("reference").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", reference, "--cache", cache, "--quiet", "--segment", "50"])
        try #require(r1.status == 0, "\(r1.stderr)")

        let port = FarmProcessTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let out = dir.appendingPathComponent("run").path
        let log = dir.appendingPathComponent("coordinator.log").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", endpoint, "-o", out, "--segment", "50",
                                                   "--heartbeat", "0.5", "--min-deadline", "2", "--verbose"], log: log)
        defer { kill(coordinator.processIdentifier, SIGKILL) }
        let context = ZMQContext()
        let rogue = try DealerTransport(connect: endpoint, routingID: Array("rogue".utf8), context: context)
        defer { rogue.close() }
        func send(_ t: DealerTransport, _ m: WireMessage) throws {
            let deadline = Date().addingTimeInterval(10)
            while try !t.send(WireCodec.encode(m)) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        var assignments = [Assignment]()
        func listen(_ seconds: Double) throws {
            let until = Date().addingTimeInterval(seconds)
            while Date() < until {
                if let frames = try rogue.receive(timeout: 0.1), case .assign(let a)? = try? WireCodec.decode(frames) { assignments.append(a) }
            }
        }
        try send(rogue, .ready(Ready(name: "rogue", host: "nowhere", pid: 1, session: "s1", capacity: 1000, cached: [],
                                     probefarm: "0", blas: "none")))
        let joined = Date().addingTimeInterval(20)
        while assignments.count < 2 && Date() < joined { try send(rogue, .heartbeat); try listen(0.3) }
        try #require(assignments.count >= 2, "the rogue was given both groups")

        // The true result of group 0's first segment, computed here, then forged.
        let plan = try JobPlan(try Job.load(job))
        let first = try #require(assignments.first { $0.group == 0 })
        let truth = try SegmentWork(plan: plan).run(first)
        var forged = truth
        forged.positions = [Double](repeating: 0.5, count: truth.positions.count)
        try send(rogue, .result(forged))
        var unassigned = truth
        unassigned.header.firstIteration = 50
        try send(rogue, .result(unassigned))
        // A peer that never sent READY offers the true result.
        let stray = try DealerTransport(connect: endpoint, routingID: Array("stray".utf8), context: context)
        defer { stray.close() }
        try send(stray, .result(truth))
        try listen(1)
        // An error meant to end the job.
        try send(rogue, .failure(WireFailure(kind: "job", message: "x")))
        try listen(0.5)

        // An honest worker joins; the rogue stays, heartbeating, taking segments, answering none.
        let worker = try CommandRunner.start(["worker", "--connect", endpoint, "--cache", cache, "--name", "honest", "--heartbeat", "0.5"],
                                             log: dir.appendingPathComponent("worker.log").path)
        var refusal: WireFailure?
        let deadline = Date().addingTimeInterval(150)
        while coordinator.isRunning && Date() < deadline {
            try send(rogue, .heartbeat)
            if let frames = try rogue.receive(timeout: 0.3), case .failure(let f)? = try? WireCodec.decode(frames), f.kind == "dropped" { refusal = f }
        }
        let status = CommandRunner.wait(coordinator, timeout: 5)
        CommandRunner.wait(worker, timeout: 20)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(status == 0, "the job finishes: \(text.suffix(2000))")
        try FarmProcessTests.expectIdentical(reference, out, "with a rogue peer")
        let farm = try FarmProcessTests.farm(out)
        #expect((farm["rejectedResults"] as? Int ?? 0) >= 3, "forged, unassigned and stray results: \(farm)")
        #expect((farm["failedSegments"] as? Int ?? 0) == 1, "the rogue's error: \(farm)")
        #expect((farm["overdueSegments"] as? Int ?? 0) >= 3, "the hoarded segments: \(farm)")
        #expect((farm["droppedWorkers"] as? Int ?? 0) == 1, "\(farm)")
        #expect(refusal != nil, "the rogue was told it is dropped")
        #expect(text.contains("not the segment it was given") || text.contains("last draw is not its checkpoint"), "\(text.suffix(2000))")
        #expect(text.contains("which it was not computing") && text.contains("not a worker of this job"), "\(text.suffix(2000))")
    }
}
