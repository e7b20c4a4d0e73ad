import TensorCore

/// 2-D max or average pooling over NCHW input (PyTorch's `nn.MaxPool2d` /
/// `nn.AvgPool2d` with `ceil_mode=False`, `count_include_pad=True`).
public struct Pool2d: Layer {
    public enum Kind: Sendable { case max, average }
    public var kind: Kind
    public var window: Pooling.Window

    public init(_ kind: Kind, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) {
        self.kind = kind
        self.window = Pooling.Window(kernel: kernel, stride: stride ?? kernel, padding: padding)
    }

    public var op: String { kind == .max ? "maxpool2d" : "avgpool2d" }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        guard input.count == 3 else {
            return .failure(ShapeMismatch("\(op) needs [channels, height, width] input, got \(Shapes.describe(input))"))
        }
        guard window.kernel.h > 0, window.kernel.w > 0, window.stride.h > 0, window.stride.w > 0,
              window.padding.h * 2 <= window.kernel.h, window.padding.w * 2 <= window.kernel.w
        else { return .failure(ShapeMismatch("padding must be at most half the kernel, and kernel and stride positive")) }
        let (oh, ow) = window.outputExtent(input[1], input[2])
        guard oh > 0, ow > 0 else {
            return .failure(ShapeMismatch("kernel \(window.kernel.h)×\(window.kernel.w) is larger than input \(Shapes.describe(input))"))
        }
        return .success([input[0], oh, ow])
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        switch kind {
        case .max: (Pooling.maxForward(x, window: window), nil)
        case .average: (Pooling.averageForward(x, window: window), nil)
        }
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        switch kind {
        case .max: (Pooling.maxBackward(r.input, outputGradient: dy, window: window), [])
        case .average: (Pooling.averageBackward(inputShape: r.input.shape, outputGradient: dy, window: window), [])
        }
    }
}
