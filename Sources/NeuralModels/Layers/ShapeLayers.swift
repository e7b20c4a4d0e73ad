import TensorCore

/// Flattens every per-sample dimension into one (PyTorch's `nn.Flatten()`).
public struct Flatten: Layer {
    public init() {}
    public var op: String { "flatten" }
    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        .success([input.reduce(1, *)])
    }
    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        (x.reshaped([x.shape[0], x.sampleCount]), nil)
    }
    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        (dy.reshaped(r.input.shape), [])
    }
}

/// Reshapes each sample to `shape` (PyTorch's `x.view(-1, *shape)`).
public struct Reshape: Layer {
    public var shape: [Int]
    public init(shape: [Int]) { self.shape = shape }
    public var op: String { "reshape" }
    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        input.reduce(1, *) == shape.reduce(1, *)
            ? .success(shape)
            : .failure(ShapeMismatch("cannot reshape \(Shapes.describe(input)) to \(Shapes.describe(shape))"))
    }
    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        (x.reshaped([x.shape[0]] + shape), nil)
    }
    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        (dy.reshaped(r.input.shape), [])
    }
}

/// Inverted dropout: identity when probing; in training, zeroes each element with
/// probability `p` and scales the rest by 1/(1 − p), as PyTorch.
public struct Dropout: Layer {
    public var probability: Float
    public init(probability: Float = 0.5) { self.probability = probability }
    public var op: String { "dropout" }
    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> { .success(input) }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        guard noise != nil, probability > 0 else { return (x, nil) }
        let keep = 1 - probability
        let mask = Tensor(shape: x.shape) { _ in noise!.nextUnit() < keep ? 1 / keep : 0 }
        return (x * mask, mask)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        guard let mask = r.auxiliary else { return (dy, []) }
        return (dy * mask, [])
    }
}
