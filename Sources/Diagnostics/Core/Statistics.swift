/// Small numeric helpers with NumPy's conventions (mean, variance with ddof, median,
/// R's type-7 quantile as ArviZ's `mquantiles(alphap=1, betap=1)`).
enum Stat {
    static func mean<C: Collection>(_ x: C) -> Double where C.Element == Double {
        var s = 0.0
        for v in x { s += v }
        return s / Double(x.count)
    }

    /// Two-pass variance with `ddof` degrees of freedom removed, as `numpy.var`.
    static func variance<C: Collection>(_ x: C, ddof: Int) -> Double where C.Element == Double {
        let m = mean(x)
        var s = 0.0
        for v in x { let d = v - m; s += d * d }
        return s / Double(x.count - ddof)
    }

    /// The values in ascending order (radix sort; NaN-free input).
    static func sorted(_ x: [Double]) -> [Double] {
        RadixSort.order(x).map { x[$0] }
    }

    /// The median of sorted values (mean of the two middle ones for an even count).
    static func median(sorted x: [Double]) -> Double {
        let n = x.count
        return n % 2 == 1 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2
    }

    /// R's type-7 quantile of sorted values, computed as SciPy's `mquantiles` does
    /// (`(1 − γ)·x[k−1] + γ·x[k]` with `k = ⌊clip(n·p + 1 − p, 1, n − 1)⌋`).
    static func quantile(sorted x: [Double], _ p: Double) -> Double {
        let n = x.count
        if n == 1 { return x[0] }
        let aleph = Double(n) * p + (1 - p)
        let k = Int(min(max(aleph, 1), Double(n - 1)).rounded(.down))
        let gamma = min(max(aleph - Double(k), 0), 1)
        return (1 - gamma) * x[k - 1] + gamma * x[k]
    }
}
