import Foundation
import TensorCore
import Yams

/// A `probefarm train` spec (YAML), validated with key paths in every error.
///
/// ```yaml
/// task: classifier            # classifier | regressor | vae
/// data: {format: idx, train-images: …, train-labels: …, test-images: …, test-labels: …, limit: 60000}
/// # data: {format: csv, train: adult-train.csv, test: adult-test.csv, label: income}
/// layers: [{op: conv2d, out: 32, kernel: 3, padding: 1}, {op: relu}, …, {op: linear, out: 10}]
/// # vae: latent: 10, encoder: […], decoder: […]   (decoder ends in sigmoid)
/// training: {epochs: 5, batch-size: 64, learning-rate: 0.001, schedule: cosine, seed: 1, threads: 2}
/// output: models/fashion-cnn.safetensors   # vae: {encoder: …, decoder: …}
/// ```
public struct TrainingSpec: Sendable {
    public enum Task: String, Sendable, CaseIterable { case classifier, regressor, vae }

    public enum DataSource: Sendable {
        case idx(trainImages: String, trainLabels: String, testImages: String?, testLabels: String?)
        case csv(train: String, test: String?, label: String)
    }

    /// A layer by size: JOBSPEC §1's ops with `out` instead of tensor names.
    public struct LayerRecipe: Sendable {
        public var op: String
        public var out: Int?
        public var kernel: [Int]?
        public var stride: [Int]?
        public var padding: [Int]?
        public var dilation: [Int]?
        public var outputPadding: [Int]?
        public var bias = true
        public var slope: Float?
        public var probability: Float?
        public var shape: [Int]?
    }

    public var task: Task
    public var data: DataSource
    public var limit: Int?
    public var layers: [LayerRecipe] = []
    public var encoder: [LayerRecipe] = []
    public var decoder: [LayerRecipe] = []
    public var latent = 0
    public var epochs = 5
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    public var schedule = LearningRateSchedule.cosine
    public var seed: UInt64 = 1
    public var threads = 0
    public var output: String = ""
    public var outputEncoder: String = ""
    public var outputDecoder: String = ""
}

