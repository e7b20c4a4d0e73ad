import FarmWire
import Foundation
import NeuralModels
import Probes
import Samplers
import TensorCore

/// Verified results. The draws are a function of the job and the group alone, so any two
/// honest runs of a segment agree byte for byte: a share of accepted segments (and every
/// worker's first) is sent again to a second worker — with the same BLAS build where there
/// is one — and the two results compared. A mismatch is settled by the coordinator's own
/// run of the segment; the worker found wrong is dropped, and every segment of its not yet
/// verified is discarded, with whatever was built on it, and computed again (a rollback,
/// journaled). With no second worker the coordinator checks the segment itself.
extension Coordinator {
    /// A segment accepted from a worker and what it began from, for rollbacks.
    struct LedgerEntry {
        var firstIteration: Int
        var length: Int
        var input: [ChainCheckpoint]?
        /// Who computed it (nil: replayed from the journal, or read back after damage).
        var worker: [UInt8]? = nil
        var verified = true
    }

    /// An accepted segment being computed again.
    struct Check {
        var assignment: Assignment
        /// The accepted result, its digest, and its worker.
        var result: SegmentResult
        var digest: String
        var worker: [UInt8]
        var workerName: String
        /// Its OpenBLAS core type: only a run on the same kernels gives the same bytes.
        var core: String
        /// The second worker, when it was sent, and (after a mismatch) its digest.
        var verifier: [UInt8]? = nil
        var verifierName = ""
        var sent = Date.distantPast
        var verifierDigest: String? = nil
    }

    /// A rollback record in the journal: the group's draws from `iteration` on were discarded.
    struct Rollback: Codable {
        var rollback: Int
        var group: Int
        var iteration: Int

        static func decode(_ frames: [[UInt8]]) -> Rollback? {
            guard frames.count == 1, frames[0].first == UInt8(ascii: "{") else { return nil }
            return try? JSONDecoder().decode(Rollback.self, from: Data(frames[0]))
        }
    }

    /// The OpenBLAS core type of a READY's `blas` ("Haswell/1" → "Haswell").
    static func core(_ blas: String) -> String { String(blas.split(separator: "/").first ?? "") }

    static var coordinatorBLAS: String { BLAS.coreName }

