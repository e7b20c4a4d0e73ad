import TensorCore

/// y = x Wᵀ + b over the last axis, W of shape [out, in] (PyTorch's `nn.Linear`).
///
/// Pullbacks: dL/dx = dL/dy · W, dL/dW = (dL/dy)ᵀ x, dL/db = Σ dL/dy over rows.
public struct Linear: Layer {
    public var weight: Tensor
    public var bias: Tensor?
    public var names: (weight: String, bias: String?)

    public init(weight: Tensor, bias: Tensor?, names: (weight: String, bias: String?) = ("weight", "bias")) {
        self.weight = weight
        self.bias = bias
        self.names = names
    }

    public var op: String { "linear" }
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public var parameters: [Tensor] {
        get { bias.map { [weight, $0] } ?? [weight] }
        set { weight = newValue[0]; if bias != nil { bias = newValue[1] } }
    }
    public var parameterNames: [String] { [names.weight] + (names.bias.map { [$0] } ?? []) }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        guard let last = input.last, last == inFeatures else {
            return .failure(ShapeMismatch(
                "input \(Shapes.describe(input)) does not end in \(inFeatures) features (weight \(Shapes.describe(weight.shape)))"))
        }
        return .success(input.dropLast() + [outFeatures])
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        let rows = x.count / inFeatures
        var y = Tensor(shape: x.shape.dropLast() + [outFeatures])
        y.withUnsafeMutableBufferPointer { yp in
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    for r in 0..<rows { (yp.baseAddress! + r * outFeatures).update(from: bp.baseAddress!, count: outFeatures) }
                }
            }
            x.withUnsafeBufferPointer { xp in
                weight.withUnsafeBufferPointer { wp in
                    BLAS.gemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
                              a: xp.baseAddress!, b: wp.baseAddress!, beta: bias == nil ? 0 : 1,
                              c: yp.baseAddress!)
                }
            }
        }
        return (y, nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let rows = r.input.count / inFeatures
        var dx = Tensor(shape: r.input.shape)
        dx.withUnsafeMutableBufferPointer { dp in
            dy.withUnsafeBufferPointer { gp in
                weight.withUnsafeBufferPointer { wp in
                    BLAS.gemm(m: rows, n: inFeatures, k: outFeatures,
                              a: gp.baseAddress!, b: wp.baseAddress!, c: dp.baseAddress!)
                }
            }
        }
        guard wantParameters else { return (dx, []) }
        var dw = Tensor(shape: weight.shape)
        dw.withUnsafeMutableBufferPointer { wp in
            dy.withUnsafeBufferPointer { gp in
                r.input.withUnsafeBufferPointer { xp in
                    BLAS.gemm(transA: true, m: outFeatures, n: inFeatures, k: rows,
                              a: gp.baseAddress!, b: xp.baseAddress!, c: wp.baseAddress!)
                }
            }
        }
        guard bias != nil else { return (dx, [dw]) }
        var db = Tensor(shape: [outFeatures])
        db.withUnsafeMutableBufferPointer { bp in
            dy.withUnsafeBufferPointer { gp in
                for row in 0..<rows { for o in 0..<outFeatures { bp[o] += gp[row * outFeatures + o] } }
            }
        }
        return (dx, [dw, db])
    }
}
