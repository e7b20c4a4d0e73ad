import ChainFarm
import FarmWire
import Foundation
import Samplers
import TensorCore
import Testing

/// The wire codec and the journal: round trips, and refusal (never a trap) of anything
/// a peer or a crash could produce.
struct FarmWireTests {
    static func sampleResult() -> SegmentResult {
        let cp = ChainCheckpoint(chain: 3, iteration: 120, state: ChainState(position: [0.5, -1.25], logDensity: -2.5, gradient: [0.1, -0.0]),
                                 stepSize: 0.3, adaptation: WarmupAdaptation(initialStep: 0.1, targetAcceptance: 0.574))
        let h = SegmentResult.Header(job: "abc", group: 1, chains: [3], firstIteration: 100, length: 20, draws: 20, firstDraw: 100,
                                     dimension: 2, checkpoints: [cp], seconds: 0.5)
        return SegmentResult(header: h, positions: (0..<40).map { Double($0) * 0.1 + .pi }, logAcceptance: (0..<20).map { -Double($0) },
                             acceptance: Array(repeating: 0.5, count: 20), stepSize: Array(repeating: 0.3, count: 20),
                             divergent: (0..<20).map { UInt8($0 % 2) }, steps: (0..<20).map { Double($0 + 1) },
                             treeDepth: (0..<20).map { Double($0 % 4) }, energy: (0..<20).map { Double($0) - 0.5 })
    }

    /// Checkpoints with every optional vector: metric estimates under way (diagonal and
    /// dense), a diagonal and a dense metric in use.
    static func hmcCheckpoints() -> [ChainCheckpoint] {
        var diagonal = WarmupAdaptation(initialStep: 0.2, targetAcceptance: 0.8), dense = diagonal
        diagonal.estimator = MetricEstimator(kind: .diagonal, dimension: 3)
        dense.estimator = MetricEstimator(kind: .dense, dimension: 3)
        for x in [[1, 2, 3.5], [-1, 0.25, .ulpOfOne], [0.5, 0.5, -2]] {
            diagonal.estimator!.add(x)
            dense.estimator!.add(x)
        }
        let state = ChainState(position: [1, -2, 3], logDensity: -.pi, gradient: [0.5, .leastNonzeroMagnitude, -7])
        let plain = WarmupAdaptation(initialStep: 0.2, targetAcceptance: 0.8)
        return [ChainCheckpoint(chain: 4, iteration: 100, state: state, stepSize: 0.2, adaptation: diagonal),
                ChainCheckpoint(chain: 5, iteration: 100, state: state, stepSize: 0.1, adaptation: plain, metric: .diagonal([1, 0.5, 2])),
                ChainCheckpoint(chain: 6, iteration: 100, state: state, stepSize: 0.1, adaptation: dense,
                                metric: dense.estimator!.metric()!,
                                replicas: [ReplicaCheckpoint(state: state, stepSize: 0.4, adaptation: diagonal, metric: .diagonal([2, 1, 0.5])),
                                           ReplicaCheckpoint(state: state, stepSize: 0.9, adaptation: plain)],
                                ladder: TemperingLadder(replicas: 3, maxTemperature: 20))]
    }

    @Test("every message survives encode → decode bit for bit")
    func roundTrip() throws {
        let messages: [WireMessage] = [
            .ready(Ready(name: "w", host: "h", pid: 7, session: "s", capacity: 1, cached: ["ab"], probefarm: "0.1", blas: "Zen/1")),
            .job(JobSpec(id: "x", fileName: "j.yaml", document: .map([.init(key: .string("name"), value: .string("j"))]), files: [FileRef(path: "m.safetensors", sha256: "00", size: 3)])),
            .assign(Assignment(job: "x", group: 2, chains: [4, 5], firstIteration: 0, length: 100, checkpoints: nil)),
            .assign(Assignment(job: "x", group: 2, chains: [4, 5, 6], firstIteration: 100, length: 100, checkpoints: Self.hmcCheckpoints())),
            .result(Self.sampleResult()), .heartbeat, .fetch(FetchRequest(sha256: "00", offset: 0, length: 10)),
            .chunk(ChunkHeader(sha256: "00", offset: 0, total: 3), [1, 2, 3]), .failure(WireFailure(kind: "job", message: "no")),
            .done(reason: "finished"),
        ]
        for m in messages {
            #expect(try WireCodec.decode(WireCodec.encode(m)) == m, "\(m.typeName)")
        }
    }

    @Test("another protocol version is refused with a message that says what to do")
    func version() throws {
        let frames = WireCodec.encode(.heartbeat, version: 99)
        #expect(throws: WireError.version(found: 99)) { try WireCodec.decode(frames) }
        #expect(WireError.version(found: 99).description.contains("same ProbeFarm release"))
    }

