import ChainFarm
import FarmWire
import FarmZeroMQ
import Foundation
import Probes
import ProbeFarmTesting
import TensorCore
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
        let (dir, job, cache, reference) = try FarmProcessTests.referenceRun("rogue", warmup: 20, draws: 200)
        defer { try? FileManager.default.removeItem(at: dir) }

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
        // Computed beside a heartbeat, so that a slow (loaded) machine does not make the rogue
        // look silent and lost before it has misbehaved.
        nonisolated(unsafe) var computed: Result<SegmentResult, any Error>?
        let computing = Thread { computed = Result { try SegmentWork(plan: plan).run(first) } }
        computing.start()
        while !computing.isFinished { try send(rogue, .heartbeat); try listen(0.3) }
        let truth = try #require(computed).get()
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

    /// Stateful fuzzing of the coordinator's port: a peer sends 600 messages drawn with a
    /// fixed seed — READYs with any capacity and session, results forged from a true one
    /// (other groups, ranges, lengths, draws; replays), errors, goodbyes, fetches of
    /// anything, garbage — while an honest worker runs the job. The job must end with the
    /// undisturbed draws.
    @Test("a peer sending 600 random protocol messages (fixed seed) cannot change the draws")
    func statefulFuzz() throws {
        let (dir, job, cache, reference) = try FarmProcessTests.referenceRun("fuzz", warmup: 20, draws: 200)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plan = try JobPlan(try Job.load(job))
        let truth = try SegmentWork(plan: plan).run(Assignment(job: plan.job.sha256, group: 0, chains: [0, 1, 2, 3], firstIteration: 0,
                                                               length: 50, checkpoints: nil))

        let port = FarmProcessTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let out = dir.appendingPathComponent("run").path
        let log = dir.appendingPathComponent("coordinator.log").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", endpoint, "-o", out, "--segment", "50",
                                                   "--heartbeat", "0.5", "--min-deadline", "2", "--verbose"], log: log)
        defer { kill(coordinator.processIdentifier, SIGKILL) }
        let worker = try CommandRunner.start(["worker", "--connect", endpoint, "--cache", cache, "--name", "honest", "--heartbeat", "0.5"],
                                             log: dir.appendingPathComponent("worker.log").path)
        let context = ZMQContext()
        let rogue = try DealerTransport(connect: endpoint, routingID: Array("fuzzer".utf8), context: context)
        defer { rogue.close() }
        var rng = SplitMix64(seed: 99)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        var sessions = ["a"]
        for _ in 0..<600 where coordinator.isRunning {
            var m: WireMessage? = nil
            var raw: [[UInt8]]? = nil
            switch pick(9) {
            case 0:
                if pick(3) == 0 { sessions.append("s\(pick(1000))") }
                m = .ready(Ready(name: "fuzzer", host: "h", pid: 1, session: sessions[pick(sessions.count)], capacity: [0, 1, 3, 1000, -5][pick(5)],
                                 cached: [], probefarm: "0", blas: "\(BLAS.coreName)/1"))
            case 1: m = .heartbeat
            case 2:
                var r = truth
                r.header.group = [0, 1, 2, -1, 7][pick(5)]
                r.header.firstIteration = [0, 50, 100, 150, 49, 1 << 40][pick(6)]
                if pick(2) == 0 { r.header.length = [1, 50, 0, 10_000][pick(4)] }
                if pick(2) == 0, !r.positions.isEmpty { r.positions[pick(r.positions.count)] += [1e-9, 1, .nan][pick(3)] }
                if pick(3) == 0 { r.header.checkpoints = Array(r.header.checkpoints.reversed()) }
                m = .result(r)
            case 3: m = .result(truth)
            case 4: m = .failure(WireFailure(kind: ["job", "segment", "protocol", "x"][pick(4)], message: "fuzz"))
            case 5: m = .done(reason: "fuzz")
            case 6: m = .fetch(FetchRequest(sha256: pick(2) == 0 ? String(repeating: "0", count: 64) : "zz", offset: [0, -1, 1 << 50][pick(3)],
                                            length: [1, 0, -7, 1 << 30][pick(4)]))
            case 7: raw = (0..<(1 + pick(3))).map { _ in (0..<pick(200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            default: m = .assign(Assignment(job: "x", group: 0, chains: [0], firstIteration: 0, length: 1, checkpoints: nil))
            }
            _ = try rogue.send(raw ?? WireCodec.encode(m!))
            while (try? rogue.receive(timeout: 0)) ?? nil != nil {}
            Thread.sleep(forTimeInterval: 0.01)
        }
        let status = CommandRunner.wait(coordinator, timeout: 180)
        CommandRunner.wait(worker, timeout: 20)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(status == 0, "\(text.suffix(2000))")
        try FarmProcessTests.expectIdentical(reference, out, "a fuzzing peer")
        let farm = try FarmProcessTests.farm(out)
        #expect((farm["rejectedResults"] as? Int ?? 0) + (farm["rejectedMessages"] as? Int ?? 0) > 50, "\(farm)")
    }
}
