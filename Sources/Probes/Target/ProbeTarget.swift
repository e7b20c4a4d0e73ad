import Foundation
import NeuralModels
import Samplers
import TensorCore

/// A model as a probe uses it: one network per ensemble member and how to read its output.
public struct ProbedModel: Sendable {
    public var name: String
    public var members: [Sequential]
    public var kind: ReadoutKind
    public var inputShape: [Int]
    public var outputShape: [Int]

    public init(name: String, members: [Sequential], kind: ReadoutKind) {
        self.name = name
        self.members = members
        self.kind = kind
        inputShape = members[0].inputShape
        outputShape = members[0].outputShape
    }
}

/// The one type that knows models, probes and priors together: the density the sampler
/// sees, log p*(u) = −G(x(u))/τ + log|dx/du| on a data space, or
/// log p*(z) = log N(z; 0, I) − G(decoder(z))/τ on a latent space (−G/τ without prior).
///
/// A batch of chains is one forward and one backward pass per network (per ensemble
/// member): one GEMM per layer for all chains.
public struct ProbeTarget: LogDensity {
    public var space: Space
    /// Probed models by name (the decoder is not among them).
    public let models: [String: ProbedModel]
    public let decoder: Sequential?
    public var terms: [any ProbeTerm]
    public var temperature: Double
    /// The flattened data dimension (the probed models' input size).
    public var dataDimension: Int
    public var dataShape: [Int]

    public init(space: Space, models: [String: ProbedModel], decoder: Sequential?, terms: [any ProbeTerm],
                temperature: Double, dataDimension: Int, dataShape: [Int]) {
        self.space = space; self.models = models; self.decoder = decoder; self.terms = terms
        self.temperature = temperature; self.dataDimension = dataDimension; self.dataShape = dataShape
        ordered = models.keys.sorted().map { ($0, models[$0]!) }
        passes = PassPool(decoder: decoder, models: ordered.map(\.model.members))
    }

    /// The models in a fixed order (by name): gradients of several models are summed in
    /// this order, so the sum does not depend on a process's hash seed (a chain's draws
    /// must not), and an evaluation looks nothing up by name.
    private let ordered: [(name: String, model: ProbedModel)]
    /// Network passes with their buffers, one set per thread evaluating at a time.
    private let passes: PassPool

    public var dimension: Int {
        switch space {
        case .data(let s): s.free.count
        case .latent(_, let k, _): k
        }
    }

    /// Everything evaluated at a batch, for the density and for the run's outputs.
    public struct Evaluation {
        public var logDensity: [Double]
        public var gradient: [Double]
        public var energy: [Double]
        public var x: [Double]
        public var readouts: ModelTable<[MemberReadout]>
    }

    public func evaluate(_ positions: [Double], count: Int) -> (values: [Double], gradients: [Double]) {
        let e = evaluateFully(positions, count: count, wantGradient: true)
        return (e.logDensity, e.gradient)
    }

    /// Annealing scales G only: log p_β = −βG/τ + log prior (or log Jacobian).
    public func evaluate(_ positions: [Double], count: Int, inverseTemperature beta: Double) -> (values: [Double], gradients: [Double]) {
        evaluate(positions, count: count, inverseTemperatures: Array(repeating: beta, count: count))
    }

    /// Annealing per position (NUTS chains of a batch may be at different warm-up iterations).
    public func evaluate(_ positions: [Double], count: Int, inverseTemperatures betas: [Double]) -> (values: [Double], gradients: [Double]) {
        let e = evaluateFully(positions, count: count, wantGradient: true, betas: betas.allSatisfy { $0 == 1 } ? nil : betas)
        return (e.logDensity, e.gradient)
    }

    /// Data points, energies and model readouts (no gradient) for a batch of positions.
    public func describe(_ positions: [Double], count: Int) -> Evaluation {
        evaluateFully(positions, count: count, wantGradient: false)
    }

    /// Energies and model readouts at data points (n × dataDimension), e.g. reference data.
    public func describe(dataPoints x: [Double], count n: Int) -> (energy: [Double], readouts: ModelTable<[MemberReadout]>) {
        let set = passes.take()
        defer { passes.put(set) }
        let readouts = read(x, count: n, set: set)
        let input = TermInput(batch: n, readouts: readouts, x: x, dimension: dataDimension)
        var energy = Array(repeating: 0.0, count: n)
        for term in terms {
            let out = term.evaluate(input)
            for b in 0..<n { energy[b] += out.values[b] }
        }
        return (energy, readouts)
    }

