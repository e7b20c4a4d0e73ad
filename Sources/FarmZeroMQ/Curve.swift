import CZeroMQ
import Foundation
import Synchronization

/// A CURVE key pair in Z85 text (40 characters each), as `zmq_curve_keypair` makes them.
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    public static func generate() throws -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError("zmq_curve_keypair (libzmq built without CURVE?)") }
        return CurveKeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    /// The public key belonging to a secret key.
    public static func publicKey(forSecret secret: String) throws -> String {
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secret) == 0 else { throw ZMQError("zmq_curve_public") }
        return String(cString: pub)
    }

    /// The 32 raw bytes of a Z85 key, or nil if it is not a valid 40-character key.
    public static func decode(_ z85: String) -> [UInt8]? {
        guard z85.utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&out, z85) != nil else { return nil }
        return out
    }
}

/// A ZAP handler (RFC 27) that admits CURVE clients whose public key is on an allow-list
/// and refuses everything else. It runs on its own thread with its own REP socket;
/// start it before binding the CURVE server socket in the same context.
public final class ZAPHandler: @unchecked Sendable {
    public let context: ZMQContext
    let allowed: Set<[UInt8]>
    let stopped = Atomic<Bool>(false)
    let admittedCount = Atomic<Int>(0)
    let deniedCount = Atomic<Int>(0)
    let finished = DispatchSemaphore(value: 0)

    /// Connections refused because the client's key is not on the allow-list (or it did
    /// not use CURVE).
    public var denied: Int { deniedCount.load(ordering: .relaxed) }
    public var admitted: Int { admittedCount.load(ordering: .relaxed) }

    public init(context: ZMQContext, allowedKeys: [String]) throws {
        self.context = context
        var set = Set<[UInt8]>()
        for k in allowedKeys {
            guard let raw = CurveKeyPair.decode(k) else { throw ZMQError("allow-list key '\(k)' is not a Z85 CURVE key", code: EINVAL) }
            set.insert(raw)
        }
        allowed = set
    }

    /// Binds the ZAP endpoint and starts answering; returns once it is bound.
    public func start() throws {
        let ready = DispatchSemaphore(value: 0)
        let failure = Mutex<ZMQError?>(nil)
        let t = Thread { [self] in
            do {
                let socket = try ZMQSocket(context, .rep, linger: 0)
                try socket.bind("inproc://zeromq.zap.01")
                ready.signal()
                while !stopped.load(ordering: .relaxed) {
                    guard try ZMQSocket.pollIn([socket], timeout: 100)[0], let request = try socket.receive() else { continue }
                    try socket.send(reply(to: request))
                }
                socket.close()
            } catch let e as ZMQError {
                failure.withLock { $0 = e }
                ready.signal()
            } catch {
                ready.signal()
            }
            finished.signal()
        }
        t.start()
        ready.wait()
        if let e = failure.withLock({ $0 }) { throw e }
    }

    /// Stops the handler and waits for its thread (idempotent).
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    func reply(to request: [[UInt8]]) -> [[UInt8]] {
        // version, request id, domain, address, routing id, mechanism, credentials…
        let version = request.first ?? Array("1.0".utf8)
        let requestID = request.count > 1 ? request[1] : []
        func answer(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [version, requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard request.count >= 7, String(decoding: request[0], as: UTF8.self) == "1.0" else {
            deniedCount.add(1, ordering: .relaxed)
            return answer("500", "malformed ZAP request")
        }
        let mechanism = String(decoding: request[5], as: UTF8.self)
        guard mechanism == "CURVE", request[6].count == 32 else {
            deniedCount.add(1, ordering: .relaxed)
            return answer("400", "only CURVE clients are admitted")
        }
        guard allowed.contains(request[6]) else {
            deniedCount.add(1, ordering: .relaxed)
            return answer("400", "public key not on the allow-list")
        }
        admittedCount.add(1, ordering: .relaxed)
        return answer("200", "OK", user: Self.z85(request[6]))
    }

    static func z85(_ raw: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: raw.count * 5 / 4 + 1)
        _ = zmq_z85_encode(&out, raw, raw.count)
        return String(cString: out)
    }
}
