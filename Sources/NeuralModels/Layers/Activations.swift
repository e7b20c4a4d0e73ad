import Foundation
import TensorCore

/// An element-wise activation: y = f(x), dL/dx = dL/dy · f′(x).
public struct Activation: Layer {
    public enum Kind: Sendable, Equatable {
        case relu
        /// max(0, x) + slope · min(0, x)
        case leakyReLU(slope: Float)
        case sigmoid
        case tanh
        /// log(1 + eˣ), linear above x = 20 (PyTorch's threshold with beta = 1).
        case softplus
    }

    public var kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public var op: String {
        switch kind {
        case .relu: "relu"
        case .leakyReLU: "leaky_relu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .softplus: "softplus"
        }
    }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> { .success(input) }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        let y: Tensor
        switch kind {
        case .relu: y = x.map { $0 > 0 ? $0 : 0 }
        case .leakyReLU(let a): y = x.map { $0 > 0 ? $0 : a * $0 }
        case .sigmoid: y = x.map(Self.sigmoid)
        case .tanh: y = x.map { Foundation.tanh($0) }
        case .softplus: y = x.map { $0 > 20 ? $0 : log1p(exp($0)) }
        }
        return (y, nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let dx: Tensor
        switch kind {
        case .relu: dx = r.input.zip(dy) { x, g in x > 0 ? g : 0 }
        case .leakyReLU(let a): dx = r.input.zip(dy) { x, g in x > 0 ? g : a * g }
        case .sigmoid: dx = r.output.zip(dy) { y, g in g * y * (1 - y) }
        case .tanh: dx = r.output.zip(dy) { y, g in g * (1 - y * y) }
        case .softplus: dx = r.input.zip(dy) { x, g in x > 20 ? g : g * Self.sigmoid(x) }
        }
        return (dx, [])
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }
}

/// Softmax over the last axis: yᵢ = exp(xᵢ) / Σⱼ exp(xⱼ); dL/dx = y ⊙ (dL/dy − ⟨dL/dy, y⟩).
public struct Softmax: Layer {
    public init() {}
    public var op: String { "softmax" }
    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        input.isEmpty ? .failure(ShapeMismatch("softmax needs at least one axis")) : .success(input)
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        let n = x.shape.last ?? 1
        var y = Tensor(shape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for row in stride(from: 0, to: xp.count, by: n) {
                    var m = -Float.infinity
                    for i in 0..<n { m = max(m, xp[row + i]) }
                    var s: Float = 0
                    for i in 0..<n { let e = exp(xp[row + i] - m); yp[row + i] = e; s += e }
                    for i in 0..<n { yp[row + i] /= s }
                }
            }
        }
        return (y, nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let n = r.output.shape.last ?? 1
        var dx = Tensor(shape: dy.shape)
        r.output.withUnsafeBufferPointer { yp in
            dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    for row in stride(from: 0, to: yp.count, by: n) {
                        var dot: Float = 0
                        for i in 0..<n { dot += gp[row + i] * yp[row + i] }
                        for i in 0..<n { dp[row + i] = yp[row + i] * (gp[row + i] - dot) }
                    }
                }
            }
        }
        return (dx, [])
    }
}
