import Foundation
import NeuralModels
import Samplers
import TensorCore

/// A job checked against its models and built into the target the sampler sees, with
/// the chains' starting points. Everything that can be wrong is found here, before any
/// chain runs: model files (exit 65/66), and the job's consistency with them (exit 78,
/// with the key path).
public struct JobPlan: Sendable {
    public var job: Job
    public var target: ProbeTarget
    /// Content hashes of the weight files, by model name.
    public var weights: [String: String]
    /// The outputs written per draw: each probed model's name and output width.
    public var outputColumns: [(name: String, width: Int)]
    /// The data-space start point (`space.data.start`), if the job names one.
    public var startPoint: [Double]?
    /// How records map to the data (`probefarm.features` of the first probed model with them).
    public var encoding: FeatureEncoding?

    public init(_ job: Job) throws {
        self.job = job
        func fail(_ key: String, _ message: String) -> JobError { JobError(file: job.file, "\(key): \(message)") }

        // Models.
        var loaded = [String: Model]()
        var weights = [String: String]()
        for (name, source) in job.models {
            let path = job.resolve(source.path)
            guard FileManager.default.fileExists(atPath: path) else {
                throw JobError(file: job.file, "models.\(name): no such file \(path)", sysexit: .noInput)
            }
            let m = try Model.load(path)
            loaded[name] = m
            weights[name] = m.sha256
        }
        func members(_ name: String) -> [Sequential] {
            let m = loaded[name]!
            guard let source = job.models.first(where: { $0.name == name })?.source, let sigma = source.perturbSigma else {
                return m.members
            }
            return Perturbation.ensemble(of: m.network, sigma: sigma, copies: source.perturbCopies ?? 100,
                                         seed: job.seed, salt: name)
        }

        // How records map to the data: the first probed model's `probefarm.features`.
        let probed = Set(job.probe.flatMap { Self.modelNames($0) })
        let encoding = probed.sorted().lazy.compactMap { loaded[$0]?.metadata["probefarm.features"] }.first
            .flatMap { try? JSONDecoder().decode(FeatureEncoding.self, from: Data($0.utf8)) }

        // Space and data dimension.
        var decoder: Sequential? = nil
        var start: [Double]? = nil
        let space: Space
        var dataShape: [Int]
        let probedNames = probed
        switch job.space {
        case let .latent(decoderName, prior):
            guard let d = loaded[decoderName] else {
                throw fail("space.latent.decoder", "'\(decoderName)' is not declared under models")
            }
            guard d.architecture.output == .image else {
                throw fail("space.latent.decoder", "'\(decoderName)' is a \(d.architecture.output.rawValue) model, not a decoder (output: image)")
            }
            guard d.inputShape.count == 1 else {
                throw fail("space.latent.decoder", "'\(decoderName)' takes input \(d.inputShape); a latent space needs a vector")
            }
            decoder = d.network
            dataShape = d.outputShape
            space = .latent(decoderName: decoderName, dimension: d.inputShape[0], prior: prior)
        case let .data(dimension, lower, upper, fixed, startSource):
            dataShape = [dimension]
            if let first = probedNames.sorted().first, let m = loaded[first] { dataShape = m.inputShape }
            guard dimension == dataShape.reduce(1, *) else {
                throw fail("space.data.dimension", "is \(dimension) but the probed models take \(dataShape.reduce(1, *)) inputs")
            }
            if let startSource {
                start = try Self.point(startSource, key: "space.data.start", job: job, dimension: dimension, encoding: encoding)
            }
            var all = fixed
            for named in job.namedFixed { try Self.fix(named, into: &all, encoding: encoding, start: start, job: job) }
            space = .data(DataSpace(dimension: dimension, lower: lower, upper: upper, fixed: all))
        }
        let dataDimension = dataShape.reduce(1, *)

        // Probed models: declared, not the decoder, matching the data.
        var models = [String: ProbedModel]()
        for name in probedNames.sorted() {
            guard let m = loaded[name] else {
                let where_ = job.probe.first { Self.modelNames($0).contains(name) }!.keyPath
                throw fail(where_, "model '\(name)' is not declared under models (declared: \(job.models.map(\.name).joined(separator: ", ")))")
            }
            guard m.architecture.output != .image else {
                throw fail("models.\(name)", "is a decoder (output: image); probe terms need a classifier or regressor")
            }
            guard m.inputShape.reduce(1, *) == dataDimension else {
                let source = decoder != nil ? "the decoder produces" : "the data space has"
                throw fail("models.\(name)", "takes \(m.inputShape) (\(m.inputShape.reduce(1, *)) values) but \(source) \(dataShape) (\(dataDimension))")
            }
            let kind: ReadoutKind
            do { kind = try ReadoutKind(m.architecture.output, outputCount: m.outputShape.reduce(1, *)) } catch {
                throw fail("models.\(name)", "\(error)")
            }
            models[name] = ProbedModel(name: name, members: members(name), kind: kind)
        }

        // Terms.
        var terms = [any ProbeTerm]()
        for spec in job.probe {
            let term = try Self.term(spec, models: &models, loaded: loaded, job: job, dataDimension: dataDimension, encoding: encoding)
            terms.append(spec.weight == 1 ? term : Weighted(term: term, weight: spec.weight))
        }

        self.target = ProbeTarget(space: space, models: models, decoder: decoder, terms: terms,
                                  temperature: job.temperature, dataDimension: dataDimension, dataShape: dataShape)
        if job.sampler.metric == .dense, target.dimension > SamplerSettings.maxDenseDimension {
            throw fail("sampler.metric", "dense needs a \(target.dimension)×\(target.dimension) matrix per chain; the limit is \(SamplerSettings.maxDenseDimension) dimensions — use diagonal")
        }
        self.weights = weights
        self.encoding = encoding
        self.startPoint = start
        self.outputColumns = models.keys.sorted().filter { !$0.contains("~") }.map { ($0, max(models[$0]!.kind.classes, 1)) }
    }

