import Foundation

/// The state a kernel carries for one chain: position, log density and its gradient
/// (cached, so a step needs one new gradient).
public struct ChainState: Sendable, Codable, Equatable {
    public var position: [Double]
    public var logDensity: Double
    public var gradient: [Double]

    public init(position: [Double], logDensity: Double, gradient: [Double]) {
        self.position = position
        self.logDensity = logDensity
        self.gradient = gradient
    }
}

/// What one step of one chain did.
public struct StepInfo: Sendable, Equatable {
    /// min(1, Metropolis–Hastings ratio); 0 for a divergent proposal.
    public var acceptanceProbability: Double
    /// log of the Metropolis–Hastings ratio (may exceed 0; −∞ when divergent).
    public var logAcceptance: Double
    public var accepted: Bool
    /// The proposal had a non-finite density or gradient, or (HMC) an energy error
    /// above ``divergenceThreshold``: it was rejected.
    public var divergent: Bool
    /// Gradient evaluations (leapfrog steps) the transition took.
    public var steps: Int
    /// NUTS: the depth of the trajectory's tree (0 for other kernels).
    public var treeDepth: Int
    /// Hamiltonian kernels: H = −log p + ½ pᵀM⁻¹p at the kept state (NaN for others).
    public var energy: Double

    public static let divergenceThreshold = 1000.0

    public init(acceptanceProbability: Double, logAcceptance: Double, accepted: Bool, divergent: Bool,
                steps: Int = 1, treeDepth: Int = 0, energy: Double = .nan) {
        self.acceptanceProbability = acceptanceProbability
        self.logAcceptance = logAcceptance
        self.accepted = accepted
        self.divergent = divergent
        self.steps = steps
        self.treeDepth = treeDepth
        self.energy = energy
    }

    static func rejectedDivergent(steps: Int = 1) -> StepInfo {
        StepInfo(acceptanceProbability: 0, logAcceptance: -.infinity, accepted: false, divergent: true, steps: steps)
    }
}

/// The per-chain settings a kernel step uses.
public struct StepContext: Sendable {
    public var stepSizes: [Double]
    /// The inverse metric per chain (empty: the identity for every chain).
    public var metrics: [Metric]
    public var streams: [RandomStream]
    public var iteration: UInt64

    public init(stepSizes: [Double], metrics: [Metric] = [], streams: [RandomStream], iteration: UInt64) {
        self.stepSizes = stepSizes
        self.metrics = metrics
        self.streams = streams
        self.iteration = iteration
    }

    /// Chain `c`'s inverse metric.
    @inline(__always) public func metric(_ c: Int) -> Metric { metrics.isEmpty ? .identity : metrics[c] }
}

/// A transition kernel that steps every chain of a batch in lockstep, with one batched
/// density evaluation per gradient step (BlackJAX's `step(rng, state, params) →
/// (state, info)`, batched).
public protocol Kernel: Sendable {
    func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo]
}

@inline(__always) func isFinite(_ v: Double, _ g: ArraySlice<Double>) -> Bool {
    v.isFinite && g.allSatisfy { $0.isFinite }
}

/// Accepts or rejects each proposal with the exact Metropolis–Hastings rule:
/// accept when log u < log α, u ~ U(0, 1) from the chain's accept stream. A NaN log
/// ratio marks a divergent proposal (a non-finite density or gradient): rejected.
func metropolis(
    _ states: inout [ChainState], proposals: [Double], values: [Double], gradients: [Double],
    logRatios: [Double], context: StepContext, dimension d: Int, steps: Int = 1, energies: [Double]? = nil
) -> [StepInfo] {
    var infos = [StepInfo]()
    infos.reserveCapacity(states.count)
    for c in states.indices {
        let logAlpha = logRatios[c]
        guard !logAlpha.isNaN else {
            infos.append(.rejectedDivergent(steps: steps))
            continue
        }
        let u = context.streams[c].uniform(iteration: context.iteration, purpose: .accept)
        let accepted = log(u) < logAlpha
        if accepted {
            // In place when the state's arrays are not shared (copied first otherwise).
            states[c].logDensity = values[c]
            overwrite(&states[c].position, with: proposals[(c * d)..<((c + 1) * d)])
            overwrite(&states[c].gradient, with: gradients[(c * d)..<((c + 1) * d)])
        }
        infos.append(StepInfo(acceptanceProbability: min(1, exp(min(logAlpha, 0))), logAcceptance: logAlpha,
                              accepted: accepted, divergent: false, steps: steps,
                              energy: energies.map { accepted ? $0[c] : $0[states.count + c] } ?? .nan))
    }
    return infos
}

@inline(__always) private func overwrite(_ a: inout [Double], with s: ArraySlice<Double>) {
    if a.count == s.count {
        a.withUnsafeMutableBufferPointer { p in for (i, v) in zip(p.indices, s) { p[i] = v } }
    } else {
        a = Array(s)
    }
}
