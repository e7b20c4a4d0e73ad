import Foundation
import Probes

/// The job's question in words and as a formula (summary.json `question`, the report's
/// first section): each term of G as JOBSPEC §2 defines it, with the job's numbers.
public enum Question {
    public static func describe(_ plan: JobPlan) -> [String: Any] {
        let classNames = plan.encoding?.classes
        func cls(_ k: Int) -> String { classNames.map { k < $0.count ? "\(k) (\($0[k]))" : "\(k)" } ?? "\(k)" }
        func num(_ v: Double) -> String { String(format: "%g", v) }
        var terms = [[String: Any]]()
        var anchor: [Double]? = nil
        for (spec, wrapped) in zip(plan.job.probe, plan.target.terms) {
            let weight = (wrapped as? Weighted)?.weight ?? spec.weight
            let term = (wrapped as? Weighted)?.term ?? wrapped
            var formula: String, words: String
            switch term {
            case let l as LevelSet:
                let s = "2·\(num(l.sigma))²", m = l.model
                switch l.target {
                case .confident(let i):
                    formula = "(p\(i)[\(m)](x) − 1)² / \(s)"
                    words = "\(m) is sure x is class \(cls(i))"
                case let .ambiguous(i, j):
                    formula = "[ |p\(i) − p\(j)|² + (min(p\(i), p\(j)) − max_other p − 0.5)² ] / \(s), p = p[\(m)](x)"
                    words = "\(m) cannot decide between class \(cls(i)) and class \(cls(j)) (about 50/50, every other class unlikely)"
                case .probabilities(let q):
                    formula = "Σ_k (p_k[\(m)](x) − q_k)² / \(s), q = {" + q.keys.sorted().map { "\($0): \(num(q[$0]!))" }.joined(separator: ", ") + "}"
                    words = "\(m)'s probabilities are " + q.keys.sorted().map { "\(num(q[$0]! * 100)) % class \(cls($0))" }.joined(separator: ", ")
                case .uniform:
                    formula = "(max_k p_k[\(m)](x) − min_k p_k[\(m)](x))² / \(s)"
                    words = "\(m) finds every class equally likely"
                }
                words += ", within σ = \(num(l.sigma))"
            case let f as FixedLabel:
                formula = "−log p\(f.label)[\(f.model)](x)"
                words = "\(f.model) assigns x class \(cls(f.label))"
            case let f as FixedValue:
                formula = "(y[\(f.model)](x) − \(num(f.value)))²"
                words = "\(f.model) predicts \(num(f.value))"
            case let r as Risky:
                formula = "Σ_k |p_k[\(r.model)](x) − \(num(r.anchor))|^\(num(r.norm))"
                words = "\(r.model)'s probabilities are all near \(num(r.anchor)) (prediction-risky inputs)"
            case let e as Entropy:
                formula = "Σ_k p_k log p_k, p = p[\(e.model)](x)"
                words = "\(e.model) is as unsure as it can be (high entropy)"
            case let s as Sensitive:
                formula = "mean_j −log(1 − p^θj_ŷ(x)), θj = θ* + σε_j, ŷ = \(s.model)'s class"
                words = "small changes to \(s.model)'s parameters flip its decision at x"
            case let c as Contrast where c.classifiers:
                formula = "−log(1 − p_ŷb[\(c.a)](x)), ŷb = argmax p[\(c.b)](x)"
                words = "\(c.a) and \(c.b) disagree about x"
            case let c as Contrast:
                formula = "exp(−(y[\(c.a)](x) − y[\(c.b)](x))²)"
                words = "\(c.a) and \(c.b) predict different values at x"
            case let l as Localize:
                if l.anchor.count <= 256 { anchor = l.anchor }
                formula = "Σ_i w_i |x_i − a_i|^\(num(l.norm))"
                words = "x stays close to the anchor (\(spec.options["anchor"]?.value as? String ?? "a"))"
            default:
                formula = spec.kind
                words = spec.kind
            }
            let scaled = weight == 1 ? formula : "\(num(weight)) · \(formula)"
            terms.append(["term": spec.keyPath, "kind": spec.kind, "formula": scaled, "words": words, "weight": weight])
        }
        let space: String
        switch plan.target.space {
        case let .latent(decoder, dimension, prior):
            space = "x = \(decoder)(z), z ∈ ℝ^\(dimension)" + (prior ? ", prior z ~ N(0, I)" : " (no prior)")
        case .data(let s):
            space = "x ∈ ℝ^\(s.dimension)" + (s.fixed.isEmpty ? "" : ", \(s.fixed.count) features fixed")
        }
        let tau = plan.job.temperature
        return ["terms": terms, "space": space, "temperature": tau, "anchor": anchor ?? NSNull(),
                "density": "p*(x) ∝ exp(−G(x)/\(num(tau))), G = " + terms.map { "[\($0["formula"] as! String)]" }.joined(separator: " + ")]
    }
}
