import Foundation

/// What an effective sample size is computed for.
public enum ESSMethod: Sendable, Hashable {
    /// Rank-normalised split ESS: efficiency of the bulk of the distribution.
    case bulk
    /// min of the quantile ESS at 5% and 95%: efficiency in the tails.
    case tail
    /// Split ESS of the raw draws: for the mean.
    case mean
    /// Split ESS of the squared deviations from the mean: for the standard deviation.
    case sd
    /// Split ESS of the indicator x ≤ q_p: for the p-quantile.
    case quantile(Double)
    /// ESS of the raw draws without splitting.
    case identity
}

extension ChainDraws {
    /// The effective sample size by `method`, or `nil` when fewer than 4 draws or any NaN.
    public func ess(method: ESSMethod = .bulk) -> Double? {
        guard isValid(minimumChains: 1) else { return nil }
        let value: Double
        switch method {
        case .bulk: value = split().zScaled().geyerESS()
        case .tail:
            guard let lo = ess(method: .quantile(0.05)), let hi = ess(method: .quantile(0.95))
            else { return nil }
            value = min(lo, hi)
        case .mean: value = split().geyerESS()
        case .sd:
            let m = Stat.mean(values)
            value = mapValues { ($0 - m) * ($0 - m) }.split().geyerESS()
        case .quantile(let p):
            let q = Stat.quantile(sorted: Stat.sorted(values), p)
            value = mapValues { $0 <= q ? 1 : 0 }.split().geyerESS()
        case .identity: value = geyerESS()
        }
        return value.isNaN ? nil : value
    }

    /// The multi-chain ESS of these draws as they are (no splitting or transforming),
    /// by Geyer's initial positive and initial monotone sequences, exactly as ArviZ's
    /// `_ess`: autocovariances averaged over chains, combined with the between-chain
    /// variance (Stan reference manual, "Effective sample size").
    ///
    /// Autocovariances are computed lag by lag, only as far as the positive sequence
    /// needs them, so well-mixed chains cost a few passes over the draws.
    func geyerESS() -> Double {
        var lo = Double.infinity, hi = -Double.infinity
        for v in values {
            if v.isNaN { return .nan }
            lo = min(lo, v); hi = max(hi, v)
        }
        if hi - lo < 1e-15 { return Double(values.count) }  // numpy's finfo(float).resolution
        let m = chains, n = draws
        let nd = Double(n)
        var centered = [Double](repeating: 0, count: values.count)
        var chainMeans = [Double]()
        for c in 0..<m {
            let mean = Stat.mean(chain(c))
            chainMeans.append(mean)
            for i in 0..<n { centered[c * n + i] = values[c * n + i] - mean }
        }
        /// All lags at once by FFT, when the sequence is expected to run long: one FFT of
        /// every chain costs about as much as ~40 lags computed directly.
        var allLags: [Double]? = nil
        var directLags = 60
        /// Mean over chains of the lag-t and lag-(t+1) autocovariances (normalised by n):
        /// directly, in one pass over the draws, for the first lags (well-mixed chains stop
        /// there), then from one FFT of every chain.
        func meanAutocovariances(_ t: Int) -> (Double, Double) {
            if t > directLags {
                if allLags == nil { allLags = Autocovariance.meanOverChains(centered, chains: m, draws: n) }
                return (allLags![t], t + 1 < n ? allLags![t + 1] : 0)
            }
            var total0 = 0.0, total1 = 0.0
            centered.withUnsafeBufferPointer { y in
                for c in 0..<m {
                    let base = y.baseAddress! + c * n
                    let raw = UnsafeRawPointer(base)
                    // Lags t and t+1 share the loads of yᵢ; SIMD4 accumulators vectorise the sums.
                    var a = SIMD4<Double>(), b = SIMD4<Double>()
                    let last = n - t - 1  // lag t+1 has n − t − 1 products, lag t one more
                    var i = 0
                    while i + 4 <= last {
                        let yi = raw.loadUnaligned(fromByteOffset: 8 * i, as: SIMD4<Double>.self)
                        a += yi * raw.loadUnaligned(fromByteOffset: 8 * (i + t), as: SIMD4<Double>.self)
                        b += yi * raw.loadUnaligned(fromByteOffset: 8 * (i + t + 1), as: SIMD4<Double>.self)
                        i += 4
                    }
                    var a0 = (a[0] + a[1]) + (a[2] + a[3]), b0 = (b[0] + b[1]) + (b[2] + b[3])
                    while i < last { a0 += base[i] * base[i + t]; b0 += base[i] * base[i + t + 1]; i += 1 }
                    if last >= 0 && t < n { a0 += base[last] * base[n - 1] }
                    total0 += a0 / nd
                    total1 += b0 / nd
                }
            }
            return (total0 / Double(m), t + 1 < n ? total1 / Double(m) : 0)
        }
        let (acov0, acov1) = meanAutocovariances(0)
        let meanVariance = acov0 * nd / (nd - 1)
        var varPlus = meanVariance * (nd - 1) / nd
        if m > 1 { varPlus += Stat.variance(chainMeans, ddof: 1) }

        var rho = [Double](repeating: 0, count: n)
        var rhoEven = 1.0
        rho[0] = rhoEven
        var rhoOdd = 1 - (meanVariance - acov1) / varPlus
        // Lags an AR(1) with this lag-1 autocorrelation needs to decay to 0.02.
        if rhoOdd > 0.97 { directLags = 0 } else if rhoOdd > 0 {
            let expected = log(0.02) / log(rhoOdd)
            if expected > 40 { directLags = 0 }
        }
        if n > 1 { rho[1] = rhoOdd }
        // Geyer's initial positive sequence.
        var t = 1
        while t < n - 3 && rhoEven + rhoOdd > 0 {
            let (even, odd) = meanAutocovariances(t + 1)
            rhoEven = 1 - (meanVariance - even) / varPlus
            rhoOdd = 1 - (meanVariance - odd) / varPlus
            if rhoEven + rhoOdd >= 0 {
                rho[t + 1] = rhoEven
                rho[t + 2] = rhoOdd
            }
            t += 2
        }
        let maxT = t - 2
        if rhoEven > 0 { rho[maxT + 1] = rhoEven }
        // Geyer's initial monotone sequence.
        t = 1
        while t <= maxT - 2 {
            if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t] {
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2
                rho[t + 2] = rho[t + 1]
            }
            t += 2
        }
        let total = Double(m * n)
        var tau = -1.0
        if maxT >= 0 { for k in 0...maxT { tau += 2 * rho[k] } }
        if maxT + 1 < n { tau += rho[maxT + 1] }
        tau = max(tau, 1 / log10(total))
        if rho.contains(where: { $0.isNaN }) { return .nan }
        return total / tau
    }
}
