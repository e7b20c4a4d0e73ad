import Foundation
import Samplers

/// Why a message was refused.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The peer speaks another protocol version.
    case version(found: Int)
    /// Not a message of this protocol: the reason, for the log.
    case malformed(String)

    public var description: String {
        switch self {
        case .version(let v):
            "protocol version \(v) is not supported (this build speaks version \(WireProtocol.version)); run the same ProbeFarm release on coordinator and workers"
        case .malformed(let why): "malformed message: \(why)"
        }
    }
}

/// Checkpoints travel in two parts: their scalars (iteration, step size, adaptation) in
/// the JSON control frame with every vector emptied, and the vectors — position,
/// gradient, then the metric (and its Cholesky factor) and the running warm-up estimate
/// when present — as one raw frame, checkpoint after checkpoint. Parsing 1,568 doubles of
/// text per 784-d chain cost more than everything else a result needs.
enum CheckpointVectors {
    /// Empties the vectors of `checkpoints` and returns them as one frame.
    static func split(_ checkpoints: inout [ChainCheckpoint]?) -> [UInt8] {
        guard var cps = checkpoints else { return [] }
        var all = [Double]()
        all.reserveCapacity(cps.reduce(0) { $0 + doubles($1, dimension: $1.state.position.count) })
        func take(_ slot: inout ReplicaCheckpoint) {
            all += slot.state.position
            all += slot.state.gradient
            all += slot.metric.scale
            all += slot.metric.factor
            slot.state.position = []
            slot.state.gradient = []
            slot.metric.scale = []
            slot.metric.factor = []
            if let e = slot.adaptation.estimator {
                all += e.mean
                all += e.m2
                slot.adaptation.estimator!.mean = []
                slot.adaptation.estimator!.m2 = []
            }
        }
        for k in cps.indices {
            var own = cps[k].slot
            take(&own)
            cps[k].slot = own
            for r in cps[k].replicas.indices { take(&cps[k].replicas[r]) }
        }
        checkpoints = cps
        return WireCodec.bytes(all)
    }

    /// Doubles one chain state (with its metric and warm-up estimate) carries in the frame.
    static func doubles(_ metric: Metric.Kind, _ estimator: Metric.Kind?, dimension d: Int) -> Int {
        let m = Metric.storedCount(metric, dimension: d)
        let e = estimator.map { MetricEstimator.storedCount($0, dimension: d) } ?? (mean: 0, m2: 0)
        return 2 * d + m.scale + m.factor + e.mean + e.m2
    }

    /// Doubles a checkpoint of a d-dimensional chain carries in the frame, replicas included.
    static func doubles(_ cp: ChainCheckpoint, dimension d: Int) -> Int {
        cp.replicas.reduce(doubles(cp.metric.kind, cp.adaptation.estimator?.kind, dimension: d)) {
            $0 + doubles($1.metric.kind, $1.adaptation.estimator?.kind, dimension: d)
        }
    }

