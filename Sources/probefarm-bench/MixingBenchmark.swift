import Diagnostics
import Foundation
import NeuralModels
import Probes
import Samplers
import TensorCore

/// NUTS with Stan's windowed adaptation on badly scaled, correlated Gaussians built the way
/// a user would (a linear regressor's `fixed-value` plus `localize` with feature weights),
/// through ``ProbeTarget`` and ``ChainRunner``: ESS per gradient evaluation and per second.
///
/// G(x) = (wᵀx + b − t)² + Σ fᵢ(xᵢ − aᵢ)², τ = 1, with standard deviations spread
/// log-uniformly from 0.01 to 100 (fᵢ = 1/(2sdᵢ²)) and wᵢ = √fᵢ: after scaling, a rank-one
/// correlation with condition number d + 1. `Scripts/bench.sh mixing` runs NumPyro's NUTS
/// on the same density (shared/peers/numpyro_mixing_bench.py) and computes every ESS with ArviZ.
enum MixingBenchmark {
    struct Problem: Codable {
        var dimension: Int
        var w: [Double]
        var b: Double
        var t: Double
        var f: [Double]
        var a: [Double]
    }

    struct Row: Codable {
        var dimension: Int
        var chains: Int
        var warmup: Int
        var draws: Int
        var seconds: Double
        var gradientEvaluations: Int
        var minESSBulk: Double
        var minESSTail: Double
        var meanTreeDepth: Double
        var stepSizes: [Double]
        var drawsFile: String
    }

    static func problem(_ d: Int) -> Problem {
        let sd = (0..<d).map { pow(10, -2 + 4 * Double($0) / Double(d - 1)) }
        let f = sd.map { 1 / (2 * $0 * $0) }
        // The weights as the model file holds them (Float32), so both sides see one density.
        let w = f.map { Double(Float($0.squareRoot())) }
        return Problem(dimension: d, w: w, b: 0.3, t: 1, f: f, a: (0..<d).map { Double($0 % 5) * 0.1 * sd[$0] })
    }

    static func target(_ p: Problem) throws -> ProbeTarget {
        let d = p.dimension
        let net = try Sequential(layers: [Linear(weight: Tensor(shape: [1, d], scalars: p.w.map(Float.init)),
                                                 bias: Tensor(shape: [1], scalars: [Float(p.b)]))], inputShape: [d])
        return ProbeTarget(
            space: .data(DataSpace(dimension: d, lower: .all(nil), upper: .all(nil), fixed: [:])),
            models: ["reg": ProbedModel(name: "reg", members: [net], kind: .regressor)], decoder: nil,
            terms: [FixedValue(model: "reg", value: p.t), Localize(anchor: p.a, norm: 2, featureWeights: p.f)],
            temperature: 1, dataDimension: d, dataShape: [d])
    }

    static func run(dimensions: [Int], chains: Int, warmup: Int, draws: Int, directory: String) throws -> [Row] {
        var rows = [Row]()
        for d in dimensions {
            let p = problem(d)
            let target = try target(p)
            let settings = SamplerSettings(method: .nuts, warmup: warmup, draws: draws)
            let runner = ChainRunner(settings: settings, seed: 20261201, target: target)
            let starts = (0..<chains).map { RandomStream(seed: 1, chain: $0).normals(d, iteration: 0, purpose: .initialization) }
            var cps = runner.start(chains: Array(0..<chains), positions: starts).map { $0! }
            var x = [Double](repeating: 0, count: chains * draws * d)
            var gradients = 0, depth = 0.0
            let clock = Date()
            runner.advance(&cps, iterations: warmup + draws) { r in
                gradients += r.info.steps
                guard !r.isWarmup else { return }
                depth += Double(r.info.treeDepth)
                let k = (r.chain * draws + r.iteration - warmup) * d
                for i in 0..<d { x[k + i] = r.position[i] }
            }
            let seconds = Date().timeIntervalSince(clock)
            var bulk = Double.infinity, tail = Double.infinity
            for i in 0..<d {
                let s = QuantitySummary(ChainDraws(chains: chains, draws: draws,
                                                   values: (0..<(chains * draws)).map { x[$0 * d + i] }))
                bulk = min(bulk, s.essBulk ?? 0)
                tail = min(tail, s.essTail ?? 0)
            }
            let file = "\(directory)/probefarm-mixing-\(d).npy"
            try NumPyArray(shape: [chains, draws, d], float64: x).write(to: file)
            let problemData = try JSONEncoder().encode(p)
            try problemData.write(to: URL(fileURLWithPath: "\(directory)/mixing-problem-\(d).json"))
            rows.append(Row(dimension: d, chains: chains, warmup: warmup, draws: draws, seconds: seconds,
                            gradientEvaluations: gradients, minESSBulk: bulk, minESSTail: tail,
                            meanTreeDepth: depth / Double(chains * draws), stepSizes: cps.map(\.stepSize), drawsFile: file))
        }
        return rows
    }
}
