import Foundation

/// Everything a term may read at a batch of points: each model's readout per ensemble
/// member, and the data-space points themselves.
public struct TermInput: Sendable {
    public var batch: Int
    /// Model name → one readout per member.
    public var readouts: [String: [MemberReadout]]
    /// Data-space points, batch × dimension (flattened model input).
    public var x: [Double]
    public var dimension: Int

    public init(batch: Int, readouts: [String: [MemberReadout]], x: [Double], dimension: Int) {
        self.batch = batch; self.readouts = readouts; self.x = x; self.dimension = dimension
    }
}

/// A term's per-sample contributions to G and their gradients.
public struct TermOutput: Sendable {
    public var values: [Double]
    /// Model name → dG/d(readout) per member.
    public var gradients: [String: [MemberGradient]] = [:]
    /// dG/dx (batch × dimension) for terms on x itself, empty otherwise.
    public var xGradient: [Double] = []
}

/// One term of G(x) = Σ terms: a value per sample and its gradient with respect to model
/// readouts or x. It knows nothing of networks, spaces or samplers.
public protocol ProbeTerm: Sendable {
    /// The models this term reads.
    var models: [String] { get }
    func evaluate(_ input: TermInput) -> TermOutput
}

extension ProbeTerm {
    /// Averages a per-member term over a model's members (the ensemble standing for
    /// q*(θ)): G = (1/K) Σₖ g(readoutₖ).
    func averaged(_ input: TermInput, model: String,
                  _ body: (MemberReadout, inout MemberGradient) -> [Double]) -> TermOutput {
        let members = input.readouts[model]!
        var values = [Double](repeating: 0, count: input.batch)
        var grads = [MemberGradient]()
        let w = 1 / Double(members.count)
        for r in members {
            var g = MemberGradient(batch: r.batch, classes: r.classes)
            let v = body(r, &g)
            for b in 0..<input.batch { values[b] += w * v[b] }
            for i in g.probabilities.indices { g.probabilities[i] *= w }
            for i in g.values.indices { g.values[i] *= w }
            grads.append(g)
        }
        return TermOutput(values: values, gradients: [model: grads])
    }
}
