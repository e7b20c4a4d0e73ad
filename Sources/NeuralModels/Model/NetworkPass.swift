import TensorCore

/// One network's forward pass kept for its input pullback, with buffers that live from one
/// call to the next.
///
/// A sampler evaluates the same network at the same batch size thousands of times a
/// second. For a *dense* network — linear layers over a flat sample and element-wise
/// activations, with flattens, reshapes and (inference-time) dropouts in between, the
/// usual tabular MLP — a pass keeps every intermediate in one buffer that lives as long as
/// the pass, and allocates nothing but the two tensors it returns. It runs the layers' own
/// kernels in the same order as ``Sequential/record(_:noise:)`` and
/// ``Sequential/pullback(_:outputGradient:wantParameters:)``, so the results are the same
/// bits. Any other network keeps the layer records of ``Sequential/record(_:noise:)``.
///
/// Each ``forward(_:)`` allows one ``inputGradient(outputGradient:)``, which consumes
/// what the forward pass kept. A pass is not thread-safe: each thread keeps its own.
public final class NetworkPass {
    public let network: Sequential
    /// The dense plan, or nil when the network has other layers.
    private let stages: [Stage]?
    /// Per-sample width of each stage's input, then of the last stage's output.
    private let widths: [Int]

    /// Trivial values (addresses into `network`'s tensors, an activation kind), so running
    /// the plan copies no references.
    private enum Stage {
        case linear(LinearKernel)
        case activation(Activation)
    }

    // General path.
    private var tape: [LayerRecord] = []
    // Dense path: the batch the buffer is laid out for, the retained input, and one buffer
    // holding each stage's output (forward) and each stage's input gradient (backward).
    private var batch = 0
    private var input: Tensor?
    private var buffer: UnsafeMutablePointer<Float>?
    private var outputOffsets: [Int] = []
    private var gradientOffsets: [Int] = []
    private var batchedInputShape: [Int] = []
    private var batchedOutputShape: [Int] = []

    public init(_ network: Sequential) {
        self.network = network
        var stages = [Stage](), widths = [network.inputShape.reduce(1, *)]
        var dense = true
        for (i, layer) in network.layers.enumerated() {
            let inputShape = i == 0 ? network.inputShape : network.layerShapes[i - 1]
            switch layer {
            case let l as Linear where inputShape.count == 1:
                stages.append(.linear(l.kernel))   // valid: `network` keeps l's tensors, unmutated
                widths.append(l.outFeatures)
            case let a as Activation:
                stages.append(.activation(a))
                widths.append(widths.last!)
            case is Flatten, is Reshape, is Dropout:
                continue   // the same floats in the same order (dropout is the identity when probing)
            default:
                dense = false
            }
            if !dense { break }
        }
        self.stages = dense ? stages : nil
        self.widths = widths
    }

    deinit { buffer?.deallocate() }

    /// Whether the pass runs on its own buffers (a dense network).
    public var isDense: Bool { stages != nil }

    /// The network's output for a batch shaped (B, *inputShape), kept for ``inputGradient(outputGradient:)``.
    public func forward(_ x: Tensor) -> Tensor {
        guard let stages else {
            var none: TrainingNoise? = nil
            tape = []   // the previous records go before the new ones are made
            tape = network.record(x, noise: &none)
            return tape.last?.output ?? x
        }
        let n = x.count / widths[0]
        precondition(n * widths[0] == x.count && x.shape.first == n, "input \(x.shape) is not a batch of \(network.inputShape)")
        layOut(batch: n)
        input = x
        let buffer = buffer!
        return x.withUnsafeBufferPointer { xp in
            var source = xp.baseAddress!
            for (i, stage) in stages.enumerated() {
                let out = buffer + outputOffsets[i]
                switch stage {
                case .linear(let l): l.apply(source, rows: n, into: out)
                case .activation(let a): a.apply(source, into: out, count: n * widths[i])
                }
                source = UnsafePointer(out)
            }
            return Tensor(shape: batchedOutputShape, scalars: UnsafeBufferPointer(start: source, count: n * widths.last!))
        }
    }

    /// dL/d(input) of the last ``forward(_:)``, given dL/d(output).
    public func inputGradient(outputGradient dy: Tensor) -> Tensor {
        guard let stages else {
            precondition(!tape.isEmpty || network.layers.isEmpty, "inputGradient without a forward pass")
            defer { tape = [] }
            return network.pullback(tape, outputGradient: dy, wantParameters: false).input
        }
        guard let input else { preconditionFailure("inputGradient without a forward pass") }
        defer { self.input = nil }
        let n = batch, buffer = buffer!
        precondition(dy.count == n * widths.last!, "output gradient \(dy.shape) for a batch of \(n)")
        return input.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                var g = gp.baseAddress!
                for i in stages.indices.reversed() {
                    let dx = buffer + gradientOffsets[i]
                    switch stages[i] {
                    case .linear(let l):
                        l.inputGradient(g, rows: n, into: dx)
                    case .activation(let a):
                        let x = i == 0 ? xp.baseAddress! : UnsafePointer(buffer + outputOffsets[i - 1])
                        a.inputGradient(input: x, output: buffer + outputOffsets[i], outputGradient: g, into: dx,
                                        count: n * widths[i])
                    }
                    g = UnsafePointer(dx)
                }
                return Tensor(shape: batchedInputShape, scalars: UnsafeBufferPointer(start: g, count: n * widths[0]))
            }
        }
    }

    /// Drops what the last forward pass kept for its pullback (layer records can be large:
    /// every activation of a CNN for the batch); a dense pass keeps its buffer.
    public func release() {
        tape = []
        input = nil
    }

    /// Sizes the buffer for batch `n` (kept while the batch stays the same).
    private func layOut(batch n: Int) {
        guard n != batch || buffer == nil else { return }
        buffer?.deallocate()
        var offset = 0
        outputOffsets = widths.dropFirst().map { w in defer { offset += n * w }; return offset }
        gradientOffsets = widths.dropLast().map { w in defer { offset += n * w }; return offset }
        buffer = .allocate(capacity: max(offset, 1))
        batch = n
        batchedInputShape = [n] + network.inputShape
        batchedOutputShape = [n] + network.outputShape
    }
}
