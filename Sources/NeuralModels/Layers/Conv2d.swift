import TensorCore

/// 2-D cross-correlation over NCHW input, weight [out, in, kh, kw] (PyTorch's
/// `nn.Conv2d`, one group): y[b,o] = b_o + Σ_c W[o,c] ⋆ x[b,c] with stride, zero
/// padding and dilation.
///
/// 3×3 stride-1 convolutions (the common case) run by Winograd's F(2×2, 3×3) with the
/// kernel transformed once, when the weight is set; others lower to columns and one GEMM.
/// So does a convolution of one input channel (an image's first layer): Winograd's 16
/// products would each be one channel deep (and its input pullback one row high), where
/// columns give one product nine deep.
public struct Conv2d: Layer {
    public var weight: Tensor { didSet { transformedKernel = Self.transform(weight) } }
    public var bias: Tensor?
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var dilation: (Int, Int)
    public var names: (weight: String, bias: String?)
    /// The Winograd transform of a 3×3 `weight` ([16, out, in]), or nil for other kernels.
    private var transformedKernel: Tensor?

    public init(
        weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
        dilation: (Int, Int) = (1, 1), names: (weight: String, bias: String?) = ("weight", "bias")
    ) {
        self.weight = weight; self.bias = bias
        self.stride = stride; self.padding = padding; self.dilation = dilation
        self.names = names
        self.transformedKernel = Self.transform(weight)
    }

    private static func transform(_ weight: Tensor) -> Tensor? {
        weight.shape.count == 4 && weight.shape[2] == 3 && weight.shape[3] == 3
            ? Winograd3x3.transformKernel(weight) : nil
    }

    /// The transformed kernel when this layer's geometry suits Winograd (and it has more
    /// than one input channel).
    private var winogradKernel: Tensor? {
        Winograd3x3.applies(kernel: (weight.shape[2], weight.shape[3]), stride: stride, dilation: dilation,
                            padding: padding) && weight.shape[1] > 1 ? transformedKernel : nil
    }

    public var op: String { "conv2d" }
    public var parameters: [Tensor] {
        get { bias.map { [weight, $0] } ?? [weight] }
        set { weight = newValue[0]; if bias != nil { bias = newValue[1] } }
    }
    public var parameterNames: [String] { [names.weight] + (names.bias.map { [$0] } ?? []) }

    func geometry(_ input: [Int]) -> ConvGeometry {
        ConvGeometry(channels: input[0], input: (input[1], input[2]), kernel: (weight.shape[2], weight.shape[3]),
                     stride: stride, padding: padding, dilation: dilation)
    }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        guard input.count == 3 else {
            return .failure(ShapeMismatch("conv2d needs [channels, height, width] input, got \(Shapes.describe(input))"))
        }
        guard input[0] == weight.shape[1] else {
            return .failure(ShapeMismatch(
                "input has \(input[0]) channels but the weight \(Shapes.describe(weight.shape)) expects \(weight.shape[1])"))
        }
        let g = geometry(input)
        guard g.isValid else {
            return .failure(ShapeMismatch("kernel \(weight.shape[2])×\(weight.shape[3]) does not fit input \(Shapes.describe(input))"))
        }
        return .success([weight.shape[0], g.outputHeight, g.outputWidth])
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        if let u = winogradKernel {
            return (Winograd3x3.forward(x, kernel: u, bias: bias, padding: padding), nil)
        }
        return (Convolution.forward(x, weight: weight, bias: bias, geometry: geometry(Array(x.shape.dropFirst()))), nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        // dL/dx by Winograd where it applies; dL/dW and dL/db always by column lowering.
        let u = winogradKernel
        let g = wantParameters || u == nil
            ? Convolution.backward(r.input, weight: weight, outputGradient: dy,
                                   geometry: geometry(Array(r.input.shape.dropFirst())),
                                   wantInput: u == nil, wantParameters: wantParameters)
            : nil
        let dx = u.map { Winograd3x3.inputGradient(dy, kernel: $0, inputShape: r.input.shape, padding: padding) } ?? g!.input!
        guard wantParameters, let g else { return (dx, []) }
        return (dx, bias == nil ? [g.weight!] : [g.weight!, g.bias!])
    }
}

/// 2-D transposed convolution, weight [in, out, kh, kw] (PyTorch's `nn.ConvTranspose2d`,
/// one group): the adjoint of a convolution, with output extent
/// `(H − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1`.
public struct ConvTranspose2d: Layer {
    public var weight: Tensor
    public var bias: Tensor?
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var outputPadding: (Int, Int)
    public var dilation: (Int, Int)
    public var names: (weight: String, bias: String?)

    public init(
        weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
        outputPadding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
        names: (weight: String, bias: String?) = ("weight", "bias")
    ) {
        self.weight = weight; self.bias = bias
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding
        self.dilation = dilation; self.names = names
    }

    public var op: String { "conv_transpose2d" }
    public var parameters: [Tensor] {
        get { bias.map { [weight, $0] } ?? [weight] }
        set { weight = newValue[0]; if bias != nil { bias = newValue[1] } }
    }
    public var parameterNames: [String] { [names.weight] + (names.bias.map { [$0] } ?? []) }

    func outputExtent(_ input: [Int]) -> (Int, Int) {
        (Convolution.transposedExtent(input: input[1], kernel: weight.shape[2], stride: stride.0,
                                      padding: padding.0, dilation: dilation.0, outputPadding: outputPadding.0),
         Convolution.transposedExtent(input: input[2], kernel: weight.shape[3], stride: stride.1,
                                      padding: padding.1, dilation: dilation.1, outputPadding: outputPadding.1))
    }

    /// The geometry of the convolution that maps this layer's output back to its input.
    func geometry(_ input: [Int]) -> ConvGeometry {
        let (oh, ow) = outputExtent(input)
        return ConvGeometry(channels: weight.shape[1], input: (oh, ow), kernel: (weight.shape[2], weight.shape[3]),
                            stride: stride, padding: padding, dilation: dilation)
    }

    public func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> {
        guard input.count == 3 else {
            return .failure(ShapeMismatch("conv_transpose2d needs [channels, height, width] input, got \(Shapes.describe(input))"))
        }
        guard input[0] == weight.shape[0] else {
            return .failure(ShapeMismatch(
                "input has \(input[0]) channels but the weight \(Shapes.describe(weight.shape)) expects \(weight.shape[0])"))
        }
        guard outputPadding.0 < max(stride.0, dilation.0), outputPadding.1 < max(stride.1, dilation.1) else {
            return .failure(ShapeMismatch("output_padding must be smaller than stride or dilation"))
        }
        let (oh, ow) = outputExtent(input)
        let g = geometry(input)
        guard oh > 0, ow > 0, g.isValid, g.outputHeight == input[1], g.outputWidth == input[2] else {
            return .failure(ShapeMismatch("kernel and padding give an empty output for input \(Shapes.describe(input))"))
        }
        return .success([weight.shape[1], oh, ow])
    }

    public func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) {
        (Convolution.transposedForward(x, weight: weight, bias: bias, geometry: geometry(Array(x.shape.dropFirst()))), nil)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let g = Convolution.transposedBackward(r.input, weight: weight, outputGradient: dy,
                                               geometry: geometry(Array(r.input.shape.dropFirst())),
                                               wantParameters: wantParameters)
        guard wantParameters else { return (g.input!, []) }
        return (g.input!, bias == nil ? [g.weight!] : [g.weight!, g.bias!])
    }
}