    /// Refills the vectors `split` emptied; `dimension` is checked when the message states it.
    static func join(_ checkpoints: inout [ChainCheckpoint]?, _ frame: [UInt8], dimension: Int?) throws(WireError) {
        guard var cps = checkpoints else {
            guard frame.isEmpty else { throw .malformed("checkpoint vectors without checkpoints") }
            return
        }
        guard !cps.isEmpty, frame.count % 8 == 0, frame.count > 0 else {
            throw .malformed("checkpoint frame of \(frame.count) bytes does not hold \(cps.count) checkpoints")
        }
        // The frame's length grows with d (in d² with a dense metric): find the d it fits.
        let total = frame.count / 8
        var d = 1
        while cps.reduce(0, { $0 + doubles($1, dimension: d) }) < total { d += 1 }
        guard cps.reduce(0, { $0 + doubles($1, dimension: d) }) == total else {
            throw .malformed("checkpoint frame of \(frame.count) bytes does not hold \(cps.count) checkpoints")
        }
        if let dimension, d != dimension {
            throw .malformed("checkpoints have dimension \(d), not \(dimension)")
        }
        let all = WireCodec.doubles(frame)
        var at = 0
        func next(_ count: Int) -> [Double] {
            defer { at += count }
            return Array(all[at..<(at + count)])
        }
        func fill(_ chain: Int, _ slot: inout ReplicaCheckpoint) throws(WireError) {
            guard slot.state.position.isEmpty, slot.state.gradient.isEmpty, slot.metric.scale.isEmpty, slot.metric.factor.isEmpty,
                  slot.adaptation.estimator.map({ $0.mean.isEmpty && $0.m2.isEmpty }) ?? true else {
                throw .malformed("checkpoint of chain \(chain) carries vectors in its control frame")
            }
            slot.state.position = next(d)
            slot.state.gradient = next(d)
            let m = Metric.storedCount(slot.metric.kind, dimension: d)
            slot.metric.scale = next(m.scale)
            slot.metric.factor = next(m.factor)
            if let e = slot.adaptation.estimator {
                let c = MetricEstimator.storedCount(e.kind, dimension: d)
                slot.adaptation.estimator!.mean = next(c.mean)
                slot.adaptation.estimator!.m2 = next(c.m2)
            }
        }
        for k in cps.indices {
            var own = cps[k].slot
            try fill(cps[k].chain, &own)
            cps[k].slot = own
            for r in cps[k].replicas.indices { try fill(cps[k].chain, &cps[k].replicas[r]) }
        }
        checkpoints = cps
    }
}

/// Turns messages into frames and back. Decoding checks everything a peer could get
/// wrong (version, JSON, array frame sizes) and never traps on bad input.
public enum WireCodec {
    struct Head: Decodable {
        var `protocol`: Int?
        var type: String?
    }

    struct Envelope<Body: Codable>: Codable {
        var `protocol`: Int
        var type: String
        var body: Body
    }

    struct Empty: Codable {}

    struct Reason: Codable { var reason: String }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    static func control<B: Codable>(_ type: String, _ body: B, version: Int = WireProtocol.version) -> [UInt8] {
        // Encoding our own value types cannot fail.
        Array(try! encoder().encode(Envelope(protocol: version, type: type, body: body)))
    }

    /// The frames of a message (for a DEALER; a ROUTER puts the peer's id in front).
    public static func encode(_ message: WireMessage, version: Int = WireProtocol.version) -> [[UInt8]] {
        let t = message.typeName
        switch message {
        case .ready(let r): return [control(t, r, version: version)]
        case .job(let j): return [control(t, j, version: version)]
        case .assign(var a):
            let vectors = CheckpointVectors.split(&a.checkpoints)
            return [control(t, a, version: version), vectors]
        case .heartbeat: return [control(t, Empty(), version: version)]
        case .fetch(let f): return [control(t, f, version: version)]
        case .chunk(let h, let bytes): return [control(t, h, version: version), bytes]
        case .failure(let f): return [control(t, f, version: version)]
        case .done(let reason): return [control(t, Reason(reason: reason), version: version)]
        case .result(let r):
            var header = r.header, checkpoints: [ChainCheckpoint]? = header.checkpoints
            let vectors = CheckpointVectors.split(&checkpoints)
            header.checkpoints = checkpoints ?? []
            return [control(t, header, version: version), vectors, bytes(r.positions), bytes(r.logAcceptance),
                    bytes(r.acceptance), bytes(r.stepSize), r.divergent, bytes(r.steps), bytes(r.treeDepth), bytes(r.energy)]
        }
    }