    func read(_ x: [Double], count n: Int, set: PassPool.Set) -> ModelTable<[MemberReadout]> {
        let xTensor = Tensor(shape: set.shapes.data(n, dataShape), doubles: x)
        var readouts = ModelTable<[MemberReadout]>(capacity: ordered.count)
        for ((name, m), members) in zip(ordered, set.members) {
            readouts[name] = members.map { pass in
                pass.forward(xTensor).withUnsafeBufferPointer { m.kind.read($0, batch: n) }
            }
        }
        return readouts
    }

    func evaluateFully(_ u: [Double], count n: Int, wantGradient: Bool, betas: [Double]? = nil) -> Evaluation {
        let k = dimension, D = dataDimension
        let set = passes.take()
        defer { passes.put(set) }
        // 1. Sampler coordinates → data points. Without bounds or fixed features x = u,
        // and dx/du, log|dx/du| and its gradient stay empty (1, 0, 0).
        var x: [Double]
        var dxdu = [Double](), logJ = [Double](), dlogJ = [Double]()
        switch space {
        case .data(let s) where s.isIdentity:
            x = u
        case .data(let s):
            x = Array(repeating: 0, count: n * D)
            dxdu = Array(repeating: 0, count: n * k)
            logJ = Array(repeating: 0, count: n)
            dlogJ = Array(repeating: 0, count: n * k)
            for b in 0..<n {
                for (i, v) in s.fixed { x[b * D + i] = v }
                for (j, i) in s.free.enumerated() {
                    let t = s.transform(i, u[b * k + j])
                    x[b * D + i] = t.x
                    dxdu[b * k + j] = t.dxdu
                    logJ[b] += t.logJ
                    dlogJ[b * k + j] = t.dlogJ
                }
            }
        case .latent:
            let z = Tensor(shape: set.shapes.latent(n, k), doubles: u)
            x = set.decoder!.forward(z).withUnsafeBufferPointer { p in p.map(Double.init) }
        }
        // 2. Every probed model (every member) forward, kept for its pullback.
        let readouts = read(x, count: n, set: set)
        // 3. G = Σ terms, and dG/d(readouts), dG/dx.
        let input = TermInput(batch: n, readouts: readouts, x: x, dimension: D)
        // The first term's arrays are taken as they are, later terms' added in.
        var energy = [Double]()
        var readoutGrads = ModelTable<[MemberGradient]>()
        var dGdx = [Double]()
        for term in terms {
            let out = term.evaluate(input)
            if energy.isEmpty { energy = out.values } else { for b in 0..<n { energy[b] += out.values[b] } }
            guard wantGradient else { continue }
            if !out.xGradient.isEmpty {
                if dGdx.isEmpty { dGdx = out.xGradient } else { for i in dGdx.indices { dGdx[i] += out.xGradient[i] } }
            }
            if readoutGrads.isEmpty { readoutGrads = out.gradients; continue }
            for (name, gs) in out.gradients {
                readoutGrads.update(name, default: []) { acc in
                    guard !acc.isEmpty else { acc = gs; return }
                    for (m, g) in gs.enumerated() {
                        for i in g.probabilities.indices { acc[m].probabilities[i] += g.probabilities[i] }
                        for i in g.values.indices { acc[m].values[i] += g.values[i] }
                    }
                }
            }
        }
        if energy.isEmpty { energy = Array(repeating: 0, count: n) }
        // τ per position: annealing divides it by β.
        let taus = betas.map { $0.map { temperature / $0 } } ?? Array(repeating: temperature, count: n)
        var logDensity = (0..<n).map { -energy[$0] / taus[$0] }
        guard wantGradient else {
            switch space {
            case .data: for b in logJ.indices { logDensity[b] += logJ[b] }
            case .latent(_, _, let prior):
                if prior { for b in 0..<n { logDensity[b] -= 0.5 * (0..<k).reduce(0.0) { $0 + u[b * k + $1] * u[b * k + $1] } } }
            }
            return Evaluation(logDensity: logDensity, gradient: [], energy: energy, x: x, readouts: readouts)
        }
        // 4. Pull dG/d(readouts) back through every member to dG/dx, models in a fixed order.
        if dGdx.isEmpty { dGdx = Array(repeating: 0, count: n * D) }
        for (index, ((name, m), members)) in zip(ordered, set.members).enumerated() {
            guard let grads = readoutGrads[name] else { continue }
            let memberReadouts = readouts[name]!
            for (j, g) in grads.enumerated() where g.probabilities.contains(where: { $0 != 0 }) || g.values.contains(where: { $0 != 0 }) {
                var dy = Tensor(uninitializedShape: set.shapes.output(model: index, n, m.outputShape))
                dy.withUnsafeMutableBufferPointer { m.kind.pullback(g, readout: memberReadouts[j], into: $0) }
                let dx = members[j].inputGradient(outputGradient: dy)
                dx.withUnsafeBufferPointer { p in for i in 0..<p.count { dGdx[i] += Double(p[i]) } }
            }
        }
        // 5. To the sampler's coordinates.
        var gradient: [Double]
        switch space {
        case .data(let s):
            if logJ.isEmpty {
                gradient = dGdx   // x = u: scaled in place
                for i in 0..<(n * k) { gradient[i] = -gradient[i] / taus[i / k] }
            } else {
                gradient = Array(repeating: 0, count: n * k)
                for b in 0..<n {
                    logDensity[b] += logJ[b]
                    for (j, i) in s.free.enumerated() {
                        gradient[b * k + j] = -dGdx[b * D + i] * dxdu[b * k + j] / taus[b] + dlogJ[b * k + j]
                    }
                }
            }
        case .latent(_, _, let prior):
            gradient = Array(repeating: 0, count: n * k)
            let dx = Tensor(shape: set.shapes.decoderOutput(n, decoder!.outputShape), doubles: dGdx)
            let dz = set.decoder!.inputGradient(outputGradient: dx)
            dz.withUnsafeBufferPointer { p in
                for i in 0..<(n * k) { gradient[i] = -Double(p[i]) / taus[i / k] - (prior ? u[i] : 0) }
            }
            if prior {
                for b in 0..<n {
                    var s = 0.0
                    for j in 0..<k { s += u[b * k + j] * u[b * k + j] }
                    logDensity[b] -= 0.5 * s
                }
            }
        }
        return Evaluation(logDensity: logDensity, gradient: gradient, energy: energy, x: x, readouts: readouts)
    }
}

