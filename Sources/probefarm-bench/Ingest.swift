import ChainFarm
import FarmWire
import FarmZeroMQ
import Foundation
import Samplers
import TensorCore

/// Coordinator ingest: one process plays the coordinator's receive path (decode and
/// validate every message, journal each segment result with fsync, answer heartbeats);
/// a second process holds `connections` DEALER sockets and sends realistic segment
/// results (4 chains × 100 draws × 784 doubles), then heartbeats from every connection
/// once a second. Prints MB/s, draws/s, CPU per message and the heartbeats' share of a core.
enum IngestBenchmark {
    static func raiseFileLimit() {
        var l = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &l)
        l.rlim_cur = l.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &l)
    }

    static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func result(chains: Int = 4, draws: Int = 100, dimension: Int = 784, group: Int) -> [[UInt8]] {
        var g = SplitMix64(seed: UInt64(group))
        let cps = (0..<chains).map { c in
            ChainCheckpoint(chain: c, iteration: 100, state: ChainState(position: (0..<dimension).map { _ in Double(g.nextNormal()) }, logDensity: -1,
                                                                        gradient: (0..<dimension).map { _ in Double(g.nextNormal()) }),
                            stepSize: 0.1, adaptation: WarmupAdaptation(initialStep: 0.1, targetAcceptance: 0.574))
        }
        let n = chains * draws
        let h = SegmentResult.Header(job: "bench", group: group, chains: Array(0..<chains), firstIteration: 0, length: draws,
                                     draws: draws, firstDraw: 0, dimension: dimension, checkpoints: cps, seconds: 1)
        return WireCodec.encode(.result(SegmentResult(header: h, positions: (0..<(n * dimension)).map { _ in Double(g.nextNormal()) },
                                                      logAcceptance: Array(repeating: -0.5, count: n), acceptance: Array(repeating: 0.6, count: n),
                                                      stepSize: Array(repeating: 0.1, count: n), divergent: Array(repeating: 0, count: n))))
    }

    static func coordinator(connections: Int, results: Int, heartbeatSeconds: Double, directory: String) throws {
        raiseFileLimit()
        let transport = try RouterTransport(bind: "tcp://127.0.0.1:*", context: ZMQContext(maxSockets: 8192))
        let journalPath = directory + "/ingest-journal.pfj"
        try? FileManager.default.removeItem(atPath: journalPath)
        let journal = try Journal.create(at: journalPath, header: Journal.Header(jobSHA256: "bench", jobFile: "-", segment: 100, chains: 4, batch: 4))
        let load = Process()
        load.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        load.arguments = ["ingest-load", transport.endpoint, String(connections), String(results), String(heartbeatSeconds)]
        try load.run()

        var bytes = 0, received = 0, draws = 0, peers = Set<[UInt8]>()
        var started: Date? = nil, cpu0 = 0.0
        while received < results {
            guard let (peer, frames) = try transport.receive(timeout: 1) else { continue }
            if started == nil { started = Date(); cpu0 = threadCPU() }
            peers.insert(peer)
            guard case .result(let r) = try WireCodec.decode(frames) else { continue }
            try journal.append(frames)
            bytes += frames.reduce(0) { $0 + $1.count }
            draws += r.header.chains.count * r.header.draws
            received += 1
        }
        let seconds = Date().timeIntervalSince(started!), cpu = threadCPU() - cpu0
        print(String(format: "ingest: %d results from %d connections: %.0f MB/s, %.0f draws/s of %d-d draws, %.2f ms coordinator CPU per result (decode, validate, journal + fsync)",
                     received, peers.count, Double(bytes) / seconds / 1e6, Double(draws) / seconds, 784, cpu / Double(received) * 1e3))

        // Heartbeats: every connection once a second both ways, for heartbeatSeconds.
        var beats = 0
        let hb = WireCodec.encode(.heartbeat)
        let h0 = Date(), c0 = threadCPU()
        var lastSent = Date.distantPast
        while Date().timeIntervalSince(h0) < heartbeatSeconds {
            if let (peer, frames) = try transport.receive(timeout: 0.05) {
                if case .heartbeat = try WireCodec.decode(frames) { beats += 1 }
                peers.insert(peer)
            }
            if Date().timeIntervalSince(lastSent) >= 1 {
                lastSent = Date()
                for p in peers { _ = try transport.send(hb, to: p) }
            }
        }
        let hcpu = threadCPU() - c0, hs = Date().timeIntervalSince(h0)
        print(String(format: "ingest: heartbeats: %d received from %d connections in %.1f s (and one sent to each per second): %.1f%% of a core, %.1f µs per heartbeat",
                     beats, peers.count, hs, hcpu / hs * 100, hcpu / Double(max(beats, 1)) * 1e6))
        load.terminate()
        load.waitUntilExit()
        transport.close()
    }

    static func load(endpoint: String, connections: Int, results: Int, heartbeatSeconds: Double) throws {
        raiseFileLimit()
        let context = ZMQContext(maxSockets: 8192)
        let sockets = try (0..<connections).map { i in
            try DealerTransport(connect: endpoint, routingID: Array("load-\(i)".utf8), context: context)
        }
        let payloads = (0..<8).map { result(group: $0) }
        var sent = 0
        while sent < results {
            let s = sockets[sent % connections]
            if try s.send(payloads[sent % payloads.count]) { sent += 1 } else { usleep(1000) }
        }
        // Heartbeats: each connection once a second; drain what the coordinator sends.
        let hb = WireCodec.encode(.heartbeat)
        let end = Date().addingTimeInterval(heartbeatSeconds + 5)
        while Date() < end {
            let round = Date()
            for s in sockets {
                _ = try s.send(hb)
                while try s.receive(timeout: 0) != nil {}
            }
            let rest = 1 - Date().timeIntervalSince(round)
            if rest > 0 { usleep(UInt32(rest * 1e6)) }
        }
    }
}
