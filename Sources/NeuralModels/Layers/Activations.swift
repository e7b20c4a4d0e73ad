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
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in apply(xp.baseAddress!, into: yp.baseAddress!, count: xp.count) }
        }
        return (y, nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        var dx = Tensor(uninitializedShape: dy.shape)
        r.input.withUnsafeBufferPointer { xp in
            r.output.withUnsafeBufferPointer { yp in
                dy.withUnsafeBufferPointer { gp in
                    dx.withUnsafeMutableBufferPointer { dp in
                        inputGradient(input: xp.baseAddress!, output: yp.baseAddress!, outputGradient: gp.baseAddress!,
                                      into: dp.baseAddress!, count: gp.count)
                    }
                }
            }
        }
        return (dx, [])
    }

    /// y = f(x) for `count` elements: the kernel of ``forward(_:noise:)`` and of ``NetworkPass``.
    func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        switch kind {
        case .relu: for i in 0..<count { y[i] = x[i] < 0 ? 0 : x[i] }  // NaN stays NaN, as in PyTorch
        case .leakyReLU(let a): for i in 0..<count { y[i] = x[i] > 0 ? x[i] : a * x[i] }
        case .sigmoid: for i in 0..<count { y[i] = Self.sigmoid(x[i]) }
        case .tanh: for i in 0..<count { y[i] = Foundation.tanh(x[i]) }
        case .softplus: for i in 0..<count { y[i] = x[i] > 20 ? x[i] : log1p(exp(x[i])) }
        }
    }

    /// dL/dx = dL/dy · f′(x), from the input x and output y of ``apply(_:into:count:)``.
    func inputGradient(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                       outputGradient g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, count: Int) {
        switch kind {
        case .relu:
            // Eight at a time: a select, so the same bits as the scalar loop that ends it.
            var i = 0
            let (xr, gr, dr) = (UnsafeRawPointer(x), UnsafeRawPointer(g), UnsafeMutableRawPointer(dx))
            while i + 8 <= count {
                let xv = xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                let gv = gr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                dr.storeBytes(of: SIMD8<Float>().replacing(with: gv, where: xv .> 0), toByteOffset: 4 * i,
                              as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { dx[i] = x[i] > 0 ? g[i] : 0; i += 1 }
        case .leakyReLU(let a): for i in 0..<count { dx[i] = x[i] > 0 ? g[i] : a * g[i] }
        case .sigmoid: for i in 0..<count { dx[i] = g[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dx[i] = g[i] * (1 - y[i] * y[i]) }
        case .softplus: for i in 0..<count { dx[i] = x[i] > 20 ? g[i] : g[i] * Self.sigmoid(x[i]) }
        }
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
