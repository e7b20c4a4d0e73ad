import TensorCore

/// Layers applied in order to a batch, with their pullbacks chained backwards.
///
/// The shapes chain by construction: ``init(layers:inputShape:)`` checks every layer
/// against the per-sample shape its predecessor produces.
public struct Sequential: Sendable {
    public var layers: [any Layer]
    /// Per-sample input shape.
    public let inputShape: [Int]
    /// Per-sample output shape of each layer.
    public let layerShapes: [[Int]]

    public var outputShape: [Int] { layerShapes.last ?? inputShape }

    /// - Throws: ``SequentialShapeError`` naming the first layer whose input does not fit.
    public init(layers: [any Layer], inputShape: [Int]) throws(SequentialShapeError) {
        var shape = inputShape
        var shapes = [[Int]]()
        for (i, layer) in layers.enumerated() {
            switch layer.outputShape(for: shape) {
            case .success(let s): shape = s
            case .failure(let why): throw SequentialShapeError(layer: i, op: layer.op, reason: why.description)
            }
            shapes.append(shape)
        }
        self.layers = layers
        self.inputShape = inputShape
        self.layerShapes = shapes
    }

    /// The number of learnable scalars.
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.count } } }

    /// The model's output for a batch shaped (B, *inputShape).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var none: TrainingNoise? = nil
        var h = x
        for l in layers { h = l.forward(h, noise: &none).output }
        return h
    }

    /// Runs forward, keeping what each layer needs for its pullback.
    public func record(_ x: Tensor, noise: inout TrainingNoise?) -> [LayerRecord] {
        var tape = [LayerRecord]()
        tape.reserveCapacity(layers.count)
        var h = x
        for l in layers {
            let (y, aux) = l.forward(h, noise: &noise)
            tape.append(LayerRecord(input: h, output: y, auxiliary: aux))
            h = y
        }
        return tape
    }

    /// Pulls dL/d(output) back through the tape: dL/d(input) and, if asked, dL/dθ per
    /// layer (each in that layer's ``Layer/parameters`` order).
    public func pullback(_ tape: [LayerRecord], outputGradient: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [[Tensor]])
    {
        var g = outputGradient
        var grads = [[Tensor]](repeating: [], count: layers.count)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let r = layers[i].pullback(tape[i], outputGradient: g, wantParameters: wantParameters)
            g = r.input
            grads[i] = r.parameters
        }
        return (g, grads)
    }

    /// The output and the vector–Jacobian product with respect to the input.
    public func inputGradient(at x: Tensor, outputGradient: (Tensor) -> Tensor) -> (output: Tensor, gradient: Tensor) {
        var none: TrainingNoise? = nil
        let tape = record(x, noise: &none)
        let y = tape.last?.output ?? x
        return (y, pullback(tape, outputGradient: outputGradient(y), wantParameters: false).input)
    }
}

/// A layer of a ``Sequential`` whose input shape does not fit.
public struct SequentialShapeError: Error, Sendable, CustomStringConvertible {
    public var layer: Int
    public var op: String
    public var reason: String
    public var description: String { "layers[\(layer)] (\(op)): \(reason)" }
}
