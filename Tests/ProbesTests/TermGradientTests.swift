import Foundation
import NeuralModels
import ProbeFarmTesting
import Probes
import Samplers
import TensorCore
import Testing

/// Every term's gradient, through the whole target (models, spaces, change of
/// variables, decoder and prior), against central finite differences of log p*
/// (ε = 1e-3, directional, relative tolerance 2e-2 plus the Float32 noise floor).
struct TermGradientTests {
    static let clf = SmallModels.classifier("clf", SmallModels.mlp(inputs: 4, outputs: 3, seed: 10))
    static let clf2 = SmallModels.classifier("clf2", SmallModels.mlp(inputs: 4, outputs: 3, seed: 20))
    static let reg = SmallModels.regressor("reg", [SmallModels.mlp(inputs: 4, outputs: 1, seed: 30),
                                                   SmallModels.mlp(inputs: 4, outputs: 1, seed: 40)])
    static let reg2 = SmallModels.regressor("reg2", [SmallModels.mlp(inputs: 4, outputs: 1, seed: 50)])
    static let perturbed = ProbedModel(name: "clf~sensitive",
                                       members: Perturbation.ensemble(of: clf.members[0], sigma: 0.1, copies: 5, seed: 1, salt: "s"),
                                       kind: clf.kind)

    static let terms: [(String, any ProbeTerm)] = [
        ("fixed-label", FixedLabel(model: "clf", label: 2)),
        ("fixed-value", FixedValue(model: "reg", value: 0.4)),
        ("risky r=1", Risky(model: "clf", anchor: 0.5, norm: 1)),
        ("risky r=2.5", Risky(model: "clf", anchor: 0.3, norm: 2.5)),
        ("entropy", Entropy(model: "clf")),
        ("sensitive", Sensitive(model: "clf", perturbed: "clf~sensitive")),
        ("contrast classifiers", Contrast(a: "clf", b: "clf2", classifiers: true)),
        ("contrast regressors", Contrast(a: "reg", b: "reg2", classifiers: false)),
        ("contrast regressors, scale 3", Contrast(a: "reg", b: "reg2", classifiers: false, scale: 3)),
        ("level-set confident", LevelSet(model: "clf", target: .confident(1), sigma: 0.2)),
        ("level-set ambiguous", LevelSet(model: "clf", target: .ambiguous(0, 2), sigma: 0.2)),
        ("level-set probabilities", LevelSet(model: "clf", target: .probabilities([0: 0.6, 1: 0.4]), sigma: 0.2)),
        ("level-set uniform", LevelSet(model: "clf", target: .uniform, sigma: 0.2)),
        ("localize", Localize(anchor: [0.2, 0.5, -0.3, 0.1], norm: 2, featureWeights: [1, 2, 0.5, 1])),
        ("localize r=3", Localize(anchor: [0.1, -0.5, 0.3, 0.4], norm: 3, featureWeights: nil)),
        ("weighted", Weighted(term: FixedLabel(model: "clf", label: 0), weight: 2.5)),
    ]

    static let models = ["clf": clf, "clf2": clf2, "reg": reg, "reg2": reg2, "clf~sensitive": perturbed]

    static func dataTarget(_ term: any ProbeTerm) -> ProbeTarget {
        ProbeTarget(space: .data(DataSpace(dimension: 4, lower: [0, nil, -1, nil], upper: [1, 2, nil, nil], fixed: [3: 0.2])),
                    models: models, decoder: nil, terms: [term], temperature: 0.7, dataDimension: 4, dataShape: [4])
    }

    static func latentTarget(_ term: any ProbeTerm) -> ProbeTarget {
        let decoder = try! Sequential(layers: [
            Linear(weight: SmallModels.random([4, 3], seed: 60, scale: 0.7), bias: SmallModels.random([4], seed: 61, scale: 0.2)),
            Activation(.sigmoid),
        ], inputShape: [3])
        return ProbeTarget(space: .latent(decoderName: "dec", dimension: 3, prior: true), models: models, decoder: decoder,
                           terms: [term], temperature: 1.3, dataDimension: 4, dataShape: [4])
    }