    @Test("random, truncated and inconsistent frames are refused, not trapped on")
    func malformed() throws {
        var rng = SystemRandomNumberGenerator()
        for n in 0..<200 {
            let frames = (0..<(1 + n % 7)).map { _ in (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            #expect(throws: WireError.self) { try WireCodec.decode(frames) }
        }
        let good = WireCodec.encode(.result(Self.sampleResult()))
        // Truncated array frames, a dropped frame, a short control frame.
        var truncated = good
        truncated[1].removeLast(8)
        #expect(throws: WireError.self) { try WireCodec.decode(truncated) }
        #expect(throws: WireError.self) { try WireCodec.decode(Array(good.dropLast())) }
        #expect(throws: WireError.self) { try WireCodec.decode([Array(good[0].prefix(good[0].count / 2))] + good.dropFirst()) }
        // A header that claims more draws than the frames hold.
        let lying = String(decoding: good[0], as: UTF8.self).replacingOccurrences(of: "\"draws\":20", with: "\"draws\":21")
        #expect(throws: WireError.self) { try WireCodec.decode([Array(lying.utf8)] + good.dropFirst()) }
        // Checkpoint vectors that do not match the stated dimension, or are missing.
        var shortVectors = good
        shortVectors[1].removeLast(16)
        #expect(throws: WireError.self) { try WireCodec.decode(shortVectors) }
        var noVectors = WireCodec.encode(.assign(Assignment(job: "x", group: 2, chains: [4, 5, 6], firstIteration: 100, length: 100,
                                                            checkpoints: Self.hmcCheckpoints())))
        noVectors[1] = []
        #expect(throws: WireError.self) { try WireCodec.decode(noVectors) }
        // Unknown types and missing keys.
        #expect(throws: WireError.self) { try WireCodec.decode([Array(#"{"protocol":2,"type":"launch","body":{}}"#.utf8)]) }
        #expect(throws: WireError.self) { try WireCodec.decode([Array(#"{"protocol":2,"type":"fetch","body":{"sha256":"x"}}"#.utf8)]) }
    }

    @Test("the journal replays what was appended and cuts a torn last record")
    func journal() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pfj-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(Journal.fileName).path
        let header = Journal.Header(jobSHA256: "abc", jobFile: "j.yaml", segment: 100, chains: 4, batch: 2)
        let j = try Journal.create(at: path, header: header)
        let frames = WireCodec.encode(.result(Self.sampleResult()))
        try j.append(frames)
        try j.append(frames)
        #expect(throws: RunError.self) { try Journal.create(at: path, header: header) }
        // A crash in the middle of a third record.
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data([0x40, 0, 0, 0, 1, 2, 3]))
        try h.close()
        let (resumed, readHeader, records, _) = try Journal.resume(at: path)
        #expect(readHeader == header)
        #expect(records == [frames, frames])
        try resumed.append(frames)
        #expect(try Journal.resume(at: path).records.count == 3)
        // A flipped byte inside a record ends the replay there (the CRC catches it).
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try Journal.resume(at: path).records.count == 2)
    }

    @Test("a damaged record in the middle of the journal is reported and skipped; the valid records after it are kept")
    func journalResync() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pfj-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(Journal.fileName).path
        let header = Journal.Header(jobSHA256: "abc", jobFile: "j.yaml", segment: 100, chains: 4, batch: 2)
        let j = try Journal.create(at: path, header: header)
        var results = [[[UInt8]]]()
        var starts = [Int]()
        for i in 0..<5 {
            var r = Self.sampleResult()
            r.header.group = i
            results.append(WireCodec.encode(.result(r)))
            starts.append(j.bytes)
            try j.append(results[i])
        }
        // One flipped byte in the payload of the second record, one in the length of the fourth.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[starts[1] + 40] ^= 0x01
        bytes[starts[3] + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (resumed, _, records, damage) = try Journal.resume(at: path)
        #expect(records == [results[0], results[2], results[4]])
        #expect(damage.map(\.offset) == [starts[1], starts[3]], "\(damage)")
        #expect(damage.map(\.length) == [starts[2] - starts[1], starts[4] - starts[3]])
        #expect(damage.map(\.recordsAfter) == [1, 1])
        #expect(damage[0].description.contains("byte \(starts[1])"))
        // The file was rewritten without the damage: appending and resuming again is clean.
        try resumed.append(results[1])
        let again = try Journal.resume(at: path)
        #expect(again.records == [results[0], results[2], results[4], results[1]])
        #expect(again.damage.isEmpty)
        // Negative control: a flipped byte in the last record of the file is damage, not a torn tail.
        bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let last = try Journal.resume(at: path)
        #expect(last.records.count == 3 && last.damage.count == 1 && last.damage[0].recordsAfter == 0)
    }

    @Test("journals of format 1 (no sync words) still resume; a damaged record in one is reported, not silent")
    func journalVersion1() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pfj-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(Journal.fileName).path
        let header = Journal.Header(jobSHA256: "abc", jobFile: "j.yaml", segment: 100, chains: 4, batch: 2)
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func record(_ frames: [[UInt8]]) -> [UInt8] {
            var payload = le(UInt32(frames.count))
            for f in frames { payload += le(UInt64(f.count)) + f }
            return le(UInt32(payload.count)) + le(CRC32.checksum(payload)) + payload
        }
        let result = WireCodec.encode(.result(Self.sampleResult()))
        var file = Array("PFJOURNAL1\n".utf8) + record([Array(try JSONEncoder().encode(header))])
        let second = file.count + record(result).count
        file += record(result) + record(result) + record(result)
        try Data(file).write(to: URL(fileURLWithPath: path))
        let clean = try Journal.resume(at: path)
        #expect(clean.header == header && clean.records.count == 3 && clean.damage.isEmpty)
        try clean.journal.append(result)
        #expect(try Journal.resume(at: path).records.count == 4, "a format-1 journal goes on in format 1")
        var damaged = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        damaged[second + 30] ^= 0x01
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let cut = try Journal.resume(at: path)
        #expect(cut.records.count == 1)
        #expect(cut.damage.count == 1 && cut.damage[0].offset == second, "\(cut.damage)")
    }

    @Test("CRC-32 matches zlib's check value")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }
}
