import Foundation

/// The inverse metric M⁻¹ of Hamiltonian and Langevin kernels: the covariance the kernel
/// assumes for the target, estimated during warm-up (Stan's `diag_e` / `dense_e`).
///
/// Momentum p ~ N(0, M), kinetic energy ½ pᵀM⁻¹p, velocity dq/dt = M⁻¹p. For MALA the same
/// M⁻¹ preconditions the drift and the noise (y = x + εM⁻¹∇log p + √(2ε)·Lξ with M⁻¹ = LLᵀ),
/// and for random-walk Metropolis it shapes the proposal (y = x + ε·Lξ).
///
/// Stored flat so a checkpoint's vectors travel as raw frames: `scale` holds the variances
/// (diagonal, d values) or the covariance Σ (dense, d×d row-major); `factor` the lower
/// Cholesky factor L of Σ (dense only).
public struct Metric: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case identity, diagonal, dense
    }

    public var kind: Kind
    public var scale: [Double]
    public var factor: [Double]

    public static let identity = Metric(kind: .identity, scale: [], factor: [])

    public static func diagonal(_ variances: [Double]) -> Metric {
        Metric(kind: .diagonal, scale: variances, factor: [])
    }

    /// A dense metric from a symmetric positive definite covariance (row-major d×d).
    /// - Returns: nil when Σ is not positive definite.
    public static func dense(_ covariance: [Double], dimension d: Int) -> Metric? {
        guard let l = cholesky(covariance, dimension: d) else { return nil }
        return Metric(kind: .dense, scale: covariance, factor: l)
    }

    public init(kind: Kind, scale: [Double], factor: [Double]) {
        self.kind = kind
        self.scale = scale
        self.factor = factor
    }

    /// Doubles this metric keeps for a d-dimensional chain (vectors of a checkpoint).
    public static func storedCount(_ kind: Kind, dimension d: Int) -> (scale: Int, factor: Int) {
        switch kind {
        case .identity: (0, 0)
        case .diagonal: (d, 0)
        case .dense: (d * d, d * d)
        }
    }

    /// v = M⁻¹p (the velocity, Stan's p♯).
    @inline(__always)
    public func velocity(_ p: UnsafePointer<Double>, into v: UnsafeMutablePointer<Double>, dimension d: Int) {
        switch kind {
        case .identity:
            v.update(from: p, count: d)
        case .diagonal:
            for i in 0..<d { v[i] = scale[i] * p[i] }
        case .dense:
            scale.withUnsafeBufferPointer { s in
                for i in 0..<d {
                    var a = 0.0
                    let row = s.baseAddress! + i * d
                    for j in 0..<d { a += row[j] * p[j] }
                    v[i] = a
                }
            }
        }
    }

    /// Momentum p ~ N(0, M) from standard normals ξ: p = L⁻ᵀξ (so Cov p = (LLᵀ)⁻¹ = M).
    public func momentum(fromNormals xi: UnsafeMutablePointer<Double>, dimension d: Int) {
        switch kind {
        case .identity: return
        case .diagonal:
            for i in 0..<d { xi[i] /= scale[i].squareRoot() }
        case .dense:
            // Back substitution with Lᵀ (upper triangular).
            factor.withUnsafeBufferPointer { l in
                for i in stride(from: d - 1, through: 0, by: -1) {
                    var s = xi[i]
                    for j in (i + 1)..<d { s -= l[j * d + i] * xi[j] }
                    xi[i] = s / l[i * d + i]
                }
            }
        }
    }

    /// Noise with covariance M⁻¹ from standard normals ξ, in place: Lξ.
    public func correlate(_ xi: UnsafeMutablePointer<Double>, dimension d: Int) {
        switch kind {
        case .identity: return
        case .diagonal:
            for i in 0..<d { xi[i] *= scale[i].squareRoot() }
        case .dense:
            factor.withUnsafeBufferPointer { l in
                for i in stride(from: d - 1, through: 0, by: -1) {
                    var s = 0.0
                    for j in 0...i { s += l[i * d + j] * xi[j] }
                    xi[i] = s
                }
            }
        }
    }

    /// rᵀMr = ‖L⁻¹r‖² (the quadratic form of a Gaussian with covariance M⁻¹).
    public func precisionQuadratic(_ r: [Double]) -> Double {
        let d = r.count
        switch kind {
        case .identity:
            return r.reduce(0) { $0 + $1 * $1 }
        case .diagonal:
            var s = 0.0
            for i in 0..<d { s += r[i] * r[i] / scale[i] }
            return s
        case .dense:
            var y = r, s = 0.0
            factor.withUnsafeBufferPointer { l in
                for i in 0..<d {
                    var a = y[i]
                    for j in 0..<i { a -= l[i * d + j] * y[j] }
                    y[i] = a / l[i * d + i]
                    s += y[i] * y[i]
                }
            }
            return s
        }
    }

    /// The lower Cholesky factor of a symmetric matrix, or nil if it is not positive definite.
    public static func cholesky(_ a: [Double], dimension d: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0...i {
                var s = a[i * d + j]
                for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
                if i == j {
                    guard s > 0, s.isFinite else { return nil }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        return l
    }
}

/// Running mean and (co)variance of warm-up positions (Welford), for one metric window.
public struct MetricEstimator: Sendable, Codable, Equatable {
    public var kind: Metric.Kind
    public var count = 0
    public var mean: [Double]
    /// Σ (x − x̄)² per coordinate (diagonal) or Σ (x − x̄)(x − x̄)ᵀ row-major (dense).
    public var m2: [Double]

    public init(kind: Metric.Kind, dimension d: Int) {
        self.kind = kind
        mean = Array(repeating: 0, count: d)
        m2 = Array(repeating: 0, count: kind == .dense ? d * d : d)
    }

    public static func storedCount(_ kind: Metric.Kind, dimension d: Int) -> (mean: Int, m2: Int) {
        (d, kind == .dense ? d * d : d)
    }

    public mutating func add(_ x: [Double]) {
        count += 1
        let d = x.count, n = Double(count)
        var before = [Double](repeating: 0, count: kind == .dense ? d : 0)
        for i in 0..<d {
            let delta = x[i] - mean[i]
            if kind == .dense { before[i] = delta }
            mean[i] += delta / n
            if kind != .dense { m2[i] += delta * (x[i] - mean[i]) }
        }
        if kind == .dense {
            for i in 0..<d {
                let after = x[i] - mean[i]
                for j in 0..<d { m2[i * d + j] += after * before[j] }
            }
        }
    }

    /// Adds another window's draws (Chan, Golub & LeVeque's pairwise update): the result is
    /// the estimate of both windows' draws together.
    public mutating func merge(_ other: MetricEstimator) {
        guard other.count > 0 else { return }
        guard count > 0 else { self = other; return }
        let na = Double(count), nb = Double(other.count), n = na + nb, d = mean.count
        let delta = (0..<d).map { other.mean[$0] - mean[$0] }
        for i in 0..<d { mean[i] += delta[i] * nb / n }
        if kind == .dense {
            for i in 0..<d { for j in 0..<d { m2[i * d + j] += other.m2[i * d + j] + delta[i] * delta[j] * na * nb / n } }
        } else {
            for i in 0..<d { m2[i] += other.m2[i] + delta[i] * delta[i] * na * nb / n }
        }
        count += other.count
    }

    /// Stan's regularised estimate, shrunk towards 10⁻³·I: (n/(n+5))·Σ̂ + 10⁻³·(5/(n+5))·I.
    /// - Returns: nil for an identity estimator or a dense estimate that is not positive definite.
    public func metric() -> Metric? {
        let n = Double(count), d = mean.count
        let shrink = n / (n + 5), ridge = 1e-3 * 5 / (n + 5), denominator = max(n - 1, 1)
        switch kind {
        case .identity:
            return nil
        case .diagonal:
            return .diagonal(m2.map { $0 / denominator * shrink + ridge })
        case .dense:
            var s = [Double](repeating: 0, count: d * d)
            for i in 0..<d {
                for j in 0..<d {
                    // Symmetrised: the two Welford products agree only up to rounding.
                    s[i * d + j] = 0.5 * (m2[i * d + j] + m2[j * d + i]) / denominator * shrink + (i == j ? ridge : 0)
                }
            }
            return .dense(s, dimension: d)
        }
    }
}