    /// A data point the job names (`start`, a localize `anchor`): an .npy file, or a CSV row
    /// encoded as the reference data is.
    static func point(_ source: Job.PointSource, key: String, job: Job, dimension: Int, encoding: FeatureEncoding?) throws -> [Double] {
        switch source {
        case .npy(let file):
            let path = job.resolve(file)
            guard FileManager.default.fileExists(atPath: path) else { throw JobError(file: job.file, "\(key): no such file \(path)") }
            let a = try NumPyArray.read(contentsOf: path)
            guard a.count == dimension else { throw JobError(file: job.file, "\(key): has \(a.count) values, the data space \(dimension)") }
            return a.float64Values
        case let .csv(file, row):
            let rows = try ReferenceData.load(ReferenceSpec(source: .csv(file, label: nil), limit: row + 1), job: job, dimension: dimension,
                                              encoding: encoding, classes: nil, key: key)
            guard row < rows.count else {
                throw JobError(file: job.file, "\(key).row: \(row) is past the last data row (\(rows.count - 1)) of \(job.resolve(file))")
            }
            return rows.inputs[(row * dimension)..<((row + 1) * dimension)].map(Double.init)
        }
    }

    /// Resolves a fixed feature given by name against the model's `probefarm.features`:
    /// a numeric feature's value in the data's units, a categorical feature's category, a
    /// one-hot column (`sex=Male`) by its 0/1 value, or a name alone for the start's value.
    static func fix(_ named: NamedFixed, into fixed: inout [Int: Double], encoding: FeatureEncoding?, start: [Double]?, job: Job) throws {
        let key = "space.data.fixed.\(named.name)"
        func fail(_ message: String) -> JobError { JobError(file: job.file, "\(key): \(message)") }
        guard let e = encoding else {
            throw fail("names a feature, but no probed model has probefarm.features (feature names); give the input's index")
        }
        let ranges = e.columnRanges
        let columns: Range<Int>, feature: FeatureEncoding.Feature?
        if let r = ranges[named.name] {
            columns = r
            feature = e.features.first { $0.name == named.name }
        } else if let j = e.columnNames.firstIndex(of: named.name) {
            columns = j..<(j + 1)
            feature = nil
        } else {
            throw fail("is not a feature of the model (features: \(e.features.map(\.name).joined(separator: ", ")); one-hot columns as name=category)")
        }
        guard let value = named.value?.value else {
            guard let start else { throw fail("is fixed at the start point's value, but space.data.start is not given") }
            for c in columns { fixed[c] = start[c] }
            return
        }
        let number = (value as? Double) ?? (value as? Int).map(Double.init)
        switch feature {
        case let f? where f.kind == "categorical":
            let category = "\(value)"
            guard let k = f.categories?.firstIndex(of: category) else {
                throw fail("'\(category)' is not a category of \(f.name) (\(f.categories?.joined(separator: ", ") ?? ""))")
            }
            for (i, c) in columns.enumerated() { fixed[c] = i == k ? 1 : 0 }
        case let f?:
            guard let v = number, v.isFinite else { throw fail("must be a number in \(f.name)'s units") }
            let lo = f.min ?? 0, span = (f.max ?? 1) - lo
            fixed[columns.lowerBound] = span == 0 ? 0 : (v - lo) / span
        case nil:
            guard let v = number, v == 0 || v == 1 else { throw fail("a one-hot column is fixed at 0 or 1") }
            fixed[columns.lowerBound] = v
        }
    }