    /// A result's digest: every byte of it but the worker's own timing.
    /// The header as canonical JSON (sorted keys: a JSON object's order varies from
    /// process to process), then the binary frames as sent.
    static func digest(_ r: SegmentResult) -> String {
        var header = r.header
        header.seconds = 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(header)).map(Array.init) ?? []
        return SHA256.hex(json + WireCodec.encode(.result(r)).dropFirst().flatMap { $0 })
    }

    /// Picks the segment for verification: the worker's first, and a share
    /// ``FarmSettings/verify`` of the others, chosen by (group, iteration).
    func pickForVerification(_ given: Assignment, result: SegmentResult, from id: [UInt8]) {
        guard settings.verify > 0, let peer = peers[id] else { return }
        var h = UInt64(truncatingIfNeeded: given.group) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: given.firstIteration) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        let picked = Double(h % 1_000_000) / 1_000_000 < settings.verify
        guard picked || !peer.checked else { return }
        peers[id]?.checked = true
        checks.append(Check(assignment: given, result: result, digest: Self.digest(result), worker: id, workerName: peer.ready.name,
                            core: Self.core(peer.ready.blas)))
    }

    /// Sends checks to second workers, runs them here when there is none, settles
    /// mismatches, and takes checks back from verifiers past their deadline.
    func advanceChecks(_ now: Date) throws {
        if let run = local, let outcome = run.outcome {
            local = nil
            guard let i = checks.firstIndex(where: { $0.assignment == run.assignment }) else { return }
            switch outcome {
            case .success(let mine): try settle(i, coordinator: mine)
            case .failure(let error):
                logger.warning("the coordinator could not run group \(run.assignment.group)'s segment to check it: \(error)")
                report.uncheckedSegments += 1
                checks.remove(at: i)
            }
        }
        var uncheckable = [Int]()
        for i in checks.indices where checks[i].verifier == nil && checks[i].verifierDigest == nil {
            let c = checks[i]
            let peersAlike = peers.filter { $0.key != c.worker && Self.core($0.value.ready.blas) == c.core }
            if let b = leastLoaded(excluding: [c.worker], where: { Self.core($0.ready.blas) == c.core }) {
                guard (try? transport.send(WireCodec.encode(.assign(c.assignment)), to: b)) == true else { continue }
                checks[i].verifier = b
                checks[i].verifierName = peers[b]?.ready.name ?? "?"
                checks[i].sent = now
            } else if peersAlike.isEmpty {
                // No other worker on the same kernels: the coordinator checks, if it is on them.
                if Self.core(Self.coordinatorBLAS) != c.core {
                    uncheckable.append(i)
                } else if local == nil {
                    local = LocalRun(plan: plan, assignment: c.assignment)
                }
            }
        }
        for i in uncheckable.reversed() {
            let c = checks.remove(at: i)
            report.uncheckedSegments += 1
            logger.info("group \(c.assignment.group)'s segment from \(c.workerName) is not checked: no other worker, nor the coordinator, runs OpenBLAS's \(c.core) kernels")
        }
        for i in checks.indices {
            guard checks[i].verifier != nil, now.timeIntervalSince(checks[i].sent) > deadline(length: checks[i].assignment.length) else { continue }
            logger.warning("\(checks[i].verifierName) did not return the check of group \(checks[i].assignment.group)'s segment in time; asking another")
            checks[i].verifier = nil
        }
        if local == nil, let i = checks.firstIndex(where: { $0.verifierDigest != nil }) {
            if Self.core(Self.coordinatorBLAS) == checks[i].core {
                local = LocalRun(plan: plan, assignment: checks[i].assignment)
            } else {
                let c = checks.remove(at: i)
                report.uncheckedSegments += 1
                logger.error("group \(c.assignment.group)'s segment from iteration \(c.assignment.firstIteration) differs between \(c.workerName) and \(c.verifierName), and the coordinator (OpenBLAS \(Self.core(Self.coordinatorBLAS)), not \(c.core)) cannot settle it; nothing discarded")
            }
        }
    }

    /// A verifier's result for check `i`.
    func checked(_ i: Int, digest: String, by name: String) {
        if digest == checks[i].digest {
            verified(checks.remove(at: i))
        } else {
            logger.warning("group \(checks[i].assignment.group)'s segment from iteration \(checks[i].assignment.firstIteration) differs between \(checks[i].workerName) and \(name); the coordinator runs it to settle which is wrong")
            checks[i].verifierDigest = digest
        }
    }

    /// The coordinator's own digest for check `i`: a check with no second worker, or an arbiter.
    func settle(_ i: Int, coordinator mine: SegmentResult) throws {
        let c = checks.remove(at: i)
        let digest = Self.digest(mine)
        if digest != c.digest { logger.warning("\(c.workerName)'s result differs from the coordinator's: \(Self.difference(c.result, mine))") }
        if digest == c.digest {
            verified(c)
            if let b = c.verifier, c.verifierDigest != nil { try fault(b, name: c.verifierName, "its check of another worker's segment was wrong") }
        } else if c.verifierDigest == nil || c.verifierDigest == digest {
            try fault(c.worker, name: c.workerName, "group \(c.assignment.group)'s segment from iteration \(c.assignment.firstIteration) was not what the job gives")
        } else {
            report.uncheckedSegments += 1
            logger.error("group \(c.assignment.group)'s segment from iteration \(c.assignment.firstIteration): \(c.workerName), \(c.verifierName) and the coordinator all differ (different BLAS builds? \(report.blas.joined(separator: ", "))); nothing discarded")
        }
    }

    /// Where two results of one segment differ, in words.
    static func difference(_ a: SegmentResult, _ b: SegmentResult) -> String {
        let d = max(1, a.header.dimension), n = max(1, a.header.draws)
        let common = min(a.positions.count, b.positions.count)
        if let k = (0..<common).first(where: { a.positions[$0].bitPattern != b.positions[$0].bitPattern }) ?? (a.positions.count != b.positions.count ? common : nil) {
            return "draw \(k / d % n) of the group's chain \(k / (d * n)), coordinate \(k % d)"
        }
        if a.header.checkpoints != b.header.checkpoints { return "the checkpoints" }
        for (name, x, y) in [("log acceptance", a.logAcceptance, b.logAcceptance), ("acceptance", a.acceptance, b.acceptance),
                             ("step sizes", a.stepSize, b.stepSize), ("steps", a.steps, b.steps), ("energy", a.energy, b.energy)]
        where x.map(\.bitPattern) != y.map(\.bitPattern) { return "the \(name)" }
        return "the header"
    }

    func verified(_ c: Check) {
        report.verifiedSegments += 1
        let g = c.assignment.group
        if let k = ledger[g].firstIndex(where: { $0.firstIteration == c.assignment.firstIteration && $0.worker == c.worker }) {
            ledger[g][k].verified = true
        }
    }

    /// Drops a worker whose result did not verify and discards every segment of its not
    /// yet verified, with all that was built on them.
    func fault(_ id: [UInt8], name: String, _ why: String) throws {
        report.faultyWorkers += 1
        logger.error("worker \(name) is faulty: \(why); its unverified segments are discarded and computed again",
                     metadata: ["event": "faulty", "worker": "\(name)"])
        dropped.insert(id)
        _ = try? transport.send(WireCodec.encode(.failure(WireFailure(kind: "dropped", message: "dropped from this job: its results did not verify"))), to: id)
        lose(id, reason: "faulty")
        checks.removeAll { $0.worker == id }
        for i in checks.indices where checks[i].verifier == id { checks[i].verifier = nil; checks[i].verifierDigest = nil }
        for g in groups.indices {
            if let k = ledger[g].firstIndex(where: { $0.worker == id && !$0.verified }) { try roll(back: g, to: k, journaled: false) }
        }
    }

    /// Discards group `g`'s segments from ledger entry `k` on: the group continues from
    /// where that segment began. Journaled unless it is being replayed.
    func roll(back g: Int, to k: Int, journaled: Bool) throws {
        let entry = ledger[g][k]
        if !journaled {
            let record = Rollback(rollback: 1, group: g, iteration: entry.firstIteration)
            try journal.append([Array(try JSONEncoder().encode(record))])
            logger.warning("group \(g) rolled back to iteration \(entry.firstIteration): \(ledger[g].count - k) segments discarded", metadata: ["event": "rollback", "group": "\(g)", "iteration": "\(entry.firstIteration)"])
        }
        report.discardedSegments += ledger[g].count - k
        ledger[g].removeSubrange(k...)
        groups[g].iteration = entry.firstIteration
        groups[g].checkpoints = entry.input
        if let out = groups[g].out { for p in out.peers { peers[p]?.outstanding.remove(g) } }
        groups[g].out = nil
        groups[g].failures = []
        draws.truncate(chains: groups[g].chains, to: max(0, entry.firstIteration - sampler.warmup))
        checks.removeAll { $0.assignment.group == g && $0.assignment.firstIteration >= entry.firstIteration }
        rollbacks += 1
    }
}

/// A segment run by the coordinator itself, off its thread (it keeps heartbeating), with
/// OpenBLAS on one thread as the workers run it (more threads sum in another order, and
/// the bytes would differ).
struct LocalRun {
    let assignment: Assignment
    let run: Background<Result<SegmentResult, any Error>>

    init(plan: JobPlan, assignment: Assignment) {
        self.assignment = assignment
        run = Background {
            BLAS.setThreads(1)
            return Result { try SegmentWork(plan: plan).run(assignment) }
        }
    }

    var outcome: Result<SegmentResult, any Error>? { run.result }
}
