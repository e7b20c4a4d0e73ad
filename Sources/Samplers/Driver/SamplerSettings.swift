import Foundation

/// How chains are sampled: the kernel, the warm-up and draw counts, and adaptation.
public struct SamplerSettings: Sendable, Codable, Equatable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        case mala, hmc, rwm
    }

    public var method: Method
    public var warmup: Int
    public var draws: Int
    /// The mean acceptance dual averaging aims for (MALA 0.574, HMC 0.8, RWM 0.234).
    public var targetAcceptance: Double
    public var leapfrogSteps: Int
    /// ε₀, where warm-up starts.
    public var initialStepSize: Double
    /// Estimate a diagonal inverse metric during warm-up (default for HMC).
    public var adaptMetric: Bool
    /// Anneal during the first half of warm-up: the energy is scaled by β rising
    /// geometrically from `annealFrom` to 1 (nil: no annealing). Warm-up draws are
    /// discarded, so this changes where chains start sampling, never what they sample.
    public var annealFrom: Double?

    public init(method: Method = .mala, warmup: Int = 1000, draws: Int = 2000, targetAcceptance: Double? = nil,
                leapfrogSteps: Int = 10, initialStepSize: Double? = nil, adaptMetric: Bool? = nil,
                annealFrom: Double? = nil) {
        self.method = method
        self.warmup = warmup
        self.draws = draws
        self.targetAcceptance = targetAcceptance ?? Self.defaultAcceptance(method)
        self.leapfrogSteps = leapfrogSteps
        self.initialStepSize = initialStepSize ?? (method == .mala ? 0.01 : 0.1)
        self.adaptMetric = adaptMetric ?? (method == .hmc)
        self.annealFrom = annealFrom
    }

    /// The inverse temperature at iteration `it` (1 outside the annealing phase).
    public func inverseTemperature(at it: Int) -> Double {
        guard let b0 = annealFrom, b0 < 1, it < warmup / 2 else { return 1 }
        return pow(b0, 1 - Double(it) / Double(max(warmup / 2, 1)))
    }

    public static func defaultAcceptance(_ m: Method) -> Double {
        switch m {
        case .mala: 0.574
        case .hmc: 0.8
        case .rwm: 0.234
        }
    }

    public var kernel: any Kernel {
        switch method {
        case .mala: MALA()
        case .hmc: HMC(leapfrogSteps: leapfrogSteps)
        case .rwm: RandomWalkMetropolis()
        }
    }

    /// Warm-up iterations in which the metric is estimated: [15%, 75%) of warm-up.
    var metricWindow: Range<Int> {
        guard adaptMetric, warmup >= 20 else { return 0..<0 }
        return (warmup * 15 / 100)..<(warmup * 75 / 100)
    }
}
