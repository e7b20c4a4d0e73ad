import TensorCore

/// Batch normalisation with its inference statistics (PyTorch's `nn.BatchNorm1d/2d` in
/// `eval()` mode): y = (x − μ_c) / √(σ²_c + ε) · γ_c + β_c over channel axis 1.
public struct BatchNorm: Layer {
    public var weight: Tensor
    public var bias: Tensor
    public var runningMean: Tensor
    public var runningVariance: Tensor
    public var epsilon: Float
    public var names: (weight: String, bias: String)

    public init(weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor,
                epsilon: Float = 1e-5, names: (weight: String, bias: String) = ("weight", "bias")) {
        self.weight = weight; self.bias = bias
        self.runningMean = runningMean; self.runningVariance = runningVariance
        self.epsilon = epsilon; self.names = names
    }

    public var op: String { "batchnorm" }
    public var parameters: [Tensor] {
        get { [weight, bias] }
        set { weight = newValue[0]; bias = newValue[1] }
    }
    public var parameterNames: [String] { [names.weight, names.bias] }
    var channels: Int { weight.count }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        guard let c = input.first, c == channels else {
            return .failure(ShapeMismatch("input \(Shapes.describe(input)) does not have \(channels) channels first"))
        }
        return .success(input)
    }

    /// Per-channel scale γ/√(σ²+ε) and shift β − μ·scale.
    func affine() -> (scale: [Float], shift: [Float]) {
        let g = weight.scalars, b = bias.scalars, m = runningMean.scalars, v = runningVariance.scalars
        let scale = (0..<channels).map { g[$0] / (v[$0] + epsilon).squareRoot() }
        return (scale, (0..<channels).map { b[$0] - m[$0] * scale[$0] })
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        let (scale, shift) = affine()
        let area = x.sampleCount / channels
        var y = Tensor(shape: x.shape)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for i in 0..<xp.count {
                    let c = (i / area) % channels
                    yp[i] = xp[i] * scale[c] + shift[c]
                }
            }
        }
        return (y, nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let (scale, _) = affine()
        let area = r.input.sampleCount / channels
        var dx = Tensor(shape: dy.shape)
        var dg = [Float](repeating: 0, count: channels), db = dg
        let m = runningMean.scalars, v = runningVariance.scalars
        r.input.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    for i in 0..<gp.count {
                        let c = (i / area) % channels
                        dp[i] = gp[i] * scale[c]
                        if wantParameters {
                            dg[c] += gp[i] * (xp[i] - m[c]) / (v[c] + epsilon).squareRoot()
                            db[c] += gp[i]
                        }
                    }
                }
            }
        }
        guard wantParameters else { return (dx, []) }
        return (dx, [Tensor(shape: [channels], scalars: dg), Tensor(shape: [channels], scalars: db)])
    }
}
