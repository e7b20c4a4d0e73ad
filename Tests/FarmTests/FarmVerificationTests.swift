import ChainFarm
import FarmWire
import FarmZeroMQ
import Foundation
import Probes
import ProbeFarmTesting
import TensorCore
import Testing

/// Verified results: a worker that computes honestly but for one segment, whose draws it
/// alters where no consistency check can see (a draw in the middle), is caught by the
/// second computation, dropped, and its unverified segments are computed again: the
/// merged draws are byte-identical to an undisturbed run.
@Suite(.serialized)
struct FarmVerificationTests {
    @Test("a worker that corrupts one segment is caught by verification; its segments are recomputed and the draws are the undisturbed ones")
    func corruptingWorker() throws {
        let (dir, job, cache, reference) = try FarmProcessTests.referenceRun("verify", warmup: 50, draws: 300)
        defer { try? FileManager.default.removeItem(at: dir) }

        let port = FarmProcessTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let out = dir.appendingPathComponent("run").path
        let log = dir.appendingPathComponent("coordinator.log").path
        let coordinator = try CommandRunner.start(["coordinator", job, "--bind", endpoint, "-o", out, "--segment", "50",
                                                   "--heartbeat", "0.5", "--liveness", "10", "--verify", "1", "--verbose"], log: log)
        defer { kill(coordinator.processIdentifier, SIGKILL) }
        // The corrupting worker: runs every segment it is given with the real code, and
        // alters one draw in the middle of its third result.
        let context = ZMQContext()
        let rogue = try DealerTransport(connect: endpoint, routingID: Array("corrupt".utf8), context: context)
        defer { rogue.close() }
        func send(_ m: WireMessage) throws {
            let deadline = Date().addingTimeInterval(10)
            while try !rogue.send(WireCodec.encode(m)) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        let work = SegmentWork(plan: try JobPlan(try Job.load(job)))
        try send(.ready(Ready(name: "corrupt", host: "here", pid: 1, session: "s1", capacity: 1, cached: [], probefarm: "0",
                              blas: "\(BLAS.coreName)/1")))
        var worker: Process?
        var results = 0, dropped = false, corrupted = false
        let deadline = Date().addingTimeInterval(240)
        while coordinator.isRunning && Date() < deadline && !dropped {
            try send(.heartbeat)
            guard let frames = try rogue.receive(timeout: 0.2), let message = try? WireCodec.decode(frames) else { continue }
            switch message {
            case .assign(let a):
                var r = try work.run(a)
                results += 1
                if results == 3, r.header.draws > 2 {
                    r.positions[r.header.dimension] += 1e-6  // chain 0's second draw
                    corrupted = true
                }
                try send(.result(r))
                if worker == nil {
                    worker = try CommandRunner.start(["worker", "--connect", endpoint, "--cache", cache, "--name", "honest", "--heartbeat", "0.5"],
                                                     log: dir.appendingPathComponent("worker.log").path)
                }
            case .failure(let f) where f.kind == "dropped":
                dropped = true
            case .done:
                break
            default:
                continue
            }
        }
        let status = CommandRunner.wait(coordinator, timeout: 120)
        if let worker { CommandRunner.wait(worker, timeout: 20) }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(corrupted, "the rogue corrupted a segment (\(results) results)")
        try #require(status == 0, "\(text.suffix(2000))")
        #expect(dropped, "the corrupting worker was told it is dropped")
        try FarmProcessTests.expectIdentical(reference, out, "a corrupting worker")
        let farm = try FarmProcessTests.farm(out)
        #expect(farm["faultyWorkers"] as? Int == 1, "\(farm)")
        #expect((farm["discardedSegments"] as? Int ?? 0) >= 1, "\(farm)")
        #expect((farm["verifiedSegments"] as? Int ?? 0) >= 2, "\(farm)")
        #expect(text.contains("corrupt is faulty"), "\(text.suffix(2000))")

        // --resume replays the journal with its rollback records to the same draws.
        let resumed = dir.appendingPathComponent("resumed").path
        try FileManager.default.createDirectory(atPath: resumed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: out + "/journal.pfj", toPath: resumed + "/journal.pfj")
        let again = try CommandRunner.run(["run", job, "--workers", "1", "-o", resumed, "--cache", cache, "--resume", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        try FarmProcessTests.expectIdentical(reference, resumed, "resumed over rollback records")
    }
}
