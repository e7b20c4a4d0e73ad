import Foundation
import TensorCore

/// The coordinator's append-only record of a job: a header, then every accepted
/// segment result exactly as it came off the wire. Each record is
/// `[u32 sync "PFR2"][u32 length][u32 crc32][payload]` and is fsync'd before the segment
/// counts, so a coordinator that dies loses nothing it has acknowledged; `--resume`
/// replays the records and continues. A torn record at the end (a crash mid-write) is cut
/// off quietly. A damaged record elsewhere (its checksum fails) is skipped: the reader
/// finds the next record by its sync word and CRC, keeps every valid record after it,
/// reports what was skipped (``Damage``), and the journal is rewritten without it, so that
/// only the damaged segment is computed again. Journals of format 1 (no sync words,
/// `PFJOURNAL1`) are still read; in them a damaged record ends the replay, reported.
public final class Journal {
    public static let fileName = "journal.pfj"
    static let magic = Array("PFJOURNAL2\n".utf8)
    static let magicV1 = Array("PFJOURNAL1\n".utf8)
    static let sync: UInt32 = 0x3252_4650  // "PFR2" little-endian

    /// Bytes of a journal that could not be read back: where, how many, and how many
    /// valid records followed (kept).
    public struct Damage: Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var length: Int
        public var recordsAfter: Int

