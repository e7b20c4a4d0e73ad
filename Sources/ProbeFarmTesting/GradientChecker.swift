import NeuralModels
import TensorCore

/// Checks a layer's pullbacks against central finite differences.
///
/// For a fixed random cotangent c the scalar L(x, θ) = ⟨f(x; θ), c⟩ is differentiated
/// along random directions v: the pullback's ⟨∇L, v⟩ must match
/// (L(x + εv) − L(x − εv)) / 2ε, accumulated in Float64. Directional derivatives keep
/// Float32 rounding small compared with the derivative itself.
public struct GradientChecker {
    public var epsilon: Float
    public var tolerance: Double
    public var directions: Int
    public var seed: UInt64

    public init(epsilon: Float = 1e-3, tolerance: Double = 5e-3, directions: Int = 3, seed: UInt64 = 7) {
        self.epsilon = epsilon
        self.tolerance = tolerance
        self.directions = directions
        self.seed = seed
    }

    public struct Mismatch: CustomStringConvertible {
        public var what: String
        public var analytic: Double
        public var numeric: Double
        public var description: String { "\(what): pullback \(analytic), finite difference \(numeric)" }
    }

    /// Returns every mismatch between the pullbacks of `layer` at `x` and finite
    /// differences (empty when they agree). `noiseSeed` fixes dropout masks.
    public func check(_ layer: any Layer, at x: Tensor, noiseSeed: UInt64? = nil) -> [Mismatch] {
        var noiseFloor = 0.0
        var rng = SplitMix64(seed: seed)
        func forward(_ l: any Layer, _ input: Tensor) -> (Tensor, Tensor?) {
            var noise: TrainingNoise? = noiseSeed.map { SplitMix64(seed: $0) }
            return l.forward(input, noise: &noise)
        }
        let (y, aux) = forward(layer, x)
        let c = Tensor(shape: y.shape) { _ in rng.nextNormal() }
        func loss(_ l: any Layer, _ input: Tensor) -> Double {
            let out = forward(l, input).0
            return zipDot(out, c)
        }
        // Float32 rounding of L is about 6e-8·Σ|yᵢcᵢ| per evaluation; divided by 2ε it
        // bounds how far the central difference can be from the truth for that reason.
        let roundingScale = y.withUnsafeBufferPointer { py in
            c.withUnsafeBufferPointer { pc in (0..<py.count).reduce(0.0) { $0 + abs(Double(py[$1]) * Double(pc[$1])) } }
        }
        noiseFloor = 16 * 6e-8 * (roundingScale + 1) / Double(epsilon)
        let record = LayerRecord(input: x, output: y, auxiliary: aux)
        let grads = layer.pullback(record, outputGradient: c, wantParameters: true)
        var mismatches = [Mismatch]()
        let h = Double(epsilon)
        for d in 0..<directions {
            let v = Tensor(shape: x.shape) { _ in rng.nextNormal() }
            let analytic = zipDot(grads.input, v)
            var xp = x, xm = x
            xp.add(v, scaledBy: epsilon)
            xm.add(v, scaledBy: -epsilon)
            let numeric = (loss(layer, xp) - loss(layer, xm)) / (2 * h)
            if !agree(analytic, numeric, floor: noiseFloor) {
                mismatches.append(Mismatch(what: "\(layer.op) input, direction \(d)", analytic: analytic, numeric: numeric))
            }
            for (k, p) in layer.parameters.enumerated() {
                let vp = Tensor(shape: p.shape) { _ in rng.nextNormal() }
                guard k < grads.parameters.count else {
                    mismatches.append(Mismatch(what: "\(layer.op) parameter \(k) has no gradient", analytic: .nan, numeric: .nan))
                    continue
                }
                let a = zipDot(grads.parameters[k], vp)
                var lp = layer, lm = layer
                var pp = p, pm = p
                pp.add(vp, scaledBy: epsilon)
                pm.add(vp, scaledBy: -epsilon)
                var ps = layer.parameters; ps[k] = pp; lp.parameters = ps
                ps = layer.parameters; ps[k] = pm; lm.parameters = ps
                let n = (loss(lp, x) - loss(lm, x)) / (2 * h)
                if !agree(a, n, floor: noiseFloor) {
                    mismatches.append(Mismatch(what: "\(layer.op) \(layer.parameterNames[k]), direction \(d)", analytic: a, numeric: n))
                }
            }
        }
        return mismatches
    }

    func agree(_ a: Double, _ b: Double, floor: Double) -> Bool {
        abs(a - b) <= tolerance * max(abs(a), abs(b)) + floor
    }
}

/// ⟨a, b⟩ accumulated in Float64.
public func zipDot(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count)
    return a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            var s = 0.0
            for i in 0..<pa.count { s += Double(pa[i]) * Double(pb[i]) }
            return s
        }
    }
}
