import Foundation

/// Everything a term may read at a batch of points: each model's readout per ensemble
/// member, and the data-space points themselves.
public struct TermInput: Sendable {
    public var batch: Int
    /// Model name → one readout per member.
    public var readouts: ModelTable<[MemberReadout]>
    /// Data-space points, batch × dimension (flattened model input).
    public var x: [Double]
    public var dimension: Int

    public init(batch: Int, readouts: ModelTable<[MemberReadout]>, x: [Double], dimension: Int) {
        self.batch = batch; self.readouts = readouts; self.x = x; self.dimension = dimension
    }
}

/// A term's per-sample contributions to G and their gradients.
public struct TermOutput: Sendable {
    public var values: [Double]
    /// Model name → dG/d(readout) per member.
    public var gradients: ModelTable<[MemberGradient]> = [:]
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
        if members.count == 1 {   // no averaging: the member's own arrays
            var g = MemberGradient(batch: members[0].batch, classes: members[0].classes)
            let v = body(members[0], &g)
            return TermOutput(values: v, gradients: ModelTable(model, [g]))
        }
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
        return TermOutput(values: values, gradients: ModelTable(model, grads))
    }
}

/// Values keyed by model name, in the order they were added. A probe reads a handful of
/// models, and a term or an evaluation builds such a table at every step: a linear search
/// of a few names costs less than hashing them, and iteration has a fixed order, so sums
/// over models never depend on a process's hash seed.
public struct ModelTable<Value> {
    public private(set) var entries: [(name: String, value: Value)] = []

    public init() {}

    /// A table of one entry.
    public init(_ name: String, _ value: Value) { entries = [(name, value)] }

    /// An empty table with room for `capacity` entries.
    public init(capacity: Int) { entries.reserveCapacity(capacity) }

    public var isEmpty: Bool { entries.isEmpty }

    /// The value for `name`; setting nil removes it.
    public subscript(name: String) -> Value? {
        get {
            for e in entries where e.name == name { return e.value }
            return nil
        }
        set {
            let i = entries.firstIndex { $0.name == name }
            switch (i, newValue) {
            case let (i?, v?): entries[i].value = v
            case let (i?, nil): entries.remove(at: i)
            case let (nil, v?): entries.append((name, v))
            case (nil, nil): break
            }
        }
    }

    /// Changes the value for `name` in place, adding `initial` first if it is absent.
    public mutating func update(_ name: String, default initial: @autoclosure () -> Value, _ body: (inout Value) -> Void) {
        if let i = entries.firstIndex(where: { $0.name == name }) {
            body(&entries[i].value)
        } else {
            var v = initial()
            body(&v)
            entries.append((name, v))
        }
    }
}

extension ModelTable: Sequence {
    public func makeIterator() -> IndexingIterator<[(name: String, value: Value)]> { entries.makeIterator() }
}

extension ModelTable: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Value)...) {
        for (name, value) in elements { self[name] = value }
    }
}

extension ModelTable: Sendable where Value: Sendable {}