/// The network passes of one evaluation: the decoder's and every probed member's, in
/// ``ProbeTarget``'s model order. Passes are not thread-safe, so an evaluation takes a set
/// for its duration; a thread that finds none free builds one (a worker has one thread).
final class PassPool: @unchecked Sendable {
    final class Set {
        let decoder: NetworkPass?
        let members: [[NetworkPass]]
        /// Batched tensor shapes, made once per batch size.
        let shapes = Shapes()

        init(decoder: NetworkPass?, members: [[NetworkPass]]) {
            self.decoder = decoder
            self.members = members
        }
    }

    /// [batch] + a per-sample shape, kept for the last batch size asked (a worker's batch
    /// does not change): shape arrays are not rebuilt at every evaluation.
    final class Shapes {
        private var batch = -1
        private var cache: [[Int]?] = []

        private func shape(_ slot: Int, _ n: Int, _ sample: [Int]) -> [Int] {
            if n != batch { cache = []; batch = n }
            if slot < cache.count, let s = cache[slot] { return s }
            if slot >= cache.count { cache += Array(repeating: nil, count: slot + 1 - cache.count) }
            let s = [n] + sample
            cache[slot] = s
            return s
        }

        func latent(_ n: Int, _ k: Int) -> [Int] { shape(0, n, [k]) }
        func data(_ n: Int, _ sample: [Int]) -> [Int] { shape(1, n, sample) }
        func decoderOutput(_ n: Int, _ sample: [Int]) -> [Int] { shape(2, n, sample) }
        /// The output of the probed model at `index` in the target's model order.
        func output(model index: Int, _ n: Int, _ sample: [Int]) -> [Int] { shape(3 + index, n, sample) }
    }

    private let decoder: Sequential?
    private let models: [[Sequential]]
    private let lock = NSLock()
    private var free: [Set] = []

    init(decoder: Sequential?, models: [[Sequential]]) {
        self.decoder = decoder
        self.models = models
    }

    func take() -> Set {
        lock.lock()
        let set = free.popLast()
        lock.unlock()
        return set ?? Set(decoder: decoder.map(NetworkPass.init), members: models.map { $0.map(NetworkPass.init) })
    }

    func put(_ set: Set) {
        set.decoder?.release()
        for members in set.members { for pass in members { pass.release() } }
        lock.lock()
        free.append(set)
        lock.unlock()
    }
}
