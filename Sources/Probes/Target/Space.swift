import Foundation

/// Where chains live.
public enum Space: Sendable {
    /// The data space: x = T(u) per feature (a box through a sigmoid, a half-line through
    /// a softplus, the identity otherwise), with immutable features held fixed.
    case data(DataSpace)
    /// A decoder's latent space: x = decoder(z), with or without the N(0, I) prior.
    case latent(decoderName: String, dimension: Int, prior: Bool)
}

/// One bound per feature (nil: none), held once when every feature has the same: a
/// 10,000-feature space without bounds costs nothing in every process that plans it.
public enum Bounds: Sendable, Equatable {
    case all(Double?)
    case each([Double?])

    public subscript(feature: Int) -> Double? {
        switch self {
        case .all(let b): b
        case .each(let bounds): bounds[feature]
        }
    }

    /// No feature is bounded.
    public var isNone: Bool {
        switch self {
        case .all(let b): b == nil
        case .each(let bounds): bounds.allSatisfy { $0 == nil }
        }
    }
}

extension Bounds: ExpressibleByArrayLiteral {
    public init(arrayLiteral bounds: Double?...) { self = .each(bounds) }
}

/// A data space: bounds per feature, fixed features, and the change of variables
/// between the sampler's unconstrained u (free features only) and x.
///
/// Box [l, h]: x = l + (h − l)σ(u), log|dx/du| = log(h − l) + log σ(u) + log σ(−u).
/// Lower bound only: x = l + softplus(u), log|dx/du| = log σ(u). Upper only:
/// x = h − softplus(−u), log|dx/du| = log σ(−u). The Jacobian enters the target, so the
/// density inside the box is exact — nothing is ever clipped.
public struct DataSpace: Sendable, Equatable {
    public var dimension: Int
    public var lower: Bounds
    public var upper: Bounds
    public var fixed: [Int: Double]
    /// Indices of the features the chains move, ascending.
    public var free: [Int]

    public init(dimension: Int, lower: Bounds, upper: Bounds, fixed: [Int: Double]) {
        self.dimension = dimension
        self.lower = lower
        self.upper = upper
        self.fixed = fixed
        free = (0..<dimension).filter { fixed[$0] == nil }
    }

    /// Whether x = u: no bounds and no fixed features (the sampler moves x itself).
    public var isIdentity: Bool {
        fixed.isEmpty && lower.isNone && upper.isNone
    }

    static func sigmoid(_ u: Double) -> Double { u >= 0 ? 1 / (1 + exp(-u)) : exp(u) / (1 + exp(u)) }
    static func softplus(_ u: Double) -> Double { u > 30 ? u : log1p(exp(u)) }

    /// x from u for one feature, with dx/du, log|dx/du| and d log|dx/du| / du.
    public func transform(_ i: Int, _ u: Double) -> (x: Double, dxdu: Double, logJ: Double, dlogJ: Double) {
        switch (lower[i], upper[i]) {
        case let (l?, h?):
            let s = Self.sigmoid(u)
            return (l + (h - l) * s, (h - l) * s * (1 - s), log(h - l) - Self.softplus(-u) - Self.softplus(u), 1 - 2 * s)
        case let (l?, nil):
            return (l + Self.softplus(u), Self.sigmoid(u), -Self.softplus(-u), Self.sigmoid(-u))
        case let (nil, h?):
            return (h - Self.softplus(-u), Self.sigmoid(-u), -Self.softplus(u), -Self.sigmoid(u))
        case (nil, nil):
            return (u, 1, 0, 0)
        }
    }

    /// u from x for one feature (x nudged inside a closed box's boundary).
    public func inverse(_ i: Int, _ x: Double) -> Double {
        switch (lower[i], upper[i]) {
        case let (l?, h?):
            let t = min(max((x - l) / (h - l), 1e-6), 1 - 1e-6)
            return log(t / (1 - t))
        case let (l?, nil):
            let v = max(x - l, 1e-6)
            return v > 30 ? v : log(expm1(v))
        case let (nil, h?):
            let v = max(h - x, 1e-6)
            return -(v > 30 ? v : log(expm1(v)))
        case (nil, nil):
            return x
        }
    }

    /// The full data point for sampler coordinates u (free features only).
    public func point(_ u: ArraySlice<Double>) -> [Double] {
        var x = [Double](repeating: 0, count: dimension)
        for (i, v) in fixed { x[i] = v }
        for (k, i) in free.enumerated() { x[i] = transform(i, u[u.startIndex + k]).x }
        return x
    }
}
