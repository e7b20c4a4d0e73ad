/// Potential scale reduction factors (R-hat).
public enum RHatMethod: String, CaseIterable, Sendable, Codable {
    /// max(bulk, tail): rank-normalised split R-hat and the same on folded draws
    /// (Vehtari et al. 2021; ArviZ's default).
    case rank
    /// Classic split R-hat on the raw draws (Gelman et al., BDA3).
    case split
    /// Split R-hat of the rank-normalised folded draws |x − median|.
    case folded
    /// Split R-hat of the rank-normalised draws.
    case zScale = "z_scale"
    /// Classic R-hat without splitting.
    case identity
}

extension ChainDraws {
    /// R-hat by `method`, or `nil` when it cannot be computed: fewer than 2 chains,
    /// fewer than 4 draws, any NaN, or zero within-chain variance everywhere (a constant
    /// input gives NaN in ArviZ, reported here as `nil`).
    public func rhat(method: RHatMethod = .rank) -> Double? {
        guard isValid(minimumChains: 2) else { return nil }
        let value: Double
        switch method {
        case .rank:
            let s = split()
            let bulk = s.zScaled().classicRHat()
            let tail = s.folded().zScaled().classicRHat()
            // numpy's max propagates NaN.
            value = (bulk.isNaN || tail.isNaN) ? .nan : max(bulk, tail)
        case .split: value = split().classicRHat()
        case .folded: value = split().folded().zScaled().classicRHat()
        case .zScale: value = split().zScaled().classicRHat()
        case .identity: value = classicRHat()
        }
        return value.isNaN ? nil : value
    }

    /// √((B/W + n − 1)/n) with B = n·Var(chain means), W = mean of chain variances
    /// (both with ddof = 1). May be NaN or +∞ when W = 0.
    func classicRHat() -> Double {
        let n = Double(draws)
        var means = [Double](), variances = [Double]()
        for c in 0..<chains {
            let x = chain(c)
            means.append(Stat.mean(x))
            variances.append(Stat.variance(x, ddof: 1))
        }
        let between = n * Stat.variance(means, ddof: 1)
        let within = Stat.mean(variances)
        return ((between / within + n - 1) / n).squareRoot()
    }
}