    static func check(_ target: ProbeTarget, seed: UInt64) -> [String] {
        let k = target.dimension
        var g = SplitMix64(seed: seed)
        let batch = 3
        let u = (0..<(batch * k)).map { _ in Double(g.nextNormal()) * 0.7 }
        let (values, grads) = target.evaluate(u, count: batch)
        var failures = [String]()
        let h = 1e-3
        for b in 0..<batch {
            guard values[b].isFinite else { failures.append("chain \(b): log p not finite"); continue }
            for _ in 0..<3 {
                let v = (0..<k).map { _ in Double(g.nextNormal()) }
                var up = u, um = u
                for i in 0..<k { up[b * k + i] += h * v[i]; um[b * k + i] -= h * v[i] }
                let fd = (target.evaluate(up, count: batch).values[b] - target.evaluate(um, count: batch).values[b]) / (2 * h)
                let an = (0..<k).reduce(0.0) { $0 + grads[b * k + $1] * v[$1] }
                let floor = 1e-6 * (abs(values[b]) + 1) / h  // Float32 rounding of the model outputs
                if abs(fd - an) > 2e-2 * max(abs(fd), abs(an)) + floor {
                    failures.append("chain \(b): analytic \(an), finite difference \(fd)")
                }
            }
        }
        return failures
    }

    @Test("term gradients in a data space with bounds and a fixed feature", arguments: terms.map(\.0))
    func dataSpace(_ name: String) {
        let term = Self.terms.first { $0.0 == name }!.1
        let f = Self.check(Self.dataTarget(term), seed: 3)
        #expect(f.isEmpty, "\(name): \(f)")
    }

    @Test("term gradients in a latent space through a decoder with the prior", arguments: terms.map(\.0))
    func latentSpace(_ name: String) {
        let term = Self.terms.first { $0.0 == name }!.1
        let f = Self.check(Self.latentTarget(term), seed: 4)
        #expect(f.isEmpty, "\(name): \(f)")
    }

    @Test("term values follow JOBSPEC §2's formulas")
    func values() {
        // One readout with p = (0.7, 0.2, 0.1) for a 3-class model, y = 1.5 for a regressor.
        let r = MemberReadout(batch: 1, classes: 3, probabilities: [0.7, 0.2, 0.1],
                              logProbabilities: [0.7, 0.2, 0.1].map { log($0) }, values: [])
        let y = MemberReadout(batch: 1, classes: 0, probabilities: [], logProbabilities: [], values: [1.5])
        let input = TermInput(batch: 1, readouts: ["m": [r], "r": [y]], x: [1, 2], dimension: 2)
        func g(_ t: any ProbeTerm) -> Double { t.evaluate(input).values[0] }
        #expect(abs(g(FixedLabel(model: "m", label: 1)) - -log(0.2)) < 1e-12)
        #expect(abs(g(FixedValue(model: "r", value: 1.0)) - 0.25) < 1e-12)
        #expect(abs(g(Risky(model: "m", anchor: 0.5, norm: 1)) - (0.2 + 0.3 + 0.4)) < 1e-12)
        #expect(abs(g(Entropy(model: "m")) - (0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1))) < 1e-12)
        let c = 1 / (2 * 0.05 * 0.05)
        #expect(abs(g(LevelSet(model: "m", target: .confident(0))) - c * 0.09) < 1e-9)
        // ambiguous [0, 1]: s1 = |0.7 − 0.2| = 0.5, s2 = min − max_other = 0.2 − 0.1 = 0.1 (target 0.5).
        #expect(abs(g(LevelSet(model: "m", target: .ambiguous(0, 1))) - c * (0.25 + 0.16)) < 1e-9)
        #expect(abs(g(LevelSet(model: "m", target: .probabilities([0: 0.6, 1: 0.4]))) - c * (0.01 + 0.04 + 0.01)) < 1e-9)
        #expect(abs(g(LevelSet(model: "m", target: .uniform)) - c * 0.36) < 1e-9)
        #expect(abs(g(Localize(anchor: [0, 0], norm: 2, featureWeights: [1, 0.5])) - (1 + 2)) < 1e-12)
    }
}