    /// The job's reference data, read and checked against the data (nil without one).
    /// Only the coordinator reads it: workers never need it.
    public func reference() throws -> ReferenceData? {
        guard let spec = job.reference else { return nil }
        let classes = target.models.values.map(\.kind.classes).filter { $0 > 0 }.min()
        return try ReferenceData.load(spec, job: job, dimension: target.dataDimension, encoding: encoding, classes: classes)
    }

    static func modelNames(_ spec: Job.TermSpec) -> [String] {
        if spec.kind == "contrast" { return (spec.options["models"]?.value as? [String]) ?? [] }
        if spec.kind == "localize" { return [] }
        return (spec.options["model"]?.value as? String).map { [$0] } ?? []
    }

    static func term(_ spec: Job.TermSpec, models: inout [String: ProbedModel], loaded: [String: Model],
                     job: Job, dataDimension: Int, encoding: FeatureEncoding?) throws -> any ProbeTerm {
        let key = spec.keyPath
        let o = spec.options.mapValues(\.value)
        func fail(_ k: String, _ message: String) -> JobError { JobError(file: job.file, "\(k): \(message)") }
        func allowed(_ keys: Set<String>) throws {
            for k in o.keys.sorted() where !keys.contains(k) {
                throw fail("\(key).\(k)", "unknown key (expected one of \(keys.union(["weight"]).sorted().joined(separator: ", ")))")
            }
        }
        func number(_ k: String) throws -> Double? {
            guard let v = o[k] else { return nil }
            if let i = v as? Int { return Double(i) }
            guard let x = v as? Double, x.isFinite else { throw fail("\(key).\(k)", "must be a finite number") }
            return x
        }
        func model(_ k: String = "model") throws -> ProbedModel {
            guard let name = o[k] as? String else { throw fail("\(key).\(k)", "missing (a declared model name)") }
            return models[name]!
        }
        func classifier(_ m: ProbedModel) throws -> Int {
            guard m.kind.classes > 0 else { throw fail("\(key).model", "'\(m.name)' is a regressor; \(spec.kind) needs a classifier") }
            return m.kind.classes
        }
        // Class names, where the probed model's probefarm.features has them (`label: ">50K"`).
        let classNames = (o["model"] as? String).flatMap { loaded[$0]?.metadata["probefarm.features"] }
            .flatMap { try? JSONDecoder().decode(FeatureEncoding.self, from: Data($0.utf8)) }?.classes
        func label(_ v: Any?, _ k: String, classes: Int) throws -> Int {
            if let name = v as? String, Int(name) == nil {
                guard let names = classNames else {
                    throw fail("\(key).\(k)", "'\(name)' is a class name, but the model has no class names (probefarm.features); use a class index")
                }
                guard let i = names.firstIndex(of: name) else {
                    throw fail("\(key).\(k)", "'\(name)' is not one of the model's classes (\(names.joined(separator: ", ")))")
                }
                return i
            }
            guard let i = (v as? Int) ?? (v as? String).flatMap({ Int($0) }) else { throw fail("\(key).\(k)", "must be a class index or name") }
            guard i >= 0 && i < classes else { throw fail("\(key).\(k)", "class \(i) is outside 0..<\(classes)") }
            return i
        }
        switch spec.kind {
        case "fixed-label":
            try allowed(["model", "label"])
            let m = try model()
            return FixedLabel(model: m.name, label: try label(o["label"], "label", classes: try classifier(m)))
        case "fixed-value":
            try allowed(["model", "value"])
            let m = try model()
            guard m.kind == .regressor else { throw fail("\(key).model", "'\(m.name)' is a classifier; fixed-value needs a regressor") }
            guard let v = try number("value") else { throw fail("\(key).value", "missing") }
            return FixedValue(model: m.name, value: v)
        case "risky":
            try allowed(["model", "anchor", "norm"])
            let m = try model()
            _ = try classifier(m)
            return Risky(model: m.name, anchor: try number("anchor") ?? 0.5, norm: try number("norm") ?? 1)
        case "entropy":
            try allowed(["model"])
            let m = try model()
            _ = try classifier(m)
            return Entropy(model: m.name)
        case "sensitive":
            try allowed(["model", "sigma", "copies"])
            let m = try model()
            _ = try classifier(m)
            let sigma = try number("sigma") ?? 0.05
            let copies = (o["copies"] as? Int) ?? 100
            guard sigma > 0, (1...10_000).contains(copies) else { throw fail(key, "sigma must be positive and copies in 1…10000") }
            let name = "\(m.name)~sensitive"
            models[name] = ProbedModel(name: name, members: Perturbation.ensemble(
                of: m.members[0], sigma: sigma, copies: copies, seed: job.seed, salt: name), kind: m.kind)
            return Sensitive(model: m.name, perturbed: name)
        case "contrast":
            try allowed(["models", "scale"])
            guard let names = o["models"] as? [String], names.count == 2 else { throw fail("\(key).models", "must be [a, b]") }
            let a = models[names[0]]!, b = models[names[1]]!
            guard (a.kind.classes > 0) == (b.kind.classes > 0) else {
                throw fail("\(key).models", "'\(a.name)' and '\(b.name)' must both be classifiers or both regressors")
            }
            if a.kind.classes > 0, a.kind.classes != b.kind.classes {
                throw fail("\(key).models", "'\(a.name)' has \(a.kind.classes) classes, '\(b.name)' \(b.kind.classes)")
            }
            let scale = try number("scale") ?? 1
            guard scale > 0 else { throw fail("\(key).scale", "must be positive (the difference y_a − y_b that counts as far apart)") }
            if a.kind.classes > 0 && o["scale"] != nil { throw fail("\(key).scale", "applies to regressors; '\(a.name)' and '\(b.name)' are classifiers") }
            return Contrast(a: a.name, b: b.name, classifiers: a.kind.classes > 0, scale: scale)
        case "level-set":
            try allowed(["model", "target", "sigma"])
            let m = try model()
            let k = try classifier(m)
            guard let t = o["target"] as? [String: Any], t.count == 1, let kind = t.keys.first else {
                throw fail("\(key).target", "must be one of {confident: i}, {ambiguous: [i, j]}, {probabilities: {i: q}}, {uniform: true}")
            }
            let target: LevelSet.Target
            switch kind {
            case "confident": target = .confident(try label(t[kind], "target.confident", classes: k))
            case "ambiguous":
                guard let pair = t[kind] as? [Any], pair.count == 2 else { throw fail("\(key).target.ambiguous", "must be [i, j]") }
                let i = try label(pair[0], "target.ambiguous[0]", classes: k), j = try label(pair[1], "target.ambiguous[1]", classes: k)
                guard i != j else { throw fail("\(key).target.ambiguous", "needs two different classes") }
                target = .ambiguous(i, j)
            case "probabilities":
                guard let q = t[kind] as? [AnyHashable: Any] else { throw fail("\(key).target.probabilities", "must map class to probability") }
                var m = [Int: Double]()
                for (ck, v) in q {
                    let c = try label(ck.base, "target.probabilities", classes: k)
                    guard let x = (v as? Double) ?? (v as? Int).map(Double.init), x >= 0, x <= 1 else {
                        throw fail("\(key).target.probabilities.\(c)", "must be a probability")
                    }
                    m[c] = x
                }
                target = .probabilities(m)
            case "uniform": target = .uniform
            default: throw fail("\(key).target.\(kind)", "unknown target (confident, ambiguous, probabilities, uniform)")
            }
            let sigma = try number("sigma") ?? 0.05
            guard sigma > 0 else { throw fail("\(key).sigma", "must be positive") }
            return LevelSet(model: m.name, target: target, sigma: sigma)
        case "localize":
            try allowed(["anchor", "norm", "weight", "feature-weights"])
            guard let a = o["anchor"] else { throw fail("\(key).anchor", "missing (an .npy file or {csv: file, row: k})") }
            let source = try Job.PointSource(a, at: "\(key).anchor", reader: Job.Reader(file: job.file))
            let anchor = try point(source, key: "\(key).anchor", job: job, dimension: dataDimension, encoding: encoding)
            var fw: [Double]? = nil
            if let w = o["feature-weights"] {
                guard let list = w as? [Any], list.count == dataDimension else {
                    throw fail("\(key).feature-weights", "must be a list of \(dataDimension) numbers")
                }
                fw = try list.map { v in
                    guard let x = (v as? Double) ?? (v as? Int).map(Double.init) else { throw fail("\(key).feature-weights", "must be numbers") }
                    return x
                }
            }
            let weight = try number("weight") ?? 1
            let term = Localize(anchor: anchor, norm: try number("norm") ?? 2, featureWeights: fw)
            return weight == 1 ? term : Weighted(term: term, weight: weight)
        default:
            throw fail(key, "unknown term")
        }
    }
}

/// Ensembles of perturbed parameters θ_j = θ* + σ·ε_j, ε_j ~ N(0, I), drawn once from the
/// job seed (and a salt naming their use), so G is a fixed function of x.
public enum Perturbation {
    public static func ensemble(of network: Sequential, sigma: Double, copies: Int, seed: UInt64, salt: String) -> [Sequential] {
        let saltHash = UInt64(truncatingIfNeeded: salt.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 })
        return (0..<copies).map { j in
            var member = network
            let stream = RandomStream(seed: seed ^ saltHash, chain: j)
            var ordinal: UInt64 = 0
            for l in member.layers.indices {
                var params = member.layers[l].parameters
                for p in params.indices {
                    let noise = stream.normals(params[p].count, iteration: ordinal, purpose: .perturbation)
                    params[p].withUnsafeMutableBufferPointer { buf in
                        for i in 0..<buf.count { buf[i] += Float(sigma * noise[i]) }
                    }
                    ordinal += 1
                }
                if !params.isEmpty { member.layers[l].parameters = params }
            }
            return member
        }
    }
}
