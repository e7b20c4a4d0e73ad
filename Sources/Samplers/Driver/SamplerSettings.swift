import Foundation

/// How chains are sampled: the kernel, the warm-up and draw counts, and adaptation.
public struct SamplerSettings: Sendable, Codable, Equatable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        case nuts, hmc, mala, rwm
        /// Differential evolution across a batch's chains: gradient-free.
        case de

        /// Whether the method uses the target's gradient.
        public var usesGradient: Bool { self != .rwm && self != .de }
    }

    public var method: Method
    public var warmup: Int
    public var draws: Int
    /// The mean acceptance dual averaging aims for (NUTS/HMC 0.8, MALA 0.574, RWM 0.234).
    public var targetAcceptance: Double
    /// HMC's fixed number of leapfrog steps.
    public var leapfrogSteps: Int
    /// NUTS: at most 2^maxTreeDepth − 1 leapfrog steps per transition.
    public var maxTreeDepth: Int
    /// ε₀, where warm-up starts.
    public var initialStepSize: Double
    /// The inverse metric estimated in warm-up windows (identity: none).
    public var metric: Metric.Kind
    /// Anneal during the first part of warm-up: the energy is scaled by β rising
    /// geometrically from `annealFrom` to 1 (nil: no annealing), ending where the last
    /// metric window starts (at half of warm-up when there are no windows). Warm-up draws
    /// are discarded, so this changes where chains start sampling, never what they sample.
    public var annealFrom: Double?

    /// Replica exchange: each chain carries `replicas` copies at inverse temperatures from 1
    /// down to 1/`maxTemperature` (see ``TemperingLadder``); nil: none.
    public struct Tempering: Sendable, Codable, Equatable {
        public var replicas: Int
        public var maxTemperature: Double

        public init(replicas: Int, maxTemperature: Double) {
            self.replicas = replicas
            self.maxTemperature = maxTemperature
        }
    }

    public var tempering: Tempering?

    /// Pool each warm-up window's draws over the group's chains into one metric (per rung
    /// of a tempering ladder) instead of one metric per chain from its own draws.
    public var poolMetric = true

    /// At the end of warm-up, restart a chain stranded far below the group's others (in log
    /// density) from the best chain's warm-up state, before any draw is kept.
    public var restartStranded = true

    /// Replicas per chain (1 without tempering).
    public var replicas: Int { tempering?.replicas ?? 1 }

    /// The largest space a dense metric is estimated on (d² doubles per chain, several times).
    public static let maxDenseDimension = 200

    public init(method: Method = .nuts, warmup: Int = 1000, draws: Int = 2000, targetAcceptance: Double? = nil,
                leapfrogSteps: Int = 10, maxTreeDepth: Int = 10, initialStepSize: Double? = nil,
                metric: Metric.Kind = .diagonal, annealFrom: Double? = nil, tempering: Tempering? = nil) {
        self.tempering = tempering
        self.method = method
        self.warmup = warmup
        self.draws = draws
        self.targetAcceptance = targetAcceptance ?? Self.defaultAcceptance(method)
        self.leapfrogSteps = leapfrogSteps
        self.maxTreeDepth = maxTreeDepth
        self.initialStepSize = initialStepSize ?? (method == .mala ? 0.01 : method == .de ? 1 : 0.1)
        self.metric = metric
        self.annealFrom = annealFrom
    }

    /// The warm-up windows: Stan's schedule for this warm-up length. MALA and RWM learn their
    /// step from single accept/reject outcomes, which carry less than a trajectory's mean
    /// acceptance statistic: their final fast window is a fifth of warm-up (at least 50).
    public var schedule: WarmupSchedule {
        let hamiltonian = method == .nuts || method == .hmc
        return WarmupSchedule(warmup: warmup, adaptMetric: metric != .identity, termBuffer: hamiltonian ? 50 : max(50, warmup / 5))
    }

    /// Where annealing ends.
    var annealEnd: Int { min(schedule.lastWindowStart ?? warmup / 2, warmup / 2) }

    /// The inverse temperature at iteration `it` (1 outside the annealing phase).
    public func inverseTemperature(at it: Int) -> Double {
        let end = annealEnd
        guard let b0 = annealFrom, b0 < 1, it < end else { return 1 }
        return pow(b0, 1 - Double(it) / Double(max(end, 1)))
    }

    public static func defaultAcceptance(_ m: Method) -> Double {
        switch m {
        case .nuts, .hmc: 0.8
        case .mala: 0.574
        case .rwm, .de: 0.234
        }
    }

    /// The lockstep kernel of a one-evaluation-per-round method (nil for NUTS, which the
    /// runner drives trajectory by trajectory).
    public var kernel: (any Kernel)? {
        switch method {
        case .nuts: nil
        case .mala: MALA()
        case .hmc: HMC(leapfrogSteps: leapfrogSteps)
        case .rwm: RandomWalkMetropolis()
        case .de: DifferentialEvolution()
        }
    }
}
