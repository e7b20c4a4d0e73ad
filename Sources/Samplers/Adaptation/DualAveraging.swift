import Foundation

/// Step-size adaptation by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, §3.2),
/// driving the mean acceptance probability to `target` during warm-up only.
///
/// With H̄ₜ = (1 − 1/(t + t₀)) H̄ₜ₋₁ + (δ − αₜ)/(t + t₀): log εₜ = μ − √t/γ · H̄ₜ and
/// log ε̄ₜ = t^−κ log εₜ + (1 − t^−κ) log ε̄ₜ₋₁, μ = log(10 ε₀). After warm-up the step is
/// frozen at ε̄.
public struct DualAveraging: Sendable, Codable, Equatable {
    public var target: Double
    public var gamma = 0.05
    public var t0 = 10.0
    public var kappa = 0.75
    public var mu: Double
    public var logStep: Double
    public var logStepAverage = 0.0
    public var hBar = 0.0
    public var count = 0

    public init(initialStep: Double, target: Double, scale: Double = 10) {
        self.target = target
        mu = log(scale * initialStep)
        logStep = log(initialStep)
    }

    /// The step size to use for the next warm-up iteration.
    public var current: Double { exp(logStep) }

    /// The step size to freeze after warm-up.
    public var final: Double { count == 0 ? exp(logStep) : exp(logStepAverage) }

    public mutating func update(acceptance: Double) {
        count += 1
        let t = Double(count)
        let a = acceptance.isNaN ? 0 : min(max(acceptance, 0), 1)
        hBar = (1 - 1 / (t + t0)) * hBar + (target - a) / (t + t0)
        logStep = mu - t.squareRoot() / gamma * hBar
        let eta = pow(t, -kappa)
        logStepAverage = eta * logStep + (1 - eta) * logStepAverage
    }

    /// Restarts around the current step (after the metric changes).
    public mutating func restart(at step: Double, scale: Double = 10) {
        self = DualAveraging(initialStep: step, target: target, scale: scale)
    }
}
