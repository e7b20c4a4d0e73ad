import Diagnostics
import Probes

/// The stop rule's judgement of a run's draws: the one verdict that the coordinator acts
/// on, the progress line shows, summary.json records (`converged`, `diagnostics`) and
/// `probefarm run` prints. It judges the sampler's own coordinates — z in a latent space,
/// the free features' unconstrained values in a data space — each by rank-normalised split
/// R-hat, bulk ESS and tail ESS; G and the data-space x are reported beside it, not judged.
public struct StopVerdict: Sendable, Equatable {
    public var converged: Bool
    public var maxRHat: Double?
    public var minBulk: Double?
    public var minTail: Double?
    /// Coordinates (by index) that fail a threshold or cannot be judged.
    public var failing: [Int]
}

extension Job.StopRule {
    /// The thresholds a job without `stop:` is judged by.
    public static let standard = Job.StopRule(rhat: 1.01, essBulk: 400, essTail: 400, maxDraws: Int.max)

    /// Every coordinate must have R-hat below ``rhat``, bulk ESS ≥ ``essBulk`` and tail ESS
    /// ≥ ``essTail``; one that cannot be computed (too few draws, a constant chain) fails.
    public func judge(_ summaries: [QuantitySummary]) -> StopVerdict {
        var v = StopVerdict(converged: !summaries.isEmpty, maxRHat: nil, minBulk: nil, minTail: nil, failing: [])
        for (i, s) in summaries.enumerated() {
            if let r = s.rhat { v.maxRHat = max(v.maxRHat ?? r, r) }
            if let b = s.essBulk { v.minBulk = min(v.minBulk ?? b, b) }
            if let t = s.essTail { v.minTail = min(v.minTail ?? t, t) }
            guard let r = s.rhat, let b = s.essBulk, let t = s.essTail, r < rhat, b >= essBulk, t >= essTail else {
                v.failing.append(i)
                v.converged = false
                continue
            }
        }
        return v
    }
}

extension RunDraws {
    /// The stop rule's verdict on these draws (see ``StopVerdict``).
    public func verdict(_ rule: Job.StopRule) -> StopVerdict {
        let n = draws
        let summaries = parallelMap(dimension) { q in
            QuantitySummary(ChainDraws(chains: chains, draws: n, values: (0..<chains).flatMap { c in (0..<n).map { positions[c][$0 * dimension + q] } }))
        }
        return rule.judge(summaries)
    }
}
