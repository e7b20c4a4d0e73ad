import Foundation
import NeuralModels
import Probes

/// The answer's figures (JOBSPEC §4, summary.json `answer`): what the models say at the
/// draws and, computed the same way, at the reference data.
public enum Answer {
    /// Items of one set (the merged draws, or the reference data) as the models see them.
    public struct Items {
        public var count: Int
        /// Data points, count × data dimension.
        public var x: [Float]
        /// Model outputs, count × the plan's output columns (ensemble means).
        public var outputs: [Float]
        public var energy: [Double]
        /// Class labels (reference data that has them).
        public var labels: [Int]?

        public init(count: Int, x: [Float], outputs: [Float], energy: [Double], labels: [Int]?) {
            self.count = count
            self.x = x
            self.outputs = outputs
            self.energy = energy
            self.labels = labels
        }
    }

    /// Evaluates the plan's models and G at the reference data, in batches on every core.
    public static func evaluate(_ reference: ReferenceData, plan: JobPlan) -> Items {
        let D = plan.target.dataDimension, n = reference.count, batch = 256
        let parts = parallelMap((n + batch - 1) / batch) { i in
            let first = i * batch, m = min(batch, n - first)
            let x = reference.inputs[(first * D)..<((first + m) * D)].map(Double.init)
            let e = plan.target.describe(dataPoints: x, count: m)
            return (energy: e.energy, outputs: outputRows(e.readouts, count: m, plan: plan))
        }
        return Items(count: n, x: reference.inputs, outputs: parts.flatMap(\.outputs), energy: parts.flatMap(\.energy),
                     labels: reference.labels)
    }

    /// Each output column's ensemble mean per item, in the plan's column order (outputs.npy).
    static func outputRows(_ readouts: ModelTable<[MemberReadout]>, count n: Int, plan: JobPlan) -> [Float] {
        let width = plan.outputColumns.reduce(0) { $0 + $1.width }
        var out = [Float]()
        out.reserveCapacity(n * width)
        for b in 0..<n {
            for (name, w) in plan.outputColumns {
                let members = readouts[name]!
                for j in 0..<w {
                    let v = members.reduce(0.0) { $0 + ($1.classes > 0 ? $1.p(b, j) : $1.values[b]) } / Double(members.count)
                    out.append(Float(v))
                }
            }
        }
        return out
    }

    /// The figures of one set: each model's outputs, then each probe term's own.
    public static func figures(_ items: Items, plan: JobPlan, reference: Bool) -> [String: Any] {
        let n = items.count
        let width = plan.outputColumns.reduce(0) { $0 + $1.width }
        var offsets = [String: (start: Int, width: Int)](), start = 0
        for (name, w) in plan.outputColumns { offsets[name] = (start, w); start += w }
        func column(_ j: Int) -> [Double] { (0..<n).map { Double(items.outputs[$0 * width + j]) } }
        func probabilities(_ model: String, _ b: Int) -> [Double] {
            let o = offsets[model]!
            return (0..<o.width).map { Double(items.outputs[b * width + o.start + $0]) }
        }
        func predicted(_ model: String, _ b: Int) -> Int {
            let o = offsets[model]!
            var best = 0
            for k in 1..<o.width where items.outputs[b * width + o.start + k] > items.outputs[b * width + o.start + best] { best = k }
            return best
        }

        var models = [String: Any]()
        for (name, w) in plan.outputColumns {
            let o = offsets[name]!, classifier = plan.target.models[name]!.kind.classes > 0
            let columns = (0..<w).map { column(o.start + $0) }
            var m: [String: Any] = [
                "kind": classifier ? "probabilities" : "values",
                "mean": columns.map { Summary.mean($0) }, "sd": columns.map { Summary.sd($0) },
                "quantiles": Dictionary(uniqueKeysWithValues: Summary.levels.map { q in
                    (String(format: "q%02d", Int(q * 100)), columns.map { Summary.quantile($0, q) })
                }),
            ]
            if classifier {
                var counts = Array(repeating: 0, count: w)
                for b in 0..<n { counts[predicted(name, b)] += 1 }
                m["predicted"] = counts.map { Double($0) / Double(max(n, 1)) }
                if let labels = items.labels {
                    m["accuracy"] = Double((0..<n).filter { predicted(name, $0) == labels[$0] }.count) / Double(max(n, 1))
                }
            }
            models[name] = m
        }

        var terms = [[String: Any]]()
        for (spec, wrapped) in zip(plan.job.probe, plan.target.terms) {
            var t: [String: Any] = ["term": spec.keyPath]
            let term = (wrapped as? Weighted)?.term ?? wrapped
            switch term {
            case let l as LevelSet:
                let inside = (0..<n).filter { l.contains(probabilities(l.model, $0)) }.count
                t["inside"] = Double(inside) / Double(max(n, 1))
                // BAYES-TREX's Table 2: the target classes' confidence; on reference data,
                // over the items labelled with one of them.
                var rows = Array(0..<n)
                if reference, let labels = items.labels, !l.targetClasses.isEmpty {
                    rows = rows.filter { l.targetClasses.contains(labels[$0]) }
                    t["items"] = rows.count
                }
                if reference && items.labels == nil && !l.targetClasses.isEmpty { t["items_note"] = "no labels: every item" }
                let o = offsets[l.model]!
                t["target_confidence"] = Dictionary(uniqueKeysWithValues: l.targetClasses.map { k in
                    let v = rows.map { Double(items.outputs[$0 * width + o.start + k]) }
                    return (String(k), ["mean": Summary.mean(v), "sd": Summary.sd(v)])
                })
            case let f as FixedLabel:
                t["validity"] = Double((0..<n).filter { predicted(f.model, $0) == f.label }.count) / Double(max(n, 1))
            case let f as FixedValue:
                let o = offsets[f.model]!
                let errors = (0..<n).map { abs(Double(items.outputs[$0 * width + o.start]) - f.value) }
                t["absolute_error"] = ["mean": Summary.mean(errors), "sd": Summary.sd(errors)]
            case let c as Contrast where c.classifiers:
                t["disagreement"] = Double((0..<n).filter { predicted(c.a, $0) != predicted(c.b, $0) }.count) / Double(max(n, 1))
            case let c as Contrast:
                let a = offsets[c.a]!.start, b = offsets[c.b]!.start
                let gaps = (0..<n).map { abs(Double(items.outputs[$0 * width + a]) - Double(items.outputs[$0 * width + b])) }
                t["absolute_difference"] = ["mean": Summary.mean(gaps), "sd": Summary.sd(gaps)]
            case let e as Entropy:
                let h = (0..<n).map { b in -probabilities(e.model, b).reduce(0.0) { $0 + ($1 > 0 ? $1 * log($1) : 0) } }
                t["entropy"] = ["mean": Summary.mean(h), "sd": Summary.sd(h), "max": log(Double(offsets[e.model]!.width))]
            case let l as Localize where !reference:
                t.merge(counterfactual(items, anchor: l.anchor, plan: plan)) { $1 }
            default:
                break
            }
            terms.append(t)
        }
        return ["count": n, "models": models, "terms": terms,
                "energy": ["mean": Summary.mean(items.energy), "sd": Summary.sd(items.energy)]]
    }

