/// Count, mean and sum of squared deviations of a stream of values, updated one value
/// at a time (Welford 1962) and mergeable (Chan, Golub, LeVeque 1979), so segments
/// computed apart combine exactly as if seen in one pass.
public struct RunningMoments: Sendable, Equatable, Codable {
    public private(set) var count = 0
    public private(set) var mean = 0.0
    /// Σ (x − mean)².
    public private(set) var m2 = 0.0

    public init() {}

    public init<S: Sequence>(_ values: S) where S.Element == Double {
        for v in values { add(v) }
    }

    public mutating func add(_ x: Double) {
        count += 1
        let d = x - mean
        mean += d / Double(count)
        m2 += d * (x - mean)
    }

    /// Combines with moments of values that follow (or precede) these.
    public mutating func merge(_ o: RunningMoments) {
        guard o.count > 0 else { return }
        guard count > 0 else { self = o; return }
        let n = Double(count + o.count)
        let d = o.mean - mean
        mean += d * Double(o.count) / n
        m2 += o.m2 + d * d * Double(count) * Double(o.count) / n
        count += o.count
    }

    /// The moments of the values in `self` but not in `prefix`, where `prefix` summarises
    /// a leading part of the same stream (Chan's merge solved for the remainder).
    public func removing(prefix p: RunningMoments) -> RunningMoments {
        var r = RunningMoments()
        r.count = count - p.count
        guard r.count > 0 else { return RunningMoments() }
        let n = Double(count), a = Double(p.count), b = Double(r.count)
        r.mean = (n * mean - a * p.mean) / b
        let d = r.mean - p.mean
        r.m2 = max(m2 - p.m2 - d * d * a * b / n, 0)
        return r
    }

    /// The variance with `ddof` degrees of freedom removed (NaN if too few values).
    public func variance(ddof: Int = 1) -> Double {
        count > ddof ? m2 / Double(count - ddof) : .nan
    }
}

extension RunningMoments {
    /// Classic R-hat √((B/W + n − 1)/n) from per-chain moments of equal counts n, with
    /// B = n·Var(chain means) and W the mean within-chain variance (ddof 1 for both).
    public static func rhat(_ chains: [RunningMoments]) -> Double? {
        guard chains.count >= 2, let n = chains.first?.count, n >= 2,
              chains.allSatisfy({ $0.count == n }) else { return nil }
        let means = RunningMoments(chains.map(\.mean))
        let between = Double(n) * means.variance(ddof: 1)
        let within = chains.reduce(0.0) { $0 + $1.variance(ddof: 1) } / Double(chains.count)
        let r = ((between / within + Double(n) - 1) / Double(n)).squareRoot()
        return r.isNaN ? nil : r
    }
}