    public static func decode(_ frames: [[UInt8]]) throws(WireError) -> WireMessage {
        guard let first = frames.first, !first.isEmpty else { throw .malformed("no control frame") }
        let data = Data(first)
        let json = decoder()
        guard let head = try? json.decode(Head.self, from: data) else { throw .malformed("control frame is not JSON") }
        guard let version = head.protocol else { throw .malformed("control frame has no protocol version") }
        guard version == WireProtocol.version else { throw .version(found: version) }
        func body<B: Codable>(_ type: B.Type) throws(WireError) -> B {
            do { return try json.decode(Envelope<B>.self, from: data).body } catch {
                throw .malformed("\(head.type ?? "?") body: \(Self.describe(error))")
            }
        }
        func frameCount(_ n: Int) throws(WireError) {
            guard frames.count == n else { throw .malformed("\(head.type ?? "?") has \(frames.count) frames, expected \(n)") }
        }
        switch head.type {
        case "ready": try frameCount(1); return .ready(try body(Ready.self))
        case "job": try frameCount(1); return .job(try body(JobSpec.self))
        case "assign":
            try frameCount(2)
            var a = try body(Assignment.self)
            try CheckpointVectors.join(&a.checkpoints, frames[1], dimension: nil)
            return .assign(a)
        case "heartbeat": try frameCount(1); return .heartbeat
        case "fetch": try frameCount(1); return .fetch(try body(FetchRequest.self))
        case "error": try frameCount(1); return .failure(try body(WireFailure.self))
        case "done": try frameCount(1); return .done(reason: try body(Reason.self).reason)
        case "chunk":
            try frameCount(2)
            let h = try body(ChunkHeader.self)
            guard h.offset >= 0, h.total >= 0, h.offset + frames[1].count <= h.total else {
                throw .malformed("chunk [\(h.offset), +\(frames[1].count)) outside a file of \(h.total) bytes")
            }
            return .chunk(h, frames[1])
        case "result":
            try frameCount(10)
            var h = try body(SegmentResult.Header.self)
            guard h.draws >= 0, h.dimension > 0, h.length > 0, !h.chains.isEmpty, h.checkpoints.count == h.chains.count,
                  h.draws <= h.length else {
                throw .malformed("result header is inconsistent (chains \(h.chains.count), draws \(h.draws), dimension \(h.dimension))")
            }
            let n = h.chains.count * h.draws
            let (sizeOK, overflow) = n.multipliedReportingOverflow(by: h.dimension * 8)
            guard !overflow, frames[2].count == sizeOK, frames[3].count == n * 8, frames[4].count == n * 8,
                  frames[5].count == n * 8, frames[6].count == n, frames[7].count == n * 8, frames[8].count == n * 8,
                  frames[9].count == n * 8 else {
                throw .malformed("result array frames do not match \(h.chains.count) chains × \(h.draws) draws × \(h.dimension)")
            }
            var checkpoints: [ChainCheckpoint]? = h.checkpoints
            try CheckpointVectors.join(&checkpoints, frames[1], dimension: h.dimension)
            h.checkpoints = checkpoints ?? []
            return .result(SegmentResult(header: h, positions: doubles(frames[2]), logAcceptance: doubles(frames[3]),
                                         acceptance: doubles(frames[4]), stepSize: doubles(frames[5]), divergent: frames[6],
                                         steps: doubles(frames[7]), treeDepth: doubles(frames[8]), energy: doubles(frames[9])))
        default:
            throw .malformed("unknown message type '\(head.type ?? "")'")
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let c):
            return "missing key \((c.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
            return "bad value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return "\(error)"
        }
    }

    /// Little-endian bytes of doubles (this is the machine order on every platform we run).
    public static func bytes(_ values: [Double]) -> [UInt8] {
        values.withUnsafeBytes { raw in
            var out = [UInt8](repeating: 0, count: raw.count)
            if !raw.isEmpty {
                out.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
            }
            return out
        }
    }

    public static func doubles(_ bytes: [UInt8]) -> [Double] {
        var out = [Double](repeating: 0, count: bytes.count / 8)
        if !out.isEmpty {
            out.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<dst.count])) } }
        }
        return out
    }
}