        public var description: String {
            "a damaged record at byte \(offset) (\(length) bytes skipped); \(recordsAfter) valid records after it kept"
        }
    }

    public struct Header: Codable, Sendable, Equatable {
        public var format = "probefarm-journal/1"
        public var jobSHA256: String
        public var jobFile: String
        public var segment: Int
        public var chains: Int
        public var batch: Int

        public init(jobSHA256: String, jobFile: String, segment: Int, chains: Int, batch: Int) {
            self.jobSHA256 = jobSHA256
            self.jobFile = jobFile
            self.segment = segment
            self.chains = chains
            self.batch = batch
        }
    }

    public let path: String
    let handle: FileHandle
    /// Format 1 journals (resumed) go on without sync words.
    let synced: Bool
    public private(set) var records = 0
    /// The file's size: where the next record starts.
    public private(set) var bytes = 0

    init(path: String, handle: FileHandle, synced: Bool = true) {
        self.path = path
        self.handle = handle
        self.synced = synced
    }

    deinit { try? handle.close() }

    /// Starts a new journal; refuses to replace one.
    public static func create(at path: String, header: Header) throws -> Journal {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw RunError("\(path) already exists: resume that run with --resume, or choose another --output")
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(magic)), let h = FileHandle(forWritingAtPath: path) else {
            throw RunError("cannot create \(path)")
        }
        try h.seekToEnd()
        let j = Journal(path: path, handle: h)
        j.bytes = magic.count
        try j.append([Array(try JSONEncoder().encode(header))])
        return j
    }

    /// Opens an existing journal for `--resume`: its header, every intact record, and what
    /// was damaged (skipped; the file is rewritten without it, atomically).
    public static func resume(at path: String) throws -> (journal: Journal, header: Header, records: [[[UInt8]]], damage: [Damage]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RunError("\(path): no journal to resume (was the run started with this --output?)")
        }
        let all = [UInt8](data)
        let synced: Bool
        if all.starts(with: magic) { synced = true } else if all.starts(with: magicV1) { synced = false } else {
            throw RunError("\(path) is not a ProbeFarm journal")
        }
        var offset = magic.count
        var records = [[[UInt8]]](), damage = [Damage]()
        while offset < all.count {
            if let (frames, next) = readRecord(all, at: offset, synced: synced) {
                records.append(frames)
                damage.indices.last.map { damage[$0].recordsAfter += 1 }
                offset = next
                continue
            }
            // A torn tail (no valid record follows) is cut quietly; a damaged record in the
            // middle is skipped up to the next valid one.
            guard synced, let next = nextRecord(all, after: offset) else {
                if !tornTail(all, at: offset + (synced ? 4 : 0)) {
                    damage.append(Damage(offset: offset, length: all.count - offset, recordsAfter: 0))
                }
                break
            }
            damage.append(Damage(offset: offset, length: next - offset, recordsAfter: 0))
            offset = next
        }
        guard let first = records.first, let header = try? JSONDecoder().decode(Header.self, from: Data(first.first ?? [])) else {
            throw RunError("\(path): the journal's header is unreadable")
        }
        if damage.contains(where: { $0.recordsAfter > 0 }) {
            // Rewrite the valid records, then put the copy in place of the damaged file.
            let copy = path + ".rewrite"
            try? FileManager.default.removeItem(atPath: copy)
            let j = try create(at: copy, header: header)
            for r in records.dropFirst() { try j.append(r) }
            try j.handle.close()
            guard rename(copy, path) == 0 else { throw RunError("\(path): cannot replace the damaged journal: \(String(cString: strerror(errno)))") }
            return try (resume(at: path).journal, header, Array(records.dropFirst()), damage)
        }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw RunError("cannot open \(path) for writing") }
        if offset < all.count { try h.truncate(atOffset: UInt64(offset)) }  // a torn last record
        try h.seekToEnd()
        let j = Journal(path: path, handle: h, synced: synced)
        j.records = records.count
        j.bytes = offset
        return (j, header, Array(records.dropFirst()), damage)
    }

    /// The offset of the next valid record after a damaged one at `offset`, if any.
    static func nextRecord(_ b: [UInt8], after offset: Int) -> Int? {
        var at = offset + 1
        while at + 12 <= b.count {
            if b[at] == 0x50, get(UInt32.self, b, at) == sync, readRecord(b, at: at, synced: true) != nil { return at }
            at += 1
        }
        return nil
    }

    /// Whether the unreadable bytes at `offset` look like a record cut short
    /// (its length runs past the end of the file) rather than one damaged in place.
    static func tornTail(_ b: [UInt8], at offset: Int) -> Bool {
        guard let length = get(UInt32.self, b, offset) else { return true }
        return offset + 8 + Int(length) > b.count
    }

    /// Appends one record and makes it durable. The frames are written where they lie
    /// (one `writev`, no copy of a segment's draws) and fsync'd.
    public func append(_ frames: [[UInt8]]) throws {
        var lengths = [UInt8]()
        Self.put(UInt32(frames.count), into: &lengths)
        var prefixes = [[UInt8]]()
        var payloadCount = 4
        var crc = CRC32.start
        lengths.withUnsafeBytes { crc = CRC32.update(crc, $0) }
        for f in frames {
            var p = [UInt8]()
            Self.put(UInt64(f.count), into: &p)
            p.withUnsafeBytes { crc = CRC32.update(crc, $0) }
            f.withUnsafeBytes { crc = CRC32.update(crc, $0) }
            prefixes.append(p)
            payloadCount += 8 + f.count
        }
        guard payloadCount <= Int(UInt32.max) else { throw RunError("\(path): a record of \(payloadCount) bytes is too large") }
        var head = [UInt8]()
        if synced { Self.put(Self.sync, into: &head) }
        Self.put(UInt32(payloadCount), into: &head)
        Self.put(CRC32.finish(crc), into: &head)
        head += lengths
        try write([head] + zip(prefixes, frames).flatMap { [$0, $1] })
        do { try handle.synchronize() } catch { throw RunError("\(path): cannot sync: \(error)", sysexit: .ioError) }
        // On disk now; the journal is read back only to resume, so its pages need not
        // crowd the page cache (reclaiming gigabytes of them costs more than the writes).
        _ = posix_fadvise(handle.fileDescriptor, 0, 0, POSIX_FADV_DONTNEED)
        records += 1
        bytes += head.count - lengths.count + payloadCount
    }

    /// Writes every buffer in order, however the kernel splits the work.
    func write(_ buffers: [[UInt8]]) throws {
        let fd = handle.fileDescriptor
        var pending = buffers.filter { !$0.isEmpty }.map { ($0, 0) }
        while !pending.isEmpty {
            let batch = pending.prefix(1024)  // IOV_MAX on Linux
            let written = Self.withIOVecs(Array(batch)) { writev(fd, $0, Int32($1)) }
            guard written >= 0 else {
                if errno == EINTR { continue }
                throw RunError("\(path): write failed: \(String(cString: strerror(errno)))", sysexit: .ioError)
            }
            var left = written
            while left > 0, let (buffer, offset) = pending.first {
                let rest = buffer.count - offset
                if left >= rest {
                    pending.removeFirst()
                    left -= rest
                } else {
                    pending[0].1 += left
                    left = 0
                }
            }
        }
    }

    static func withIOVecs<R>(_ buffers: [([UInt8], Int)], _ body: (UnsafePointer<iovec>, Int) -> R) -> R {
        var vecs = [iovec]()
        vecs.reserveCapacity(buffers.count)
        func nest(_ i: Int) -> R {
            guard i < buffers.count else { return vecs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) } }
            return buffers[i].0.withUnsafeBytes { raw in
                vecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + buffers[i].1),
                                  iov_len: raw.count - buffers[i].1))
                return nest(i + 1)
            }
        }
        return nest(0)
    }

    static func put<T: FixedWidthInteger>(_ v: T, into out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    static func get<T: FixedWidthInteger>(_ type: T.Type, _ b: [UInt8], _ at: Int) -> T? {
        guard at >= 0, at + MemoryLayout<T>.size <= b.count else { return nil }
        var v: T = 0
        for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(b[at + i]) }
        return v
    }

    static func readRecord(_ b: [UInt8], at offset: Int, synced: Bool) -> ([[UInt8]], Int)? {
        var offset = offset
        if synced {
            guard get(UInt32.self, b, offset) == sync else { return nil }
            offset += 4
        }
        guard let length = get(UInt32.self, b, offset), let crc = get(UInt32.self, b, offset + 4) else { return nil }
        let start = offset + 8, end = start + Int(length)
        guard end <= b.count else { return nil }
        let payload = Array(b[start..<end])
        guard CRC32.checksum(payload) == crc, let count = get(UInt32.self, payload, 0) else { return nil }
        var frames = [[UInt8]](), p = 4
        for _ in 0..<count {
            guard let n = get(UInt64.self, payload, p), p + 8 + Int(n) <= payload.count else { return nil }
            frames.append(Array(payload[(p + 8)..<(p + 8 + Int(n))]))
            p += 8 + Int(n)
        }
        return (frames, end)
    }
}
