import NeuralModels
import TensorCore
import Testing

/// A ``NetworkPass`` gives the same bits as ``Sequential/record(_:noise:)`` and
/// ``Sequential/pullback(_:outputGradient:wantParameters:)`` (whose pullbacks the layer
/// tests check against finite differences), on its own buffers for dense networks and
/// through layer records for the rest, whatever the batch and however often it is reused.
struct NetworkPassTests {
    static func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var g = SplitMix64(seed: seed)
        return Tensor(shape: shape) { _ in g.nextNormal() * scale }
    }

    static func linear(_ inputs: Int, _ outputs: Int, seed: UInt64, bias: Bool = true) -> Linear {
        Linear(weight: random([outputs, inputs], seed: seed, scale: 0.7),
               bias: bias ? random([outputs], seed: seed + 100, scale: 0.3) : nil)
    }

    /// Every dense layer kind: a flatten first (image input), every activation, a reshape
    /// and a dropout (identities when probing), a layer without bias, and widths that are
    /// not multiples of the vector width.
    static func dense() throws -> Sequential {
        try Sequential(layers: [
            Flatten(), linear(20, 37, seed: 1), Activation(.relu),
            linear(37, 9, seed: 2, bias: false), Activation(.leakyReLU(slope: 0.1)), Dropout(probability: 0.3),
            linear(9, 16, seed: 3), Activation(.sigmoid), Reshape(shape: [4, 4]), Flatten(),
            linear(16, 7, seed: 4), Activation(.tanh), linear(7, 5, seed: 5), Activation(.softplus),
            linear(5, 3, seed: 6),
        ], inputShape: [1, 5, 4])
    }

    /// The reference: records, then the layer-by-layer pullback.
    static func reference(_ net: Sequential, _ x: Tensor, _ dy: Tensor) -> (Tensor, Tensor) {
        var none: TrainingNoise? = nil
        let tape = net.record(x, noise: &none)
        return (tape.last!.output, net.pullback(tape, outputGradient: dy, wantParameters: false).input)
    }

    static func expectSameBits(_ net: Sequential, pass: NetworkPass, batch: Int, seed: UInt64,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let x = random([batch] + net.inputShape, seed: seed, scale: 2)
        let dy = random([batch] + net.outputShape, seed: seed + 1)
        let (y, dx) = reference(net, x, dy)
        let y2 = pass.forward(x)
        let dx2 = pass.inputGradient(outputGradient: dy)
        #expect(y2.shape == y.shape && dx2.shape == dx.shape, sourceLocation: sourceLocation)
        #expect(y2.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern), "output, batch \(batch)",
                sourceLocation: sourceLocation)
        #expect(dx2.scalars.map(\.bitPattern) == dx.scalars.map(\.bitPattern), "input gradient, batch \(batch)",
                sourceLocation: sourceLocation)
    }

    @Test("a dense network: same bits as the records, batches 1, 2, 3, 17, the buffer reused and resized")
    func denseSameBits() throws {
        let net = try Self.dense()
        let pass = NetworkPass(net)
        #expect(pass.isDense)
        for (i, batch) in [1, 2, 3, 17, 17, 2, 1, 1].enumerated() {
            Self.expectSameBits(net, pass: pass, batch: batch, seed: 10 * UInt64(i))
        }
    }

    @Test("results are values: a later pass does not change an earlier pass's output or gradient")
    func resultsAreValues() throws {
        let net = try Self.dense()
        let pass = NetworkPass(net)
        let y = pass.forward(Self.random([2, 1, 5, 4], seed: 1))
        let dx = pass.inputGradient(outputGradient: Self.random([2, 3], seed: 2))
        let (y0, dx0) = (y.scalars, dx.scalars)
        _ = pass.forward(Self.random([2, 1, 5, 4], seed: 3))
        _ = pass.inputGradient(outputGradient: Self.random([2, 3], seed: 4))
        #expect(y.scalars == y0 && dx.scalars == dx0)
    }

    @Test("other networks go through layer records: a convolution, a linear layer over a non-flat sample")
    func generalPath() throws {
        let conv = try Sequential(layers: [
            Conv2d(weight: Self.random([3, 1, 3, 3], seed: 1), bias: Self.random([3], seed: 2), padding: (1, 1)),
            Activation(.relu), Flatten(), Self.linear(48, 4, seed: 3),
        ], inputShape: [1, 4, 4])
        let rows = try Sequential(layers: [Self.linear(4, 5, seed: 4), Activation(.tanh)], inputShape: [3, 4])
        for net in [conv, rows] {
            let pass = NetworkPass(net)
            #expect(!pass.isDense)
            for (i, batch) in [1, 3, 2].enumerated() { Self.expectSameBits(net, pass: pass, batch: batch, seed: UInt64(i)) }
        }
    }
}
