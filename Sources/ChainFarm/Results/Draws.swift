import Diagnostics
import FarmWire
import Foundation
import Samplers
import TensorCore

/// Every post-warm-up iteration of every chain.
public struct RunDraws: Sendable {
    public var chains: Int
    public var dimension: Int
    /// Per chain: positions (draws × dimension), then per-draw statistics.
    public var positions: [[Double]]
    public var logAcceptance: [[Double]]
    public var acceptance: [[Double]]
    public var stepSize: [[Double]]
    public var divergent: [[Bool]]
    /// Leapfrog steps, NUTS tree depth and Hamiltonian per draw.
    public var steps: [[Double]]
    public var treeDepth: [[Double]]
    public var hamiltonian: [[Double]]
    /// Gradient evaluations of every accepted segment, warm-up included.
    public var gradientEvaluations = 0
    public var draws: Int { positions.first.map { $0.count / max(dimension, 1) } ?? 0 }

    public init(chains: Int, dimension: Int) {
        self.chains = chains
        self.dimension = dimension
        positions = Array(repeating: [], count: chains)
        logAcceptance = positions
        acceptance = positions
        stepSize = positions
        steps = positions
        treeDepth = positions
        hamiltonian = positions
        divergent = Array(repeating: [], count: chains)
    }

    /// Appends a segment's draws (they must continue each chain's draws).
    mutating func append(_ r: SegmentResult) {
        let h = r.header, n = h.draws, d = dimension
        for (slot, c) in h.chains.enumerated() {
            positions[c] += r.positions[(slot * n * d)..<((slot + 1) * n * d)]
            logAcceptance[c] += r.logAcceptance[(slot * n)..<((slot + 1) * n)]
            acceptance[c] += r.acceptance[(slot * n)..<((slot + 1) * n)]
            stepSize[c] += r.stepSize[(slot * n)..<((slot + 1) * n)]
            divergent[c] += r.divergent[(slot * n)..<((slot + 1) * n)].map { $0 != 0 }
            steps[c] += r.steps[(slot * n)..<((slot + 1) * n)]
            treeDepth[c] += r.treeDepth[(slot * n)..<((slot + 1) * n)]
            hamiltonian[c] += r.energy[(slot * n)..<((slot + 1) * n)]
        }
        gradientEvaluations += h.gradientEvaluations
    }

    /// Cuts `chains` back to their first `n` draws (a rollback of unverified segments).
    mutating func truncate(chains: [Int], to n: Int) {
        for c in chains {
            positions[c].removeSubrange(min(positions[c].count, n * dimension)...)
            logAcceptance[c].removeSubrange(min(logAcceptance[c].count, n)...)
            acceptance[c].removeSubrange(min(acceptance[c].count, n)...)
            stepSize[c].removeSubrange(min(stepSize[c].count, n)...)
            divergent[c].removeSubrange(min(divergent[c].count, n)...)
            steps[c].removeSubrange(min(steps[c].count, n)...)
            treeDepth[c].removeSubrange(min(treeDepth[c].count, n)...)
            hamiltonian[c].removeSubrange(min(hamiltonian[c].count, n)...)
        }
    }

    /// The first `n` draws of every chain.
    public func prefix(_ n: Int) -> RunDraws {
        guard n < draws else { return self }
        var out = self
        out.positions = positions.map { Array($0.prefix(n * dimension)) }
        out.logAcceptance = logAcceptance.map { Array($0.prefix(n)) }
        out.acceptance = acceptance.map { Array($0.prefix(n)) }
        out.stepSize = stepSize.map { Array($0.prefix(n)) }
        out.divergent = divergent.map { Array($0.prefix(n)) }
        out.steps = steps.map { Array($0.prefix(n)) }
        out.treeDepth = treeDepth.map { Array($0.prefix(n)) }
        out.hamiltonian = hamiltonian.map { Array($0.prefix(n)) }
        return out
    }

    public var acceptanceRate: Double {
        let n = acceptance.reduce(0) { $0 + $1.count }
        return n == 0 ? .nan : acceptance.reduce(0.0) { $0 + $1.reduce(0, +) } / Double(n)
    }

    public var divergences: Int { divergent.reduce(0) { $0 + $1.filter { $0 }.count } }
}

/// What a run produced, whoever ran it.
public struct RunOutcome: Sendable {
    public var draws: RunDraws
    public var checkpoints: [ChainCheckpoint]
    public var settings: SamplerSettings
    /// The stop rule's last verdict (nil for a fixed-length job: judged when written).
    public var verdict: StopVerdict?
    public var stopReason: String
    public var seconds: Double
    /// Farm facts for the provenance: hosts, workers, events.
    public var farm: FarmReport

    public init(draws: RunDraws, checkpoints: [ChainCheckpoint], settings: SamplerSettings, verdict: StopVerdict?,
                stopReason: String, seconds: Double, farm: FarmReport) {
        self.draws = draws
        self.checkpoints = checkpoints
        self.settings = settings
        self.verdict = verdict
        self.stopReason = stopReason
        self.seconds = seconds
        self.farm = farm
    }
}

/// A run that cannot go on: one line, and a sysexits code.
public struct RunError: ProbeFarmError {
    public var description: String
    public var sysexit: Sysexit
    public init(_ description: String, sysexit: Sysexit = .dataError) {
        self.description = description
        self.sysexit = sysexit
    }
}
