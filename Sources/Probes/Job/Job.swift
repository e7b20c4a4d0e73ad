import Foundation
import NeuralModels
import Samplers
import TensorCore

/// A probing job, as written in a job file (JOBSPEC §2), validated for form. Building it
/// into a target (``JobPlan``) checks it against the models.
public struct Job: Sendable {
    public struct ModelSource: Sendable, Equatable {
        public var path: String
        /// `perturb: {sigma, copies}`: an ensemble of θ* + σε_j standing for q*(θ).
        public var perturbSigma: Double?
        public var perturbCopies: Int?
    }

    public enum SpaceSpec: Sendable {
        case latent(decoder: String, prior: Bool)
        case data(dimension: Int, lower: Bounds, upper: Bounds, fixed: [Int: Double], start: PointSource?)
    }

    /// A data point named in a job: an .npy file, or a row of a CSV file (`{csv: f, row: k}`,
    /// k counting data rows from 0), encoded with the probed model's `probefarm.features`.
    public enum PointSource: Sendable, Equatable {
        case npy(String)
        case csv(String, row: Int)

        public var file: String {
            switch self {
            case .npy(let f): return f
            case .csv(let f, _): return f
            }
        }

        init(_ value: Any, at key: String, reader p: Reader) throws(JobError) {
            if let path = value as? String, !path.isEmpty { self = .npy(path); return }
            guard let m = value as? [String: Any] else { throw p.fail(key, "must be an .npy file or {csv: file, row: k}") }
            try p.allowed(m, at: key, ["csv", "row"])
            guard let file = m["csv"] as? String, !file.isEmpty else { throw p.fail("\(key).csv", "missing (a CSV file with a header row)") }
            guard let row = try p.int(m, "row", at: key, minimum: 0) else { throw p.fail("\(key).row", "missing (the data row, from 0)") }
            self = .csv(file, row: row)
        }
    }

    public struct TermSpec: Sendable {
        public var kind: String
        public var keyPath: String
        public var options: [String: AnySendable]
        public var weight: Double
    }

    public struct StopRule: Sendable, Equatable, Codable {
        public var rhat: Double
        public var essBulk: Double
        public var essTail: Double
        public var maxDraws: Int

        public init(rhat: Double, essBulk: Double, essTail: Double, maxDraws: Int) {
            self.rhat = rhat
            self.essBulk = essBulk
            self.essTail = essTail
            self.maxDraws = maxDraws
        }
    }

    public var file: String
    public var directory: String
    public var sha256: String
    public var name: String
    public var seed: UInt64
    public var models: [(name: String, source: ModelSource)]
    public var space: SpaceSpec
    public var probe: [TermSpec]
    public var temperature: Double
    public var sampler: SamplerSettings
    public var chains: Int
    /// Chains stepped together as one batch (`sampler.batch`). Part of the job, not of
    /// the machine: floating-point results depend on the batch a chain is in, so fixing
    /// the groups makes the draws independent of how many workers run them.
    public var batch: Int
    /// Starting points drawn per chain; the chain starts at the most probable one.
    public var initCandidates: Int
    public var stop: StopRule?
    /// `sampler.thin`: every k-th draw is written to the run's files (all are diagnosed).
    public var thin: Int
    /// `reference`: the data the answer is compared with (a test set).
    public var reference: ReferenceSpec?
    /// `space.data.fixed` entries given by feature name (resolved against the model's
    /// `probefarm.features` when the job is planned): a value in the data's units, or nil
    /// (the list form) for the start point's value.
    public var namedFixed: [NamedFixed] = []
    public var output: String
    /// The job file as read, resolved (a farm sends it to its workers).
    public var document: JobDocument
    /// Local copies standing in for files as the job names them (a worker's cache).
    public var fileOverrides: [String: String] = [:]

    /// Resolves a path relative to the job file's folder (or to its local copy).
    public func resolve(_ p: String) -> String {
        if let local = fileOverrides[p] { return local }
        return p.hasPrefix("/") ? p : ((directory as NSString).appendingPathComponent(p) as NSString).standardizingPath
    }