    /// DiCE's counterfactual figures against an anchor: proximity (mean L1 and L2 distance,
    /// in the model's scaled inputs and, for tabular data, in the data's units), sparsity
    /// (mean number of features changed), diversity (mean pairwise L1 distance of draws).
    static func counterfactual(_ items: Items, anchor: [Double], plan: JobPlan) -> [String: Any] {
        let n = items.count, D = anchor.count
        // Per data feature: the input columns it spans (one, or a one-hot block) and its span.
        var features = [(name: String, columns: Range<Int>, span: Double?)]()
        if let e = plan.encoding, e.width == D {
            let ranges = e.columnRanges
            features = e.features.map { f in (f.name, ranges[f.name]!, f.kind == "categorical" ? nil : (f.max ?? 1) - (f.min ?? 0)) }
        } else {
            features = (0..<D).map { ("x[\($0)]", $0..<($0 + 1), 1.0) }
        }
        func changed(_ b: Int, _ f: (name: String, columns: Range<Int>, span: Double?)) -> Bool {
            if f.span == nil {
                let block = f.columns
                let drawn = block.max { items.x[b * D + $0] < items.x[b * D + $1] }!
                let anchored = block.max { anchor[$0] < anchor[$1] }!
                return drawn != anchored
            }
            return abs(Double(items.x[b * D + f.columns.lowerBound]) - anchor[f.columns.lowerBound]) > 1e-3
        }
        var l1 = [Double](), l2 = [Double](), units = [Double](), changes = [Double]()
        var counts = Array(repeating: 0, count: features.count)
        for b in 0..<n {
            var a = 0.0, s = 0.0, u = 0.0, k = 0
            for i in 0..<D {
                let d = abs(Double(items.x[b * D + i]) - anchor[i])
                a += d
                s += d * d
            }
            for (j, f) in features.enumerated() where changed(b, f) {
                k += 1
                counts[j] += 1
                u += f.span.map { abs(Double(items.x[b * D + f.columns.lowerBound]) - anchor[f.columns.lowerBound]) * $0 } ?? 1
            }
            l1.append(a); l2.append(s.squareRoot()); units.append(u); changes.append(Double(k))
        }
        // Diversity over at most 500 draws spread evenly over the chains' draws.
        let picks = stride(from: 0, to: n, by: max(1, n / 500)).map { $0 }
        var pairs = 0.0, total = 0.0
        for (i, p) in picks.enumerated() {
            for q in picks[(i + 1)...] {
                var d = 0.0
                for j in 0..<D { d += abs(Double(items.x[p * D + j]) - Double(items.x[q * D + j])) }
                total += d
                pairs += 1
            }
        }
        var out: [String: Any] = [
            "proximity": ["l1": Summary.mean(l1), "l2": Summary.mean(l2)],
            "sparsity": Summary.mean(changes),
            "diversity": pairs > 0 ? total / pairs : NSNull(),
            "changed": Dictionary(uniqueKeysWithValues: zip(features.map(\.name), counts.map { Double($0) / Double(max(n, 1)) })
                .filter { $0.1 > 0 }),
        ]
        if plan.encoding != nil { out["proximity_data_units"] = ["l1": Summary.mean(units)] }
        return out
    }

    /// Small statistics, NaN-free for JSON (nil where there are no values).
    enum Summary {
        static let levels = [0.05, 0.25, 0.5, 0.75, 0.95]

        static func mean(_ v: [Double]) -> Any { v.isEmpty ? NSNull() : v.reduce(0, +) / Double(v.count) }

        static func sd(_ v: [Double]) -> Any {
            guard v.count > 1 else { return NSNull() }
            let m = v.reduce(0, +) / Double(v.count)
            return (v.reduce(0.0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot()
        }

        /// Linear interpolation between order statistics (NumPy's default).
        static func quantile(_ v: [Double], _ q: Double) -> Any {
            guard !v.isEmpty else { return NSNull() }
            let s = v.sorted(), h = q * Double(s.count - 1), lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
            return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
        }
    }
}
