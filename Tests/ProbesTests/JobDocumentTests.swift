import Foundation
import Probes
import TensorCore
import Testing

/// A farm's workers rebuild the job from the resolved document the coordinator sends
/// (as JSON), not from the YAML: they must read exactly what the coordinator read.
struct JobDocumentTests {
    static let yaml = """
        name: 2026-11-23
        seed: 7
        models: {cnn: cnn.safetensors, ens: {weights: mlp.safetensors, perturb: {sigma: 0.01, copies: 3}}}
        space:
          data:
            dimension: 4
            lower: [0, -1.5, null, -.inf]
            upper: 2
            fixed: {1: 0.25, 3: 7}
        probe:
          - fixed-label: {model: cnn, label: 3, weight: 2}
          - level-set: {model: ens, target: {ambiguous: [0, 6]}, sigma: 5.0e-2, flag: yes, note: "0x10"}
        temperature: 0.5
        sampler: {method: hmc, warmup: 10, draws: 20, metric: identity, anneal: none, batch: 2, init-candidates: 3}
        chains: 6
        stop: {rhat: 1.05, max-draws: 80}

        """

    static func roundTrip(_ document: JobDocument) throws -> JobDocument {
        try JSONDecoder().decode(JobDocument.self, from: JSONEncoder().encode(document))
    }

    @Test func aWorkerReadsTheJobTheCoordinatorRead() throws {
        let direct = try Job.parse(Self.yaml, file: "/jobs/probe.yaml", directory: "/jobs")
        let document = try Self.roundTrip(direct.document)
        #expect(document == direct.document)
        let rebuilt = try Job.parse(document, file: "probe.yaml", directory: "/cache", sha256: direct.sha256)

        // A timestamp is no name: both fall back to the file's.
        #expect(direct.name == "probe" && rebuilt.name == "probe")
        #expect(rebuilt.seed == 7 && rebuilt.chains == 6 && rebuilt.batch == 2 && rebuilt.initCandidates == 3)
        #expect(rebuilt.temperature == 0.5 && rebuilt.sha256 == direct.sha256)
        #expect(rebuilt.models.map(\.name) == ["cnn", "ens"])
        #expect(rebuilt.models.map(\.source) == direct.models.map(\.source))
        #expect(rebuilt.models[1].source.perturbCopies == 3)
        guard case let .data(dimension, lower, upper, fixed, start) = rebuilt.space else {
            Issue.record("expected a data space")
            return
        }
        #expect(dimension == 4 && start == nil)
        #expect(lower == .each([0, -1.5, nil, -.infinity]) && upper == .all(2))
        #expect(fixed == [1: 0.25, 3: 7])
        #expect(rebuilt.probe.map(\.kind) == ["fixed-label", "level-set"])
        #expect(rebuilt.probe.map(\.weight) == [2, 1])
        for (a, b) in zip(direct.probe, rebuilt.probe) {
            #expect(a.options.mapValues { JobDocument(resolved: $0.value) } == b.options.mapValues { JobDocument(resolved: $0.value) })
        }
        let options = rebuilt.probe[1].options
        #expect(options["flag"]?.value as? Bool == true)
        #expect(options["note"]?.value as? String == "0x10")
        #expect(options["sigma"]?.value as? Double == 0.05)
        #expect(rebuilt.sampler.method == .hmc && rebuilt.sampler.annealFrom == nil && rebuilt.sampler.metric == .identity)
        #expect(rebuilt.stop == direct.stop && rebuilt.stop?.rhat == 1.05 && rebuilt.stop?.maxDraws == 80)
    }

    /// JSON numbers alone would make 3.0 an integer: a job refuses `seed: 3.0`, and so
    /// must the rebuilt one.
    @Test func integersAndFloatsStayApart() throws {
        let document = try JobDocument(yaml: "a: 3\nb: 3.0\nc: [1, 1.0, true, null, '3', .inf]\n")
        #expect(document == .map([
            .init(key: .string("a"), value: .int(3)),
            .init(key: .string("b"), value: .float(3)),
            .init(key: .string("c"), value: .list([.int(1), .float(1), .bool(true), .null, .string("3"), .float(.infinity)])),
        ]))
        #expect(try Self.roundTrip(document) == document)

        let text = Self.yaml.replacingOccurrences(of: "seed: 7", with: "seed: 7.0")
        #expect(throws: JobError.self) { try Job.parse(text, file: "j.yaml", directory: "/") }
        let tree = try Self.roundTrip(try JobDocument(yaml: text))
        let error = #expect(throws: JobError.self) { try Job.parse(tree, file: "j.yaml", directory: "/", sha256: "0") }
        #expect(error?.message == "seed: must be a non-negative integer")
    }

    @Test func malformedDocumentsAreRefused() {
        for json in [#"{"int": 1, "float": 2}"#, #"{}"#, #"{"map": [[{"null": 0}]]}"#, #"{"list": {"int": 1}}"#] {
            #expect(throws: DecodingError.self, "\(json)") { try JSONDecoder().decode(JobDocument.self, from: Data(json.utf8)) }
        }
    }

    /// 3000 mutations of a valid job file (byte flips, YAML-significant characters,
    /// truncations, splices, duplicated lines, numbers made huge): each parses or is
    /// refused with a JobError naming the file; the parser never traps or hangs.
    @Test("randomly mutated job files are parsed or refused, never a crash")
    func fuzz() throws {
        var rng = SplitMix64(seed: 2027)
        let base = Array(Self.yaml.utf8)
        let significant = Array("{}[]:,-&*!|>'\"#%@`?\n 0123456789.e".utf8)
        let lines = Self.yaml.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var parsed = 0, refused = 0
        let t0 = Date()
        for _ in 0..<3000 {
            var b = base
            switch rng.next() % 6 {
            case 0: for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 1: for _ in 0..<(1 + Int(rng.next() % 3)) { b[Int(rng.next() % UInt64(b.count))] = significant[Int(rng.next() % UInt64(significant.count))] }
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
            case 3:
                let at = Int(rng.next() % UInt64(b.count)), from = Int(rng.next() % UInt64(b.count))
                b.insert(contentsOf: base[from..<min(base.count, from + Int(rng.next() % 40))], at: at)
            case 4:
                var l = lines
                let i = Int(rng.next() % UInt64(l.count))
                l.insert(l[i], at: Int(rng.next() % UInt64(l.count)))
                b = Array(l.joined(separator: "\n").utf8)
            default:
                let text = String(decoding: b, as: UTF8.self)
                let numbers = ["9223372036854775807", "-1", "0", "1e308", ".nan", "-.inf", "99999999999999999999"]
                var l = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                let i = Int(rng.next() % UInt64(l.count))
                if l[i].first?.isNumber == true { l[i] = numbers[Int(rng.next() % UInt64(numbers.count))] + (l[i].last == "," ? "," : "") }
                b = Array(l.joined(separator: " ").utf8)
            }
            guard let text = String(validating: b, as: UTF8.self) else { continue }
            do {
                _ = try Job.parse(text, file: "/jobs/fuzz.yaml", directory: "/jobs")
                parsed += 1
            } catch {
                #expect(error.description.contains("fuzz.yaml"), "\(error)")
                #expect(!error.description.contains("\n"), "one line: \(error)")
                refused += 1
            }
        }
        #expect(parsed > 100 && refused > 1000, "parsed \(parsed), refused \(refused)")
        #expect(Date().timeIntervalSince(t0) < 60, "no mutation hangs the parser")
    }
}
