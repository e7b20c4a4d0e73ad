import TensorCore

/// y = x Wᵀ + b over the last axis, W of shape [out, in] (PyTorch's `nn.Linear`).
///
/// Pullbacks: dL/dx = dL/dy · W, dL/dW = (dL/dy)ᵀ x, dL/db = Σ dL/dy over rows.
///
/// Small layers (at most ``transposeLimit`` weights) keep a copy of Wᵀ: a pass over one or
/// two rows (a chain or two) then accumulates contiguous rows of Wᵀ, vectorised across the
/// outputs, instead of taking one short dot product per output.
public struct Linear: Layer {
    public var weight: Tensor { didSet { transposedWeight = Self.transpose(weight) } }
    public var bias: Tensor?
    public var names: (weight: String, bias: String?)
    /// Wᵀ, [in, out], for a small weight; nil otherwise.
    private var transposedWeight: Tensor?

    /// The largest weight (in elements) that gets a transposed copy: 256 KiB.
    public static let transposeLimit = 65_536

    public init(weight: Tensor, bias: Tensor?, names: (weight: String, bias: String?) = ("weight", "bias")) {
        self.weight = weight
        self.bias = bias
        self.names = names
        self.transposedWeight = Self.transpose(weight)
    }

    private static func transpose(_ w: Tensor) -> Tensor? {
        guard w.shape.count == 2, w.count <= transposeLimit else { return nil }
        let (out, inF) = (w.shape[0], w.shape[1])
        var t = Tensor(uninitializedShape: [inF, out])
        w.withUnsafeBufferPointer { wp in
            t.withUnsafeMutableBufferPointer { tp in
                for o in 0..<out { for i in 0..<inF { tp[i * out + o] = wp[o * inF + i] } }
            }
        }
        return t
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
        var shape = x.shape
        shape[shape.count - 1] = outFeatures
        var y = Tensor(uninitializedShape: shape)   // every element written by the kernel
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                kernel.apply(xp.baseAddress!, rows: x.count / inFeatures, into: yp.baseAddress!)
            }
        }
        return (y, nil)
    }

    /// The layer's tensors as addresses: valid while this layer lives unmutated.
    var kernel: LinearKernel {
        LinearKernel(weight: weight.unsafeBaseAddress, transposedWeight: transposedWeight?.unsafeBaseAddress,
                     bias: bias?.unsafeBaseAddress, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    public func pullback(_ r: LayerRecord, outputGradient dy: Tensor, wantParameters: Bool)
        -> (input: Tensor, parameters: [Tensor])
    {
        let rows = r.input.count / inFeatures
        var dx = Tensor(uninitializedShape: r.input.shape)   // written by β = 0
        dx.withUnsafeMutableBufferPointer { dp in
            dy.withUnsafeBufferPointer { gp in kernel.inputGradient(gp.baseAddress!, rows: rows, into: dp.baseAddress!) }
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

/// The kernels of a ``Linear`` layer over raw addresses: what its Tensor-level pullbacks
/// and a ``NetworkPass`` both run, so the two give the same bits. A trivial value, so a
/// pass that keeps one per layer copies it without reference counting.
struct LinearKernel {
    var weight: UnsafePointer<Float>
    /// Wᵀ, [in, out], for a small weight: one or two rows then accumulate its contiguous
    /// rows, vectorised across the outputs.
    var transposedWeight: UnsafePointer<Float>?
    var bias: UnsafePointer<Float>?
    var inFeatures: Int
    var outFeatures: Int

    /// y = x Wᵀ + b for `rows` rows of `inFeatures`, into `rows × outFeatures` floats (every
    /// one written).
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        // The bias first (then accumulated onto), or β = 0.
        if let bias {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        let beta: Float = bias == nil ? 0 : 1
        if rows <= 2, let transposedWeight {
            BLAS.gemm(m: rows, n: outFeatures, k: inFeatures, a: x, b: transposedWeight, beta: beta, c: y)
        } else {
            BLAS.gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, b: weight, beta: beta, c: y)
        }
    }

    /// dL/dx = dL/dy · W for `rows` rows, into `rows × inFeatures` floats (every one written).
    func inputGradient(_ dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        BLAS.gemm(m: rows, n: inFeatures, k: outFeatures, a: dy, b: weight, c: dx)
    }
}
