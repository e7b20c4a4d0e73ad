import Foundation

/// `fixed-label {label c}`: G = −log p_c(x) (cross-entropy to class c).
public struct FixedLabel: ProbeTerm {
    public init(model: String, label: Int) { self.model = model; self.label = label }

    public var model: String
    public var label: Int
    public var models: [String] { [model] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        averaged(input, model: model) { r, g in
            (0..<r.batch).map { b in
                g.probabilities[b * r.classes + label] = -1 / r.p(b, label)
                return -r.logProbabilities[b * r.classes + label]
            }
        }
    }
}

/// `fixed-value {value t}`: G = (y(x) − t)².
public struct FixedValue: ProbeTerm {
    public init(model: String, value: Double) { self.model = model; self.value = value }

    public var model: String
    public var value: Double
    public var models: [String] { [model] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        averaged(input, model: model) { r, g in
            (0..<r.batch).map { b in
                let d = r.values[b] - value
                g.values[b] = 2 * d
                return d * d
            }
        }
    }
}

/// `risky {anchor α = 0.5, norm r = 1}`: G = Σ_k |p_k(x) − α|^r.
public struct Risky: ProbeTerm {
    public init(model: String, anchor: Double = 0.5, norm: Double = 1) { self.model = model; self.anchor = anchor; self.norm = norm }

    public var model: String
    public var anchor = 0.5
    public var norm = 1.0
    public var models: [String] { [model] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        averaged(input, model: model) { r, g in
            (0..<r.batch).map { b in
                var v = 0.0
                for k in 0..<r.classes {
                    let d = r.p(b, k) - anchor, a = abs(d)
                    v += pow(a, norm)
                    let sign: Double = d > 0 ? 1 : (d < 0 ? -1 : 0)
                    g.probabilities[b * r.classes + k] = a == 0 ? 0 : norm * pow(a, norm - 1) * sign
                }
                return v
            }
        }
    }
}

/// `entropy`: G = Σ_k p_k log p_k = −H(p(x)) (low where the model is unsure).
public struct Entropy: ProbeTerm {
    public init(model: String) { self.model = model }

    public var model: String
    public var models: [String] { [model] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        averaged(input, model: model) { r, g in
            (0..<r.batch).map { b in
                var v = 0.0
                for k in 0..<r.classes {
                    let lp = r.logProbabilities[b * r.classes + k]
                    v += r.p(b, k) * lp
                    g.probabilities[b * r.classes + k] = lp + 1
                }
                return v
            }
        }
    }
}

/// `sensitive {sigma s, copies K}`: G = (1/K) Σ_j −log(1 − p^{θ_j}_{ŷ*(x)}(x)), with ŷ* the
/// unperturbed model's class (held constant) and θ_j = θ* + s·ε_j drawn once from the
/// job seed (`perturbed` names that ensemble).
public struct Sensitive: ProbeTerm {
    public init(model: String, perturbed: String) { self.model = model; self.perturbed = perturbed }

    public var model: String
    public var perturbed: String
    public var models: [String] { [model, perturbed] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        let reference = input.readouts[model]![0]
        let labels = (0..<input.batch).map { reference.predicted($0) }
        var out = averaged(input, model: perturbed) { r, g in
            (0..<r.batch).map { b in
                let k = labels[b], c = r.complement(b, k)
                g.probabilities[b * r.classes + k] = 1 / c
                return -log(c)
            }
        }
        out.gradients[model] = [MemberGradient(batch: reference.batch, classes: reference.classes)]
        return out
    }
}

/// `contrast {models [a, b]}`: classifiers G = −log(1 − p^a_{ŷ_b(x)}(x)) (a disagrees with
/// b's prediction, held constant); regressors G = exp(−(y_a(x) − y_b(x))²).
public struct Contrast: ProbeTerm {
    public init(a: String, b: String, classifiers: Bool, scale: Double = 1) {
        self.a = a; self.b = b; self.classifiers = classifiers; self.scale = scale
    }

