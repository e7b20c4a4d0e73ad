import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// Every op's input and parameter pullbacks against central finite differences
/// (ε = 1e-3, directional derivatives in Float64, relative tolerance 5e-3; inputs of
/// kinked ops are kept ≥ 0.1 away from their kinks so ε never crosses one).
struct LayerGradientTests {
    static func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var g = SplitMix64(seed: seed)
        return Tensor(shape: shape) { _ in g.nextNormal() * scale }
    }

    /// Values with |x| in [0.1, 1]: no ReLU kink within ε.
    static func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        return Tensor(shape: shape) { _ in (g.nextUnit() < 0.5 ? -1 : 1) * (0.1 + 0.9 * g.nextUnit()) }
    }

    /// Distinct values 0.05 apart in random order: no max-pool tie within ε.
    static func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        let n = shape.reduce(1, *)
        let values = (0..<n).map { Float($0) * 0.05 - Float(n) * 0.025 }.shuffled(using: &g)
        return Tensor(shape: shape, scalars: values)
    }

    static func expectAgreement(_ layer: any Layer, _ x: Tensor, noiseSeed: UInt64? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        let mismatches = GradientChecker().check(layer, at: x, noiseSeed: noiseSeed)
        #expect(mismatches.isEmpty, "\(mismatches)", sourceLocation: sourceLocation)
    }

    struct LinearCase: Sendable, CustomTestStringConvertible {
        var input: [Int], out: Int, bias: Bool
        var testDescription: String { "input \(input) → \(out)\(bias ? "" : " no bias")" }
    }

    @Test("linear pullbacks", arguments: [
        LinearCase(input: [3, 5], out: 4, bias: true), LinearCase(input: [1, 7], out: 2, bias: false),
        LinearCase(input: [2, 3, 6], out: 5, bias: true), LinearCase(input: [64, 23], out: 128, bias: true),
    ])
    func linear(_ c: LinearCase) {
        let inF = c.input.last!
        let layer = Linear(weight: Self.random([c.out, inF], seed: 1, scale: 0.5),
                           bias: c.bias ? Self.random([c.out], seed: 2) : nil)
        Self.expectAgreement(layer, Self.random(c.input, seed: 3))
    }

    struct ConvCase: Sendable, CustomTestStringConvertible {
        var input: [Int], out: Int, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)
        var bias = true
        var testDescription: String { "x\(input) o\(out) k\(kernel) s\(stride) p\(padding) d\(dilation)" }
    }

    @Test("conv2d pullbacks", arguments: [
        ConvCase(input: [2, 2, 7, 6], out: 3, kernel: (3, 3), stride: (1, 1), padding: (1, 1), dilation: (1, 1)),
        ConvCase(input: [1, 3, 9, 8], out: 2, kernel: (3, 3), stride: (2, 2), padding: (0, 1), dilation: (1, 1)),
        ConvCase(input: [3, 2, 11, 9], out: 4, kernel: (3, 2), stride: (2, 1), padding: (1, 2), dilation: (1, 2)),
        ConvCase(input: [2, 1, 5, 5], out: 2, kernel: (5, 5), stride: (1, 1), padding: (0, 0), dilation: (1, 1), bias: false),
        ConvCase(input: [1, 2, 8, 8], out: 2, kernel: (3, 3), stride: (3, 2), padding: (2, 2), dilation: (2, 2)),
        // 3×3 stride 1 runs by Winograd: odd extents, paddings 0 and 2; with one input
        // channel by column lowering.
        ConvCase(input: [2, 2, 7, 9], out: 3, kernel: (3, 3), stride: (1, 1), padding: (0, 2), dilation: (1, 1)),
        ConvCase(input: [2, 1, 7, 9], out: 3, kernel: (3, 3), stride: (1, 1), padding: (0, 2), dilation: (1, 1)),
        ConvCase(input: [1, 3, 5, 4], out: 2, kernel: (3, 3), stride: (1, 1), padding: (2, 0), dilation: (1, 1), bias: false),
    ])
    func conv2d(_ c: ConvCase) {
        let layer = Conv2d(weight: Self.random([c.out, c.input[1], c.kernel.0, c.kernel.1], seed: 4, scale: 0.4),
                           bias: c.bias ? Self.random([c.out], seed: 5) : nil,
                           stride: c.stride, padding: c.padding, dilation: c.dilation)
        Self.expectAgreement(layer, Self.random(c.input, seed: 6))
    }

    struct ConvTCase: Sendable, CustomTestStringConvertible {
        var input: [Int], out: Int, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)
        var outputPadding: (Int, Int), dilation: (Int, Int)
        var testDescription: String { "x\(input) o\(out) k\(kernel) s\(stride) p\(padding) op\(outputPadding) d\(dilation)" }
    }

    @Test("conv_transpose2d pullbacks", arguments: [
        ConvTCase(input: [2, 3, 4, 4], out: 2, kernel: (3, 3), stride: (2, 2), padding: (1, 1), outputPadding: (1, 1), dilation: (1, 1)),
        ConvTCase(input: [1, 2, 3, 5], out: 3, kernel: (2, 2), stride: (1, 1), padding: (0, 0), outputPadding: (0, 0), dilation: (1, 1)),
        ConvTCase(input: [2, 2, 3, 4], out: 2, kernel: (3, 3), stride: (2, 2), padding: (1, 1), outputPadding: (1, 1), dilation: (2, 2)),
        ConvTCase(input: [1, 2, 3, 3], out: 1, kernel: (4, 3), stride: (3, 2), padding: (2, 0), outputPadding: (2, 1), dilation: (1, 1)),
    ])
    func convTranspose2d(_ c: ConvTCase) {
        let layer = ConvTranspose2d(weight: Self.random([c.input[1], c.out, c.kernel.0, c.kernel.1], seed: 7, scale: 0.4),
                                    bias: Self.random([c.out], seed: 8), stride: c.stride, padding: c.padding,
                                    outputPadding: c.outputPadding, dilation: c.dilation)
        Self.expectAgreement(layer, Self.random(c.input, seed: 9))
    }

    @Test("pooling pullbacks", arguments: [
        (2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 3, 0),
    ])
    func pooling(_ kernel: Int, _ stride: Int, _ padding: Int) {
        let x = Self.distinct([2, 3, 7, 8], seed: 10)
        Self.expectAgreement(Pool2d(.max, kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding)), x)
        Self.expectAgreement(Pool2d(.average, kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding)), x)
    }

    @Test("activation pullbacks", arguments: ["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "softmax"])
    func activations(_ op: String) {
        let layer: any Layer = switch op {
        case "relu": Activation(.relu)
        case "leaky_relu": Activation(.leakyReLU(slope: 0.2))
        case "sigmoid": Activation(.sigmoid)
        case "tanh": Activation(.tanh)
        case "softplus": Activation(.softplus)
        default: Softmax()
        }
        Self.expectAgreement(layer, Self.awayFromZero([3, 4, 5], seed: 11))
    }

    @Test("softplus is linear above its threshold")
    func softplusThreshold() {
        let x = Tensor(shape: [1, 3], scalars: [25, 30, -3])
        let y = Activation(.softplus)(x)
        #expect(y[flat: 0] == 25 && y[flat: 1] == 30)
        Self.expectAgreement(Activation(.softplus), x)
    }

    @Test("batchnorm pullbacks (2-d and 1-d inputs)", arguments: [[2, 3, 4, 5], [4, 3]])
    func batchnorm(_ shape: [Int]) {
        let c = shape[1]
        let layer = BatchNorm(weight: Self.random([c], seed: 12), bias: Self.random([c], seed: 13),
                              runningMean: Self.random([c], seed: 14),
                              runningVariance: Self.random([c], seed: 15).map { abs($0) + 0.5 })
        Self.expectAgreement(layer, Self.random(shape, seed: 16))
    }

    @Test("shape ops and dropout pullbacks")
    func shapeOps() {
        let x = Self.random([2, 3, 4, 2], seed: 17)
        Self.expectAgreement(Flatten(), x)
        Self.expectAgreement(Reshape(shape: [4, 6]), x)
        Self.expectAgreement(Dropout(probability: 0.3), x, noiseSeed: 99)
        // Probing mode: dropout is the identity.
        #expect(Dropout(probability: 0.3)(x) == x)
    }

    @Test("a wrong pullback is caught by the checker")
    func checkerDetectsErrors() {
        struct Wrong: Layer {
            var op: String { "wrong" }
            func outputShape(for input: [Int]) -> Result<[Int], ShapeMismatch> { .success(input) }
            func forward(_ x: Tensor, noise: inout TrainingNoise?) -> (output: Tensor, auxiliary: Tensor?) { (x * x, nil) }
            func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool) -> (input: Tensor, parameters: [Tensor]) {
                (dy * r.input, [])  // should be 2·x·dy
            }
        }
        #expect(!GradientChecker().check(Wrong(), at: Self.random([2, 5], seed: 1)).isEmpty)
    }
}
