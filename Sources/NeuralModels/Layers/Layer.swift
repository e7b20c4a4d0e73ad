import TensorCore

/// What a layer's forward pass kept for its pullback.
public struct LayerRecord: Sendable {
    public var input: Tensor
    public var output: Tensor
    /// Extra state some layers need (the dropout mask).
    public var auxiliary: Tensor?

    public init(input: Tensor, output: Tensor, auxiliary: Tensor? = nil) {
        self.input = input
        self.output = output
        self.auxiliary = auxiliary
    }
}

/// Training-time randomness (dropout masks); `nil` when probing, where every layer is
/// deterministic.
public typealias TrainingNoise = SplitMix64

/// One operation of a sequential model, with PyTorch's semantics.
///
/// Tensors are batched: the first dimension is the batch (chains or a minibatch), the
/// rest is PyTorch's per-sample layout. A layer computes its output and pulls gradients
/// back to its input and, when asked, to its parameters (in ``parameters`` order).
public protocol Layer: Sendable {
    /// The op name as in the architecture metadata (`conv2d`, `relu`, …).
    var op: String { get }
    /// Learnable tensors (weight then bias), possibly empty.
    var parameters: [Tensor] { get set }
    /// The state_dict names of ``parameters``, in the same order.
    var parameterNames: [String] { get }

    /// The per-sample output shape, or a reason the input shape does not fit.
    func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch>

    /// y = f(x). `noise` is non-nil only in training (dropout is then active).
    func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?)

    /// Given dL/dy, returns dL/dx and, if `wantParameters`, dL/dθ for ``parameters``.
    func pullback(_ record: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
}

/// Why a layer cannot take an input of some shape.
public struct ShapeMismatch: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Layer {
    public var parameterNames: [String] { [] }
    public var parameters: [Tensor] {
        get { [] }
        set { precondition(newValue.isEmpty, "\(op) has no parameters") }
    }

    /// y = f(x) in inference mode.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var none: TrainingNoise? = nil
        return forward(x, noise: &none).output
    }
}

/// Per-sample shape helpers.
enum Shapes {
    static func describe(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
}
