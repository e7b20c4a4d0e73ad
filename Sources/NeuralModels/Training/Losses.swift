import Foundation
import TensorCore

/// Training losses: mean over the batch, with their gradients with respect to the
/// network's raw output.
public enum Losses {
    /// Softmax cross-entropy −log softmax(z)_y; gradient (softmax(z) − onehot(y)) / B.
    public static func crossEntropy(logits z: Tensor, labels: ArraySlice<Int>) -> (loss: Double, gradient: Tensor, correct: Int) {
        let k = z.shape.last!, b = z.count / k
        var grad = Tensor(shape: z.shape)
        var loss = 0.0, correct = 0
        z.withUnsafeBufferPointer { zp in
            grad.withUnsafeMutableBufferPointer { gp in
                for (r, label) in zip(0..<b, labels) {
                    let row = zp.baseAddress! + r * k
                    var m = -Float.infinity, arg = 0
                    for i in 0..<k where row[i] > m { m = row[i]; arg = i }
                    if arg == label { correct += 1 }
                    var s: Double = 0
                    for i in 0..<k { s += exp(Double(row[i] - m)) }
                    loss += log(s) - Double(row[label] - m)
                    for i in 0..<k {
                        gp[r * k + i] = Float(exp(Double(row[i] - m)) / s) / Float(b)
                    }
                    gp[r * k + label] -= 1 / Float(b)
                }
            }
        }
        return (loss / Double(b), grad, correct)
    }

    /// Mean squared error ½·mean((y − t)²)·2 = mean((y − t)²); gradient 2(y − t)/B.
    public static func meanSquaredError(_ y: Tensor, targets: ArraySlice<Float>) -> (loss: Double, gradient: Tensor) {
        let b = y.count
        var grad = Tensor(shape: y.shape)
        var loss = 0.0
        y.withUnsafeBufferPointer { yp in
            grad.withUnsafeMutableBufferPointer { gp in
                for (i, t) in zip(0..<b, targets) {
                    let d = yp[i] - t
                    loss += Double(d * d)
                    gp[i] = 2 * d / Float(b)
                }
            }
        }
        return (loss / Double(b), grad)
    }

    /// Binary cross-entropy of sigmoid(l) against x ∈ [0, 1], summed over pixels and
    /// averaged over the batch, computed stably from the logits l:
    /// max(l, 0) − l·x + log(1 + e^{−|l|}); gradient (σ(l) − x) / B.
    public static func binaryCrossEntropyWithLogits(_ l: Tensor, targets x: Tensor) -> (loss: Double, gradient: Tensor) {
        let b = l.shape[0]
        var grad = Tensor(shape: l.shape)
        var loss = 0.0
        l.withUnsafeBufferPointer { lp in
            x.withUnsafeBufferPointer { xp in
                grad.withUnsafeMutableBufferPointer { gp in
                    for i in 0..<lp.count {
                        let v = lp[i], t = xp[i]
                        loss += Double(max(v, 0) - v * t + log1p(exp(-abs(v))))
                        gp[i] = (Activation.sigmoid(v) - t) / Float(b)
                    }
                }
            }
        }
        return (loss / Double(b), grad)
    }
}
