import Foundation
import TensorCore

/// Adam (Kingma & Ba 2015) with bias correction, as `torch.optim.Adam` (no weight decay):
/// m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr·m̂/(√v̂ + ε).
public struct Adam: Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    private var step = 0
    private var m: [[Tensor]] = []
    private var v: [[Tensor]] = []

    public init() {}

    /// Updates `network`'s parameters in place from `gradients` (per layer, per tensor).
    public mutating func update(_ network: inout Sequential, gradients: [[Tensor]], learningRate lr: Float) {
        if m.isEmpty {
            m = network.layers.map { $0.parameters.map { Tensor(shape: $0.shape) } }
            v = m
        }
        step += 1
        let c1 = 1 - pow(beta1, Float(step)), c2 = 1 - pow(beta2, Float(step))
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for l in network.layers.indices where !gradients[l].isEmpty {
            var params = network.layers[l].parameters
            for k in params.indices {
                gradients[l][k].withUnsafeBufferPointer { g in
                    m[l][k].withUnsafeMutableBufferPointer { mp in
                        v[l][k].withUnsafeMutableBufferPointer { vp in
                            params[k].withUnsafeMutableBufferPointer { p in
                                for i in 0..<p.count {
                                    mp[i] = b1 * mp[i] + (1 - b1) * g[i]
                                    vp[i] = b2 * vp[i] + (1 - b2) * g[i] * g[i]
                                    p[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                                }
                            }
                        }
                    }
                }
            }
            network.layers[l].parameters = params
        }
    }
}

/// A learning-rate schedule over the whole run (step t of T).
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    /// lr₀ throughout.
    case constant
    /// lr₀ · ½(1 + cos(π t/T)).
    case cosine
    /// lr₀, then ×0.1 at half and ×0.01 at three quarters of the run.
    case step

    public func rate(_ base: Float, step t: Int, of total: Int) -> Float {
        let f = Float(t) / Float(max(total, 1))
        switch self {
        case .constant: return base
        case .cosine: return base * 0.5 * (1 + cos(Float.pi * f))
        case .step: return base * (f < 0.5 ? 1 : f < 0.75 ? 0.1 : 0.01)
        }
    }
}
