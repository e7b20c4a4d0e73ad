import Foundation
import NeuralModels

/// A model's outputs for a batch, as terms read them, for one ensemble member:
/// class probabilities (softmax of logits; (1 − s, s) for one sigmoid unit) or values.
public struct MemberReadout: Sendable {
    public var batch: Int
    /// Classes (2 for a `probability` model); 0 for a regressor.
    public var classes: Int
    /// Row-major probabilities, batch × classes.
    public var probabilities: [Double]
    /// Row-major log-probabilities (computed stably from logits).
    public var logProbabilities: [Double]
    /// Regression values (one per sample).
    public var values: [Double]

    public init(batch: Int, classes: Int, probabilities: [Double], logProbabilities: [Double], values: [Double]) {
        self.batch = batch; self.classes = classes; self.probabilities = probabilities
        self.logProbabilities = logProbabilities; self.values = values
    }

    public func p(_ b: Int, _ k: Int) -> Double { probabilities[b * classes + k] }

    /// 1 − p_k computed as the sum of the other probabilities (accurate when p_k → 1).
    public func complement(_ b: Int, _ k: Int) -> Double {
        var s = 0.0
        for j in 0..<classes where j != k { s += probabilities[b * classes + j] }
        return s
    }

    /// argmax_k p_k for sample b (the first maximum).
    public func predicted(_ b: Int) -> Int {
        var best = 0
        for k in 1..<max(classes, 1) where p(b, k) > p(b, best) { best = k }
        return best
    }
}

/// The gradient of G with respect to one member's readout (probabilities or values).
public struct MemberGradient: Sendable {
    public var probabilities: [Double]
    public var values: [Double]

    public init(batch: Int, classes: Int) {
        probabilities = Array(repeating: 0, count: batch * classes)
        values = Array(repeating: 0, count: classes == 0 ? batch : 0)
    }
}

/// What a model's output means to a probe.
public enum ReadoutKind: Sendable, Equatable {
    case classifier(classes: Int, sigmoid: Bool)
    case regressor

    init(_ output: Architecture.Output, outputCount: Int) throws(ProbeError) {
        switch output {
        case .logits: self = .classifier(classes: outputCount, sigmoid: false)
        case .probability:
            guard outputCount == 1 else { throw ProbeError("a `probability` model has one sigmoid output, this one has \(outputCount)") }
            self = .classifier(classes: 2, sigmoid: true)
        case .value:
            guard outputCount == 1 else { throw ProbeError("a `value` model (regressor) has one output, this one has \(outputCount)") }
            self = .regressor
        case .image: throw ProbeError("an image model (decoder) cannot be probed directly")
        }
    }

    public var classes: Int {
        if case .classifier(let k, _) = self { return k }
        return 0
    }

    /// Reads raw network outputs (batch × outputs, Float32) into a readout.
    func read(_ raw: UnsafeBufferPointer<Float>, batch: Int) -> MemberReadout {
        switch self {
        case .regressor:
            return MemberReadout(batch: batch, classes: 0, probabilities: [], logProbabilities: [],
                                 values: raw.map(Double.init))
        case .classifier(let k, let sigmoid):
            var p = [Double](repeating: 0, count: batch * k), lp = p
            for b in 0..<batch {
                if sigmoid {
                    let s = Double(raw[b])
                    p[b * 2] = 1 - s; p[b * 2 + 1] = s
                    lp[b * 2] = log1p(-s); lp[b * 2 + 1] = log(s)
                } else {
                    var m = -Double.infinity
                    for j in 0..<k { m = max(m, Double(raw[b * k + j])) }
                    var sum = 0.0
                    for j in 0..<k { sum += exp(Double(raw[b * k + j]) - m) }
                    let lse = m + log(sum)
                    for j in 0..<k {
                        lp[b * k + j] = Double(raw[b * k + j]) - lse
                        p[b * k + j] = exp(lp[b * k + j])
                    }
                }
            }
            return MemberReadout(batch: batch, classes: k, probabilities: p, logProbabilities: lp, values: [])
        }
    }

    /// Chains dG/d(readout) back to dG/d(raw outputs): the softmax Jacobian
    /// p ⊙ (g − ⟨g, p⟩), the sigmoid unit's (g₁ − g₀), or the identity.
    /// Writes the result (batch × raw outputs) into `out`.
    func pullback(_ g: MemberGradient, readout r: MemberReadout, into out: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .regressor:
            for b in 0..<r.batch { out[b] = Float(g.values[b]) }
        case .classifier(let k, let sigmoid):
            if sigmoid {
                for b in 0..<r.batch { out[b] = Float(g.probabilities[b * 2 + 1] - g.probabilities[b * 2]) }
                return
            }
            for b in 0..<r.batch {
                var dot = 0.0
                for j in 0..<k { dot += g.probabilities[b * k + j] * r.p(b, j) }
                for j in 0..<k { out[b * k + j] = Float(r.p(b, j) * (g.probabilities[b * k + j] - dot)) }
            }
        }
    }
}

/// A job or probe that cannot be used, with the key path at fault.
public struct ProbeError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
