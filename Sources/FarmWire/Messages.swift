import Foundation
import Probes
import Samplers

/// The wire protocol: every message is one JSON control frame
/// `{"protocol": 3, "type": …, "body": {…}}`, followed for bulk data by raw
/// little-endian array frames whose sizes the body states.
public enum WireProtocol {
    public static let version = 4
    /// The largest message a coordinator accepts by default (libzmq drops a peer that
    /// sends more): far above a segment of 64 chains × 100 draws × 784 doubles (40 MB).
    public static let maxMessageBytes: Int64 = 256 << 20
}

/// A worker announces itself (again after every reconnect).
public struct Ready: Codable, Sendable, Equatable {
    public var name: String
    public var host: String
    public var pid: Int32
    /// New for every process start and reconnect: a READY with a new session means the
    /// worker lost whatever it was given before.
    public var session: String
    /// Segments it accepts at once (its credit).
    public var capacity: Int
    /// sha256 of the files already in its cache.
    public var cached: [String]
    public var probefarm: String
    public var blas: String

    public init(name: String, host: String, pid: Int32, session: String, capacity: Int, cached: [String], probefarm: String,
                blas: String) {
        self.name = name
        self.host = host
        self.pid = pid
        self.session = session
        self.capacity = capacity
        self.cached = cached
        self.probefarm = probefarm
        self.blas = blas
    }
}

/// A file a job names, identified by content.
public struct FileRef: Codable, Sendable, Equatable {
    /// The path as the job file writes it.
    public var path: String
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}

/// A job as a worker needs it: the job file as the coordinator read it, and the files it names.
public struct JobSpec: Codable, Sendable, Equatable {
    /// The job file's sha256; assignments name the job by it.
    public var id: String
    public var fileName: String
    /// The job file as the coordinator read it: workers rebuild the job from this
    /// without parsing YAML, and so read exactly the same values.
    public var document: JobDocument
    public var files: [FileRef]

    public init(id: String, fileName: String, document: JobDocument, files: [FileRef]) {
        self.id = id
        self.fileName = fileName
        self.document = document
        self.files = files
    }
}

/// Run a group of chains from `firstIteration` for `length` iterations. Without
/// checkpoints the worker starts the chains (the group's first segment).
public struct Assignment: Codable, Sendable, Equatable {
    public var job: String
    public var group: Int
    public var chains: [Int]
    public var firstIteration: Int
    public var length: Int
    public var checkpoints: [ChainCheckpoint]?

    public init(job: String, group: Int, chains: [Int], firstIteration: Int, length: Int, checkpoints: [ChainCheckpoint]?) {
        self.job = job
        self.group = group
        self.chains = chains
        self.firstIteration = firstIteration
        self.length = length
        self.checkpoints = checkpoints
    }
}

/// A finished segment: the post-warm-up draws of every chain of the group, their
/// statistics, and the checkpoints at the segment's end.
public struct SegmentResult: Sendable, Equatable {
    public struct Header: Codable, Sendable, Equatable {
        public var job: String
        public var group: Int
        public var chains: [Int]
        public var firstIteration: Int
        public var length: Int
        /// Post-warm-up draws per chain in this segment, and their first iteration.
        public var draws: Int
        public var firstDraw: Int
        public var dimension: Int
        public var checkpoints: [ChainCheckpoint]
        public var seconds: Double
        /// Gradient evaluations of all the segment's chains, warm-up iterations included.
        public var gradientEvaluations: Int

        public init(job: String, group: Int, chains: [Int], firstIteration: Int, length: Int, draws: Int, firstDraw: Int,
                    dimension: Int, checkpoints: [ChainCheckpoint], seconds: Double, gradientEvaluations: Int = 0) {
            self.gradientEvaluations = gradientEvaluations
            self.job = job
            self.group = group
            self.chains = chains
            self.firstIteration = firstIteration
            self.length = length
            self.draws = draws
            self.firstDraw = firstDraw
            self.dimension = dimension
            self.checkpoints = checkpoints
            self.seconds = seconds
        }
    }

    public var header: Header
    /// chains × draws × dimension, chain-major.
    public var positions: [Double]
    /// chains × draws each.
    public var logAcceptance: [Double]
    public var acceptance: [Double]
    public var stepSize: [Double]
    public var divergent: [UInt8]
    /// Leapfrog steps (gradient evaluations), tree depth and Hamiltonian per draw (zeros
    /// and NaN where a kernel has none).
    public var steps: [Double]
    public var treeDepth: [Double]
    public var energy: [Double]

    public init(header: Header, positions: [Double], logAcceptance: [Double], acceptance: [Double], stepSize: [Double],
                divergent: [UInt8], steps: [Double]? = nil, treeDepth: [Double]? = nil, energy: [Double]? = nil) {
        self.steps = steps ?? Array(repeating: 1, count: divergent.count)
        self.treeDepth = treeDepth ?? Array(repeating: 0, count: divergent.count)
        self.energy = energy ?? Array(repeating: .nan, count: divergent.count)
        self.header = header
        self.positions = positions
        self.logAcceptance = logAcceptance
        self.acceptance = acceptance
        self.stepSize = stepSize
        self.divergent = divergent
    }
}

/// A slice of a file, asked for by content hash.
public struct FetchRequest: Codable, Sendable, Equatable {
    public var sha256: String
    public var offset: Int
    public var length: Int

    public init(sha256: String, offset: Int, length: Int) {
        self.sha256 = sha256
        self.offset = offset
        self.length = length
    }
}

public struct ChunkHeader: Codable, Sendable, Equatable {
    public var sha256: String
    public var offset: Int
    public var total: Int

    public init(sha256: String, offset: Int, total: Int) {
        self.sha256 = sha256
        self.offset = offset
        self.total = total
    }
}

/// Something went wrong; `kind` is machine-readable ("protocol", "job", "fetch", "message").
public struct WireFailure: Codable, Sendable, Equatable {
    public var kind: String
    public var message: String

    public init(kind: String, message: String) {
        self.kind = kind
        self.message = message
    }
}

public enum WireMessage: Sendable, Equatable {
    case ready(Ready)
    case job(JobSpec)
    case assign(Assignment)
    case result(SegmentResult)
    case heartbeat
    case fetch(FetchRequest)
    case chunk(ChunkHeader, [UInt8])
    case failure(WireFailure)
    /// The job is over: the worker may leave.
    case done(reason: String)

    public var typeName: String {
        switch self {
        case .ready: "ready"
        case .job: "job"
        case .assign: "assign"
        case .result: "result"
        case .heartbeat: "heartbeat"
        case .fetch: "fetch"
        case .chunk: "chunk"
        case .failure: "error"
        case .done: "done"
        }
    }
}