    public var a: String
    public var b: String
    public var classifiers: Bool
    /// Regressors: exp(−((y_a − y_b)/scale)²), so targets in the hundreds are not flat.
    public var scale = 1.0
    public var models: [String] { [a, b] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        let rb = input.readouts[b]!
        if classifiers {
            // ŷ_b from b's member-averaged probabilities.
            let labels = (0..<input.batch).map { s -> Int in
                var best = 0, bestP = -1.0
                for k in 0..<rb[0].classes {
                    let p = rb.reduce(0.0) { $0 + $1.p(s, k) }
                    if p > bestP { bestP = p; best = k }
                }
                return best
            }
            var out = averaged(input, model: a) { r, g in
                (0..<r.batch).map { s in
                    let k = labels[s], c = r.complement(s, k)
                    g.probabilities[s * r.classes + k] = 1 / c
                    return -log(c)
                }
            }
            out.gradients[b] = rb.map { MemberGradient(batch: $0.batch, classes: $0.classes) }
            return out
        }
        // Regressors: average over a's and b's members' values.
        let ra = input.readouts[a]!
        let ya = (0..<input.batch).map { s in ra.reduce(0.0) { $0 + $1.values[s] } / Double(ra.count) }
        let yb = (0..<input.batch).map { s in rb.reduce(0.0) { $0 + $1.values[s] } / Double(rb.count) }
        var values = [Double](), dya = [Double]()
        for s in 0..<input.batch {
            let d = (ya[s] - yb[s]) / scale, v = exp(-d * d)
            values.append(v)
            dya.append(-2 * d * v / scale)
        }
        func spread(_ members: [MemberReadout], _ sign: Double) -> [MemberGradient] {
            members.map { m in
                var g = MemberGradient(batch: m.batch, classes: 0)
                for s in 0..<m.batch { g.values[s] = sign * dya[s] / Double(members.count) }
                return g
            }
        }
        return TermOutput(values: values, gradients: [a: spread(ra, 1), b: spread(rb, -1)])
    }
}

/// `level-set {target, sigma σ = 0.05}` (BAYES-TREX's relaxed level sets): each statistic s
/// with target t adds (s − t)²/(2σ²).
public struct LevelSet: ProbeTerm {
    public enum Target: Sendable, Equatable {
        /// s = p_i, t = 1.
        case confident(Int)
        /// s₁ = |p_i − p_j|, t₁ = 0; s₂ = min(p_i, p_j) − max_{k≠i,j} p_k, t₂ = 0.5.
        case ambiguous(Int, Int)
        /// Every class k: s = p_k, t = q_k (0 where not given).
        case probabilities([Int: Double])
        /// s = max p − min p, t = 0.
        case uniform
    }

    public var model: String
    public var target: Target
    public var sigma = 0.05
    public var models: [String] { [model] }

    public init(model: String, target: Target, sigma: Double = 0.05) {
        self.model = model; self.target = target; self.sigma = sigma
    }

    /// The classes the target is about (BAYES-TREX's "target class confidence").
    public var targetClasses: [Int] {
        switch target {
        case .confident(let i): return [i]
        case let .ambiguous(i, j): return [i, j]
        case .probabilities(let q): return q.keys.sorted()
        case .uniform: return []
        }
    }

    /// The target's statistics s at probabilities p, each with its target t.
    public func statistics(_ p: [Double]) -> [(value: Double, target: Double)] {
        switch target {
        case .confident(let i): return [(p[i], 1)]
        case let .ambiguous(i, j):
            let others = p.indices.filter { $0 != i && $0 != j }.map { p[$0] }.max() ?? 0
            return [(abs(p[i] - p[j]), 0), (min(p[i], p[j]) - others, 0.5)]
        case .probabilities(let q): return p.indices.map { (p[$0], q[$0] ?? 0) }
        case .uniform: return [((p.max() ?? 0) - (p.min() ?? 0), 0)]
        }
    }

    /// Inside the level set: every statistic within 2σ of its target.
    public func contains(_ p: [Double]) -> Bool {
        statistics(p).allSatisfy { abs($0.value - $0.target) <= 2 * sigma }
    }