    /// Every file the job names, as written: weight files, the start point, anchors.
    public var referencedFiles: [String] {
        var files = models.map(\.source.path)
        if case let .data(_, _, _, _, start?) = space { files.append(start.file) }
        for term in probe where term.kind == "localize" {
            if let a = term.options["anchor"]?.value as? String { files.append(a) }
            if let a = term.options["anchor"]?.value as? [String: Any], let f = a["csv"] as? String { files.append(f) }
        }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }
}

/// A fixed feature named in a job file: `age: 39`, `sex: Male`, `sex=Male: 1`, or a name
/// alone (fixed at the start point).
public struct NamedFixed: Sendable {
    public var name: String
    public var value: AnySendable?
}

/// A YAML value carried into term options (Sendable wrapper over Yams' output).
public struct AnySendable: @unchecked Sendable {
    public var value: Any
}

/// A job file that cannot be run: one line with the file and the key path, exit 78.
public struct JobError: ProbeFarmError {
    public var file: String
    public var message: String
    public var sysexit: Sysexit
    public var description: String { "\(file): \(message)" }

    public init(file: String, _ message: String, sysexit: Sysexit = .config) {
        self.file = file
        self.message = message
        self.sysexit = sysexit
    }
}

extension Job {
    static let topKeys: Set<String> = ["name", "seed", "models", "space", "probe", "temperature", "sampler",
                                       "chains", "stop", "output", "reference"]
    public static let termKinds: Set<String> = ["fixed-label", "fixed-value", "risky", "entropy", "sensitive",
                                                "contrast", "level-set", "localize"]

    /// Upper bounds on a job's sizes, checked before anything is allocated (JOBSPEC §2).
    public enum Limits {
        public static let chains = 100_000
        public static let batch = 4_096
        /// warm-up, draws and stop.max-draws, each.
        public static let iterations = 10_000_000
        public static let initCandidates = 10_000
        public static let leapfrogSteps = 10_000
    }

