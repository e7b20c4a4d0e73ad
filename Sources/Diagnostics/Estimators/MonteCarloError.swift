/// What a Monte-Carlo standard error is computed for.
public enum MCSEMethod: Sendable, Hashable {
    case mean
    case sd
    case quantile(Double)
}

extension ChainDraws {
    /// The Monte-Carlo standard error of an estimate, as ArviZ's `mcse`, or `nil` when
    /// fewer than 4 draws or any NaN.
    ///
    /// - `mean`: sd(x) / √ESS_mean.
    /// - `sd`: √(Var(ĉ²) / ESS / Ê[c²] / 4) with c = x − x̄ (the delta method on the
    ///   variance, as ArviZ 0.23).
    /// - `quantile(p)`: half the distance between the order statistics at the
    ///   Φ(±1) quantiles of Beta(ESS·p + 1, ESS·(1 − p) + 1).
    public func mcse(method: MCSEMethod = .mean) -> Double? {
        guard isValid(minimumChains: 1) else { return nil }
        switch method {
        case .mean:
            guard let e = ess(method: .mean) else { return nil }
            let sd = Stat.variance(values, ddof: 1).squareRoot()
            return nilIfNaN(sd / e.squareRoot())
        case .sd:
            let m = Stat.mean(values)
            let c2 = mapValues { ($0 - m) * ($0 - m) }
            guard let e = c2.ess(method: .mean) else { return nil }
            let evar = Stat.mean(c2.values)
            let varvar = (Stat.mean(c2.values.lazy.map { $0 * $0 }) - evar * evar) / e
            return nilIfNaN((varvar / evar / 4).squareRoot())
        case .quantile(let p):
            guard let e = ess(method: .quantile(p)) else { return nil }
            let a = e * p + 1, b = e * (1 - p) + 1
            let lower = SpecialFunctions.betaQuantile(0.1586553, a, b)
            let upper = SpecialFunctions.betaQuantile(0.8413447, a, b)
            let sorted = Stat.sorted(values)
            let size = Double(sorted.count)
            let i1 = Int((max(lower * size - 1, 0)).rounded(.down))
            let i2 = Int((min(upper * size - 1, size - 1)).rounded(.up))
            return nilIfNaN((sorted[i2] - sorted[i1]) / 2)
        }
    }
}

@inline(__always) func nilIfNaN(_ x: Double) -> Double? { x.isNaN ? nil : x }