/// A spec that cannot be used: one line with the key path at fault, exit 78.
public struct SpecError: ProbeFarmError {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
    public var sysexit: Sysexit { .config }

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

extension TrainingSpec {
    /// Reads and validates a spec; relative paths are resolved against its folder.
    public static func load(_ file: String) throws -> TrainingSpec {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DataError(path: file, message: "cannot read the training spec")
        }
        let root: Any?
        do { root = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch {
            throw SpecError(path: file, message: "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let top = root as? [String: Any] else { throw SpecError(path: file, message: "the spec must be a YAML mapping") }
        let base = URL(fileURLWithPath: file).absoluteURL.deletingLastPathComponent()
        return try Parser(file: file, base: base).spec(top)
    }

    struct Parser {
        var file: String
        var base: URL

        func fail(_ key: String, _ message: String) -> SpecError { SpecError(path: file, message: "\(key): \(message)") }
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") ? p : ((base.path as NSString).appendingPathComponent(p) as NSString).standardizingPath
        }

        func check(_ d: [String: Any], at key: String, allowed: Set<String>) throws {
            for k in d.keys.sorted() where !allowed.contains(k) {
                throw fail(key.isEmpty ? k : "\(key).\(k)", "unknown key (expected one of \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        func string(_ d: [String: Any], _ k: String, at key: String) throws -> String? {
            guard let v = d[k] else { return nil }
            guard let s = v as? String else { throw fail("\(key)\(k)", "must be a string") }
            return s
        }
        func int(_ d: [String: Any], _ k: String, at key: String, minimum: Int = 1) throws -> Int? {
            guard let v = d[k] else { return nil }
            guard let i = v as? Int, i >= minimum else { throw fail("\(key)\(k)", "must be an integer ≥ \(minimum)") }
            return i
        }
        func number(_ d: [String: Any], _ k: String, at key: String) throws -> Double? {
            guard let v = d[k] else { return nil }
            if let i = v as? Int { return Double(i) }
            guard let x = v as? Double else { throw fail("\(key)\(k)", "must be a number") }
            return x
        }
        func pair(_ d: [String: Any], _ k: String, at key: String, minimum: Int) throws -> [Int]? {
            guard let v = d[k] else { return nil }
            if let i = v as? Int, i >= minimum { return [i, i] }
            if let a = v as? [Int], a.count == 2, a.allSatisfy({ $0 >= minimum }) { return a }
            throw fail("\(key)\(k)", "must be an integer ≥ \(minimum) or [h, w]")
        }

        func spec(_ top: [String: Any]) throws -> TrainingSpec {
            try check(top, at: "", allowed: ["name", "task", "data", "layers", "encoder", "decoder", "latent", "training", "output"])
            guard let taskName = top["task"] as? String, let task = Task(rawValue: taskName) else {
                throw fail("task", "must be one of \(Task.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let d = top["data"] as? [String: Any] else { throw fail("data", "missing (a mapping)") }
            let source: DataSource
            switch d["format"] as? String {
            case "idx":
                try check(d, at: "data", allowed: ["format", "train-images", "train-labels", "test-images", "test-labels", "limit"])
                guard let ti = try string(d, "train-images", at: "data."), let tl = try string(d, "train-labels", at: "data.") else {
                    throw fail("data", "idx data needs train-images and train-labels")
                }
                source = .idx(trainImages: resolve(ti), trainLabels: resolve(tl),
                              testImages: try string(d, "test-images", at: "data.").map(resolve),
                              testLabels: try string(d, "test-labels", at: "data.").map(resolve))
            case "csv":
                try check(d, at: "data", allowed: ["format", "train", "test", "label", "limit"])
                guard let tr = try string(d, "train", at: "data."), let label = try string(d, "label", at: "data.") else {
                    throw fail("data", "csv data needs train and label")
                }
                source = .csv(train: resolve(tr), test: try string(d, "test", at: "data.").map(resolve), label: label)
            default:
                throw fail("data.format", "must be idx or csv")
            }
            var s = TrainingSpec(task: task, data: source)
            s.limit = try int(d, "limit", at: "data.")
            if task == .vae {
                guard let l = try int(top, "latent", at: "") else { throw fail("latent", "a vae needs latent (the latent dimension)") }
                s.latent = l
                s.encoder = try recipes(top["encoder"], at: "encoder")
                s.decoder = try recipes(top["decoder"], at: "decoder")
                guard let o = top["output"] as? [String: Any], let e = o["encoder"] as? String, let dec = o["decoder"] as? String else {
                    throw fail("output", "a vae needs output: {encoder: FILE, decoder: FILE}")
                }
                try check(o, at: "output", allowed: ["encoder", "decoder"])
                s.outputEncoder = resolve(e)
                s.outputDecoder = resolve(dec)
            } else {
                s.layers = try recipes(top["layers"], at: "layers")
                guard let o = top["output"] as? String else { throw fail("output", "missing (the model file to write)") }
                s.output = resolve(o)
            }
            if let t = top["training"] {
                guard let t = t as? [String: Any] else { throw fail("training", "must be a mapping") }
                try check(t, at: "training", allowed: ["epochs", "batch-size", "learning-rate", "schedule", "seed", "threads"])
                s.epochs = try int(t, "epochs", at: "training.") ?? s.epochs
                s.batchSize = try int(t, "batch-size", at: "training.") ?? s.batchSize
                if let lr = try number(t, "learning-rate", at: "training.") {
                    guard lr > 0 else { throw fail("training.learning-rate", "must be positive") }
                    s.learningRate = Float(lr)
                }
                if let name = try string(t, "schedule", at: "training.") {
                    guard let sch = LearningRateSchedule(rawValue: name) else {
                        throw fail("training.schedule", "must be one of \(LearningRateSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    s.schedule = sch
                }
                s.seed = UInt64(try int(t, "seed", at: "training.", minimum: 0) ?? 1)
                s.threads = try int(t, "threads", at: "training.", minimum: 0) ?? 0
            }
            return s
        }

        func recipes(_ value: Any?, at key: String) throws -> [LayerRecipe] {
            guard let list = value as? [Any], !list.isEmpty else { throw fail(key, "must be a non-empty list of layers") }
            return try list.enumerated().map { i, v in
                let at = "\(key)[\(i)]"
                guard let d = v as? [String: Any], let op = d["op"] as? String else { throw fail(at, "needs op") }
                let allowed: [String: Set<String>] = [
                    "linear": ["out", "bias"], "conv2d": ["out", "kernel", "stride", "padding", "dilation", "bias"],
                    "conv_transpose2d": ["out", "kernel", "stride", "padding", "output_padding", "dilation", "bias"],
                    "maxpool2d": ["kernel", "stride", "padding"], "avgpool2d": ["kernel", "stride", "padding"],
                    "relu": [], "sigmoid": [], "tanh": [], "softplus": [], "softmax": [], "flatten": [],
                    "leaky_relu": ["slope"], "reshape": ["shape"], "dropout": ["p"],
                ]
                guard let keys = allowed[op] else {
                    throw fail("\(at).op", "'\(op)' cannot be trained here (one of \(allowed.keys.sorted().joined(separator: ", ")))")
                }
                try check(d, at: at, allowed: keys.union(["op"]))
                var r = LayerRecipe(op: op)
                r.out = try int(d, "out", at: "\(at).")
                r.kernel = try pair(d, "kernel", at: "\(at).", minimum: 1)
                r.stride = try pair(d, "stride", at: "\(at).", minimum: 1)
                r.padding = try pair(d, "padding", at: "\(at).", minimum: 0)
                r.dilation = try pair(d, "dilation", at: "\(at).", minimum: 1)
                r.outputPadding = try pair(d, "output_padding", at: "\(at).", minimum: 0)
                if let b = d["bias"] { guard let b = b as? Bool else { throw fail("\(at).bias", "must be true or false") }; r.bias = b }
                r.slope = try number(d, "slope", at: "\(at).").map(Float.init)
                r.probability = try number(d, "p", at: "\(at).").map(Float.init)
                if let sh = d["shape"] {
                    guard let a = sh as? [Int], a.allSatisfy({ $0 > 0 }) else { throw fail("\(at).shape", "must be a list of positive integers") }
                    r.shape = a
                }
                if ["linear", "conv2d", "conv_transpose2d"].contains(op), r.out == nil { throw fail(at, "\(op) needs out") }
                if ["conv2d", "conv_transpose2d", "maxpool2d", "avgpool2d"].contains(op), r.kernel == nil { throw fail(at, "\(op) needs kernel") }
                if op == "reshape", r.shape == nil { throw fail(at, "reshape needs shape") }
                return r
            }
        }
    }
}