    /// Reads and validates the form of a job file.
    public static func load(_ path: String) throws(JobError) -> Job {
        var info = stat()
        guard stat(path, &info) == 0 else { throw JobError(file: path, "cannot read the job file", sysexit: .noInput) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw JobError(file: path, "is not a regular file", sysexit: .noInput) }
        guard info.st_size <= maxFileBytes else {
            throw JobError(file: path, "is \(info.st_size) bytes; a job file is at most \(maxFileBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JobError(file: path, "cannot read the job file", sysexit: .noInput)
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            throw JobError(file: path, "is UTF-16 text; save it as UTF-8")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw JobError(file: path, "is not UTF-8 text") }
        let directory = URL(fileURLWithPath: path).absoluteURL.deletingLastPathComponent().path
        return try parse(text, file: path, directory: directory)
    }

    /// The largest job file read (a job is a few hundred bytes).
    public static let maxFileBytes = 1 << 20

    /// Reads and validates the form of a job file's text; relative paths in it are
    /// relative to `directory`.
    public static func parse(_ text: String, file path: String, directory: String) throws(JobError) -> Job {
        let document: JobDocument
        do { document = try JobDocument(yaml: text) } catch let error as JobDocument.TooLarge {
            throw JobError(file: path, "\(error)")
        } catch {
            throw JobError(file: path, "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        return try parse(document, file: path, directory: directory, sha256: SHA256.hex(Array(text.utf8)))
    }

    /// Validates a job file's resolved YAML (as ``parse(_:file:directory:)`` read it);
    /// `sha256` is the file's.
    public static func parse(_ document: JobDocument, file path: String, directory: String, sha256: String) throws(JobError) -> Job {
        guard let root = document.resolved as? [String: Any] else { throw JobError(file: path, "a job file is a YAML mapping") }
        let p = Reader(file: path)
        try p.allowed(root, at: "", Self.topKeys)
        guard let modelMap = root["models"] as? [String: Any], !modelMap.isEmpty else {
            throw p.fail("models", "must map model names to weight files")
        }
        var models = [(name: String, source: ModelSource)]()
        for name in modelMap.keys.sorted() {
            let key = "models.\(name)"
            if let path = modelMap[name] as? String {
                models.append((name, ModelSource(path: path)))
            } else if let m = modelMap[name] as? [String: Any] {
                try p.allowed(m, at: key, ["weights", "perturb"])
                guard let w = m["weights"] as? String else { throw p.fail("\(key).weights", "missing (the weight file)") }
                var source = ModelSource(path: w)
                if let pert = m["perturb"] {
                    guard let pd = pert as? [String: Any] else { throw p.fail("\(key).perturb", "must be {sigma, copies}") }
                    try p.allowed(pd, at: "\(key).perturb", ["sigma", "copies"])
                    guard let s = try p.number(pd, "sigma", at: "\(key).perturb"), s > 0 else {
                        throw p.fail("\(key).perturb.sigma", "must be a positive number")
                    }
                    source.perturbSigma = s
                    source.perturbCopies = try p.int(pd, "copies", at: "\(key).perturb", minimum: 1, maximum: 10_000) ?? 100
                }
                models.append((name, source))
            } else {
                throw p.fail(key, "must be a weight file path or {weights, perturb}")
            }
        }

        guard let spaceMap = root["space"] as? [String: Any], spaceMap.count == 1 else {
            throw p.fail("space", "must be {latent: …} or {data: …}")
        }
        let space: SpaceSpec
        var namedFixed = [NamedFixed]()
        if let l = spaceMap["latent"] {
            guard let lm = l as? [String: Any] else { throw p.fail("space.latent", "must be {decoder, prior}") }
            try p.allowed(lm, at: "space.latent", ["decoder", "prior"])
            guard let dec = lm["decoder"] as? String else { throw p.fail("space.latent.decoder", "missing (a model name)") }
            let prior = (lm["prior"] as? String) ?? "standard-normal"
            guard prior == "standard-normal" || prior == "none" else {
                throw p.fail("space.latent.prior", "must be standard-normal or none")
            }
            space = .latent(decoder: dec, prior: prior == "standard-normal")
        } else if let d = spaceMap["data"] {
            guard let dm = d as? [String: Any] else { throw p.fail("space.data", "must be a mapping") }
            try p.allowed(dm, at: "space.data", ["dimension", "lower", "upper", "fixed", "start"])
            guard let dim = try p.int(dm, "dimension", at: "space.data", minimum: 1) else {
                throw p.fail("space.data.dimension", "missing")
            }
            let lower = try p.bounds(dm["lower"], dimension: dim, at: "space.data.lower")
            let upper = try p.bounds(dm["upper"], dimension: dim, at: "space.data.upper")
            for i in 0..<dim {
                if let l = lower[i], let h = upper[i], !(l < h) {
                    throw p.fail("space.data.lower", "feature \(i): lower \(l) is not below upper \(h)")
                }
            }
            var fixed = [Int: Double]()
            if let f = dm["fixed"] {
                if let names = f as? [Any] {
                    for (j, n) in names.enumerated() {
                        guard let name = n as? String else { throw p.fail("space.data.fixed[\(j)]", "must be a feature name") }
                        namedFixed.append(NamedFixed(name: name, value: nil))
                    }
                }
                guard let fm = f as? [AnyHashable: Any] ?? (f is [Any] ? [:] : nil) else {
                    throw p.fail("space.data.fixed", "must map feature index (or name) to value, or list feature names")
                }
                for (k, v) in fm {
                    if (k as? Int) == nil, Int("\(k)") == nil {
                        namedFixed.append(NamedFixed(name: "\(k)", value: AnySendable(value: v)))
                        continue
                    }
                    guard let i = (k as? Int) ?? Int("\(k)"), i >= 0, i < dim else {
                        throw p.fail("space.data.fixed", "feature index \(k) is outside 0..<\(dim)")
                    }
                    guard let x = (v as? Double) ?? (v as? Int).map(Double.init) else {
                        throw p.fail("space.data.fixed.\(i)", "must be a number")
                    }
                    fixed[i] = x
                }
            }
            let start = try dm["start"].map { v throws(JobError) in try PointSource(v, at: "space.data.start", reader: p) }
            namedFixed.sort { $0.name < $1.name }
            space = .data(dimension: dim, lower: lower, upper: upper, fixed: fixed, start: start)
        } else {
            throw p.fail("space", "must be {latent: …} or {data: …}")
        }

        guard let probeList = root["probe"] as? [Any], !probeList.isEmpty else {
            throw p.fail("probe", "must be a non-empty list of terms")
        }
        var terms = [TermSpec]()
        for (i, entry) in probeList.enumerated() {
            let key = "probe[\(i)]"
            guard let em = entry as? [String: Any], em.count == 1, let kind = em.keys.first else {
                throw p.fail(key, "must be one term: {kind: {options}}")
            }
            guard termKinds.contains(kind) else {
                throw p.fail("\(key).\(kind)", "unknown term (one of \(termKinds.sorted().joined(separator: ", ")))")
            }
            var options = (em[kind] as? [String: Any]) ?? [:]
            if em[kind] != nil && !(em[kind] is [String: Any]) && !(em[kind] is NSNull) {
                throw p.fail("\(key).\(kind)", "options must be a mapping")
            }
            var weight = 1.0
            if kind != "localize", let w = options.removeValue(forKey: "weight") {
                guard let x = (w as? Double) ?? (w as? Int).map(Double.init) else { throw p.fail("\(key).\(kind).weight", "must be a number") }
                weight = x
            }
            terms.append(TermSpec(kind: kind, keyPath: "\(key).\(kind)", options: options.mapValues { AnySendable(value: $0) }, weight: weight))
        }

        let temperature = try p.number(root, "temperature", at: "") ?? 1
        guard temperature > 0, temperature.isFinite else { throw p.fail("temperature", "must be a finite positive number") }
        var sampler = SamplerSettings()
        var batch = 4, initCandidates = 16, thin = 1
        if let s = root["sampler"] {
            guard let sm = s as? [String: Any] else { throw p.fail("sampler", "must be a mapping") }
            try p.allowed(sm, at: "sampler", ["method", "warmup", "draws", "target-acceptance", "leapfrog-steps", "step-size",
                                              "metric", "max-tree-depth", "batch", "anneal", "init-candidates", "tempering",
                                              "pool-metric", "restart-stranded", "thin"])
            let methodName = (sm["method"] as? String) ?? SamplerSettings.Method.nuts.rawValue
            guard let method = SamplerSettings.Method(rawValue: methodName) else {
                throw p.fail("sampler.method", "'\(methodName)' is not a method; use nuts (the default), hmc, mala, rwm or de")
            }
            var metric = Metric.Kind.diagonal
            if let m = sm["metric"] {
                guard let ms = m as? String, let kind = Metric.Kind(rawValue: ms) else {
                    throw p.fail("sampler.metric", "must be diagonal (the default), dense or identity")
                }
                metric = kind
            }
            let depth = try p.int(sm, "max-tree-depth", at: "sampler", minimum: 1) ?? 10
            guard depth <= 15 else { throw p.fail("sampler.max-tree-depth", "must be in 1...15 (2^depth − 1 leapfrog steps at most)") }
            let acceptance = try p.number(sm, "target-acceptance", at: "sampler")
            if let a = acceptance, !(a > 0 && a < 1) { throw p.fail("sampler.target-acceptance", "must be in (0, 1)") }
            let step = try p.number(sm, "step-size", at: "sampler")
            if let s = step, !(s > 0) { throw p.fail("sampler.step-size", "must be positive") }
            var anneal: Double? = 0.01
            if let a = sm["anneal"] {
                if let s = a as? String, s == "none" { anneal = nil } else {
                    guard let b = (a as? Double) ?? (a as? Int).map(Double.init), b > 0, b <= 1 else {
                        throw p.fail("sampler.anneal", "must be the starting inverse temperature in (0, 1], or none")
                    }
                    anneal = b
                }
            }
            var tempering: SamplerSettings.Tempering? = nil
            if let t = sm["tempering"] {
                guard let tm = t as? [String: Any] else { throw p.fail("sampler.tempering", "must be a mapping {replicas, max-temperature}") }
                try p.allowed(tm, at: "sampler.tempering", ["replicas", "max-temperature"])
                let replicas = try p.int(tm, "replicas", at: "sampler.tempering", minimum: 2) ?? 8
                guard replicas <= 64 else { throw p.fail("sampler.tempering.replicas", "must be in 2...64") }
                let hottest = try p.number(tm, "max-temperature", at: "sampler.tempering") ?? 100
                guard hottest > 1, hottest.isFinite else {
                    throw p.fail("sampler.tempering.max-temperature", "must be a finite temperature above 1 (the hottest replica's; the coldest is 1)")
                }
                tempering = SamplerSettings.Tempering(replicas: replicas, maxTemperature: hottest)
            }
            sampler = SamplerSettings(
                method: method, warmup: try p.int(sm, "warmup", at: "sampler", minimum: 0, maximum: Limits.iterations) ?? 1000,
                draws: try p.int(sm, "draws", at: "sampler", minimum: 4, maximum: Limits.iterations) ?? 2000, targetAcceptance: acceptance,
                leapfrogSteps: try p.int(sm, "leapfrog-steps", at: "sampler", minimum: 1, maximum: Limits.leapfrogSteps) ?? 10,
                maxTreeDepth: depth, initialStepSize: step, metric: metric, annealFrom: anneal, tempering: tempering)
            batch = try p.int(sm, "batch", at: "sampler", minimum: 1, maximum: Limits.batch) ?? 4
            for (key, path) in [("pool-metric", \SamplerSettings.poolMetric), ("restart-stranded", \SamplerSettings.restartStranded)] {
                guard let v = sm[key] else { continue }
                guard let b = v as? Bool else { throw p.fail("sampler.\(key)", "must be true or false") }
                sampler[keyPath: path] = b
            }
            if method == .de {
                guard batch >= DifferentialEvolution.minimumBatch else {
                    throw p.fail("sampler.batch", "is \(batch); differential evolution moves chains with two others of the batch: use batch ≥ \(DifferentialEvolution.minimumBatch)")
                }
                guard tempering == nil else {
                    throw p.fail("sampler.tempering", "does not combine with method de (its moves would mix temperatures); use nuts, hmc, mala or rwm")
                }
            }
            initCandidates = try p.int(sm, "init-candidates", at: "sampler", minimum: 1, maximum: Limits.initCandidates) ?? 16
            thin = try p.int(sm, "thin", at: "sampler", minimum: 1, maximum: Limits.iterations) ?? 1
        } else {
            sampler.annealFrom = 0.01
        }
        let chains = try p.int(root, "chains", at: "", minimum: 1, maximum: Limits.chains) ?? 4
        if sampler.method == .de, chains % batch != 0 && chains % batch < DifferentialEvolution.minimumBatch || chains < DifferentialEvolution.minimumBatch {
            throw p.fail("chains", "\(chains) chains in batches of \(batch) leave a batch of \(chains < batch ? chains : chains % batch); differential evolution needs ≥ \(DifferentialEvolution.minimumBatch) in every batch")
        }
        var stop: StopRule? = nil
        if let s = root["stop"] {
            guard let sm = s as? [String: Any] else { throw p.fail("stop", "must be a mapping") }
            try p.allowed(sm, at: "stop", ["rhat", "ess-bulk", "ess-tail", "max-draws"])
            stop = StopRule(rhat: try p.number(sm, "rhat", at: "stop") ?? 1.01,
                            essBulk: try p.number(sm, "ess-bulk", at: "stop") ?? 400,
                            essTail: try p.number(sm, "ess-tail", at: "stop") ?? 400,
                            maxDraws: try p.int(sm, "max-draws", at: "stop", minimum: 4, maximum: Limits.iterations) ?? min(Limits.iterations, 10 * sampler.draws))
            if stop!.maxDraws < sampler.draws { throw p.fail("stop.max-draws", "is below sampler.draws (\(sampler.draws))") }
            guard stop!.rhat > 1, stop!.rhat.isFinite else { throw p.fail("stop.rhat", "must be a number above 1 (R-hat is never below 1; 1.01 is usual)") }
            guard stop!.essBulk >= 0, stop!.essTail >= 0 else { throw p.fail(stop!.essBulk < 0 ? "stop.ess-bulk" : "stop.ess-tail", "must not be negative") }
        }
        let name = (root["name"] as? String) ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var seed: UInt64 = 1
        if let s = root["seed"] {
            guard let i = s as? Int, i >= 0 else { throw p.fail("seed", "must be a non-negative integer") }
            seed = UInt64(i)
        }
        let output = (root["output"] as? String) ?? "runs/\(name)"
        let reference = try root["reference"].map { v throws(JobError) in try ReferenceSpec(v, reader: p) }
        return Job(file: path, directory: directory, sha256: sha256, name: name, seed: seed,
                   models: models, space: space, probe: terms, temperature: temperature, sampler: sampler,
                   chains: chains, batch: batch, initCandidates: initCandidates, stop: stop, thin: thin, reference: reference,
                   namedFixed: namedFixed, output: output, document: document)
    }

    /// Typed access to YAML mappings with key-path errors.
    struct Reader {
        var file: String
        func fail(_ key: String, _ message: String) -> JobError { JobError(file: file, "\(key): \(message)") }
        func allowed(_ d: [String: Any], at key: String, _ keys: Set<String>) throws(JobError) {
            for k in d.keys.sorted() where !keys.contains(k) {
                throw fail(key.isEmpty ? k : "\(key).\(k)", "unknown key (expected one of \(keys.sorted().joined(separator: ", ")))")
            }
        }
        func number(_ d: [String: Any], _ k: String, at key: String) throws(JobError) -> Double? {
            guard let v = d[k] else { return nil }
            if let i = v as? Int { return Double(i) }
            guard let x = v as? Double, x.isFinite else { throw fail(key.isEmpty ? k : "\(key).\(k)", "must be a finite number") }
            return x
        }
        func int(_ d: [String: Any], _ k: String, at key: String, minimum: Int, maximum: Int = Int.max) throws(JobError) -> Int? {
            guard let v = d[k] else { return nil }
            let limit = maximum == Int.max ? "" : " and ≤ \(maximum)"
            guard let i = v as? Int, i >= minimum, i <= maximum else { throw fail(key.isEmpty ? k : "\(key).\(k)", "must be an integer ≥ \(minimum)\(limit)") }
            return i
        }
        func bounds(_ v: Any?, dimension: Int, at key: String) throws(JobError) -> Bounds {
            guard let v else { return .all(nil) }
            if let x = (v as? Double) ?? (v as? Int).map(Double.init) { return .all(x) }
            guard let list = v as? [Any], list.count == dimension else {
                throw fail(key, "must be a number or a list of \(dimension) numbers (null for unbounded)")
            }
            var out = [Double?]()
            for (i, item) in list.enumerated() {
                if item is NSNull { out.append(nil); continue }
                guard let x = (item as? Double) ?? (item as? Int).map(Double.init) else { throw fail("\(key)[\(i)]", "must be a number or null") }
                out.append(x)
            }
            return .each(out)
        }
    }
}
