import Diagnostics
import Foundation
import ProbeFarmTesting
import TensorCore
import Testing

/// Every diagnostic against the values ArviZ 0.23.4 and arviz-stats 0.8.0 computed for
/// the same draws (Scripts/fixtures/make_diagnostics_fixtures.py made the fixtures).
struct ArviZReferenceTests {
    static let directory = Fixtures.url("DiagnosticsTests", "diagnostics")
    static let cases: [String] = {
        let url = directory.appendingPathComponent("index.json")
        return (try? Fixtures.json(url) as? [String]) ?? []
    }()

    struct Case {
        var name: String
        var quantities: [ChainDraws]
        var expected: [[String: Any]]
        var superchains: [Int]
    }

    static func load(_ name: String) throws -> Case {
        let array = try NumPyArray.read(contentsOf: directory.appendingPathComponent("\(name).npy").path)
        let json = try #require(try Fixtures.json(directory.appendingPathComponent("\(name).json")) as? [String: Any])
        let expected = try #require(json["quantities"] as? [[String: Any]])
        let superchains = try #require(json["superchains"] as? [Int])
        let (c, n) = (array.shape[0], array.shape[1])
        let d = array.shape.count == 3 ? array.shape[2] : 1
        let v = array.float64Values
        let quantities = (0..<d).map { j in
            ChainDraws(chains: c, draws: n, values: (0..<(c * n)).map { v[$0 * d + j] })
        }
        return Case(name: name, quantities: quantities, expected: expected, superchains: superchains)
    }

    @Test("at least 15 reference cases are committed")
    func enoughCases() {
        #expect(Self.cases.count >= 15)
    }

    @Test("every diagnostic matches ArviZ to 1e-9 relative", arguments: cases)
    func matchesArviZ(_ name: String) throws {
        let c = try Self.load(name)
        for (q, draws) in c.quantities.enumerated() {
            let e = c.expected[q]
            let ours: [String: Double?] = [
                "rhat_rank": draws.rhat(method: .rank),
                "rhat_split": draws.rhat(method: .split),
                "rhat_folded": draws.rhat(method: .folded),
                "rhat_z_scale": draws.rhat(method: .zScale),
                "rhat_identity": draws.rhat(method: .identity),
                "ess_bulk": draws.ess(method: .bulk),
                "ess_tail": draws.ess(method: .tail),
                "ess_mean": draws.ess(method: .mean),
                "ess_sd": draws.ess(method: .sd),
                "ess_identity": draws.ess(method: .identity),
                "ess_quantile_0.25": draws.ess(method: .quantile(0.25)),
                "mcse_mean": draws.mcse(method: .mean),
                "mcse_sd": draws.mcse(method: .sd),
                "mcse_quantile_0.25": draws.mcse(method: .quantile(0.25)),
                "rhat_nested_rank": draws.nestedRHat(superchain: c.superchains, method: .rank),
                "rhat_nested_split": draws.nestedRHat(superchain: c.superchains, method: .split),
                "rhat_nested_identity": draws.nestedRHat(superchain: c.superchains, method: .identity),
            ]
            for (key, value) in ours.sorted(by: { $0.key < $1.key }) {
                let reference = e[key] as? Double  // JSON null → nil
                let mine = value.flatMap { $0.isFinite ? $0 : nil }
                switch (mine, reference) {
                case (nil, nil): continue
                case let (m?, r?):
                    #expect(Tolerance.isClose(m, r, relative: 1e-9, absolute: 1e-300),
                            "\(name)[\(q)].\(key): ours \(m), ArviZ \(r), rel \(Tolerance.relativeDifference(m, r))")
                default:
                    Issue.record("\(name)[\(q)].\(key): ours \(String(describing: mine)), ArviZ \(String(describing: reference))")
                }
            }
        }
    }
}

/// The shared-work summary equals the individual functions, value for value.
struct QuantitySummaryTests {
    @Test("summary fields equal the individual diagnostics", arguments: ArviZReferenceTests.cases)
    func summaryMatchesFunctions(_ name: String) throws {
        for draws in try ArviZReferenceTests.load(name).quantities {
            let s = QuantitySummary(draws)
            func same(_ a: Double?, _ b: Double?, _ what: String) {
                switch (a, b) {
                case (nil, nil): break
                case let (x?, y?): #expect(Tolerance.isClose(x, y, relative: 1e-13), "\(name) \(what): \(x) vs \(y)")
                default: Issue.record("\(name) \(what): \(String(describing: a)) vs \(String(describing: b))")
                }
            }
            same(s.rhat, draws.rhat(method: .rank), "rhat")
            same(s.rhatSplit, draws.rhat(method: .split), "rhat_split")
            same(s.essBulk, draws.ess(method: .bulk), "ess_bulk")
            same(s.essTail, draws.ess(method: .tail), "ess_tail")
            same(s.essMean, draws.ess(method: .mean), "ess_mean")
            same(s.essSD, draws.ess(method: .sd), "ess_sd")
            same(s.mcseMean, draws.mcse(method: .mean), "mcse_mean")
            same(s.mcseSD, draws.mcse(method: .sd), "mcse_sd")
        }
    }
}