    public func evaluate(_ input: TermInput) -> TermOutput {
        let c = 1 / (2 * sigma * sigma)
        return averaged(input, model: model) { r, g in
            (0..<r.batch).map { b in
                let K = r.classes
                func add(_ k: Int, _ dv: Double) { g.probabilities[b * K + k] += dv }
                switch target {
                case .confident(let i):
                    let d = r.p(b, i) - 1
                    add(i, 2 * c * d)
                    return c * d * d
                case .ambiguous(let i, let j):
                    let pi = r.p(b, i), pj = r.p(b, j)
                    let s1 = abs(pi - pj)
                    let sign: Double = pi > pj ? 1 : (pi < pj ? -1 : 0)
                    add(i, 2 * c * s1 * sign); add(j, -2 * c * s1 * sign)
                    var other = -1, otherP = 0.0  // max over the empty set is 0
                    for k in 0..<K where k != i && k != j && (other < 0 || r.p(b, k) > otherP) { other = k; otherP = r.p(b, k) }
                    let lo = pi <= pj ? i : j
                    let s2 = min(pi, pj) - otherP - 0.5
                    add(lo, 2 * c * s2)
                    if other >= 0 { add(other, -2 * c * s2) }
                    return c * (s1 * s1 + s2 * s2)
                case .probabilities(let q):
                    var v = 0.0
                    for k in 0..<K {
                        let d = r.p(b, k) - (q[k] ?? 0)
                        v += c * d * d
                        add(k, 2 * c * d)
                    }
                    return v
                case .uniform:
                    var hi = 0, lo = 0
                    for k in 0..<K {
                        if r.p(b, k) > r.p(b, hi) { hi = k }
                        if r.p(b, k) < r.p(b, lo) { lo = k }
                    }
                    let s = r.p(b, hi) - r.p(b, lo)
                    if hi != lo { add(hi, 2 * c * s); add(lo, -2 * c * s) }
                    return c * s * s
                }
            }
        }
    }
}

/// `localize {anchor a, norm r = 2, weight λ, feature-weights w = 1}`:
/// G = λ Σ_i w_i |x_i − a_i|^r, on the data-space point x.
public struct Localize: ProbeTerm {
    public init(anchor: [Double], norm: Double = 2, featureWeights: [Double]? = nil) {
        self.anchor = anchor; self.norm = norm; self.featureWeights = featureWeights
    }

    public var anchor: [Double]
    public var norm = 2.0
    public var featureWeights: [Double]?
    public var models: [String] { [] }

    public func evaluate(_ input: TermInput) -> TermOutput {
        let d = input.dimension
        var values = [Double](repeating: 0, count: input.batch)
        var grad = [Double](repeating: 0, count: input.batch * d)
        for b in 0..<input.batch {
            for i in 0..<d {
                let w = featureWeights?[i] ?? 1
                let diff = input.x[b * d + i] - anchor[i], a = abs(diff)
                values[b] += w * pow(a, norm)
                if a > 0 { grad[b * d + i] = w * norm * pow(a, norm - 1) * (diff > 0 ? 1 : -1) }
            }
        }
        return TermOutput(values: values, xGradient: grad)
    }
}

/// A term times its `weight` (JOBSPEC: every term takes an optional weight, default 1).
public struct Weighted: ProbeTerm {
    public init(term: any ProbeTerm, weight: Double) { self.term = term; self.weight = weight }

    public var term: any ProbeTerm
    public var weight: Double
    public var models: [String] { term.models }

    public func evaluate(_ input: TermInput) -> TermOutput {
        var out = term.evaluate(input)
        guard weight != 1 else { return out }
        out.values = out.values.map { $0 * weight }
        out.xGradient = out.xGradient.map { $0 * weight }
        for (k, gs) in out.gradients {
            out.gradients[k] = gs.map { g in
                var g = g
                g.probabilities = g.probabilities.map { $0 * weight }
                g.values = g.values.map { $0 * weight }
                return g
            }
        }
        return out
    }
}
