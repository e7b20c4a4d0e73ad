import CZeroMQ
import Foundation

/// A libzmq error: the call that failed and `zmq_strerror`'s text.
public struct ZMQError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var code: Int32
    public var description: String { "\(call): \(String(cString: zmq_strerror(code)))" }

    init(_ call: String, code: Int32 = zmq_errno()) {
        self.call = call
        self.code = code
    }

    public var isAgain: Bool { code == EAGAIN }
    public var isUnroutable: Bool { code == EHOSTUNREACH }
}

/// A libzmq context. Sockets keep their context alive; the context is terminated when
/// the last reference goes (every socket must have been closed by then).
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter maxSockets: raise libzmq's limit of 1023 sockets per context.
    public init(maxSockets: Int32? = nil) {
        handle = zmq_ctx_new()
        if let maxSockets { zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, maxSockets) }
    }

    deinit {
        zmq_ctx_term(handle)
    }

    /// libzmq's version as "major.minor.patch".
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

/// A ZeroMQ socket. Not thread-safe: one thread owns it from creation to `close()`.
public final class ZMQSocket {
    public enum Kind: Sendable {
        case router, dealer, rep, req, pair

        var raw: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .rep: ZMQ_REP
            case .req: ZMQ_REQ
            case .pair: ZMQ_PAIR
            }
        }
    }

    public let context: ZMQContext
    public let kind: Kind
    var handle: UnsafeMutableRawPointer?

    /// Creates a socket with LINGER set to `linger` milliseconds (small by default, so a
    /// closing socket never blocks the process on undeliverable messages).
    public init(_ context: ZMQContext, _ kind: Kind, linger: Int32 = 100) throws {
        self.context = context
        self.kind = kind
        guard let h = zmq_socket(context.handle, kind.raw) else { throw ZMQError("zmq_socket") }
        handle = h
        try set(ZMQ_LINGER, linger)
    }

    deinit { close() }

    public func close() {
        if let h = handle { zmq_close(h) }
        handle = nil
    }

    var open: UnsafeMutableRawPointer {
        guard let h = handle else { preconditionFailure("socket used after close()") }
        return h
    }

    // MARK: Options

    public func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(open, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, _ value: Int64) throws {
        var v = value
        guard zmq_setsockopt(open, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(open, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    public func set(_ option: Int32, string: String) throws {
        try set(option, bytes: Array(string.utf8))
    }

    public func getInt32(_ option: Int32) throws -> Int32 {
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(open, option, &v, &size) == 0 else { throw ZMQError("zmq_getsockopt(\(option))") }
        return v
    }

    /// The endpoint last bound (with the port the system chose for `tcp://host:*`).
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(open, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return String(cString: buffer)
    }

    /// The routing id this socket presents to a ROUTER peer.
    public func setRoutingID(_ id: [UInt8]) throws { try set(ZMQ_ROUTING_ID, bytes: id) }

    /// The largest message accepted from a peer, in bytes; a peer that sends more is
    /// disconnected by libzmq.
    public func setMaxMessageSize(_ bytes: Int64) throws { try set(ZMQ_MAXMSGSIZE, bytes) }

    // MARK: CURVE

    /// Makes this socket a CURVE server with the given secret key (Z85, 40 characters).
    /// Set `domain` so that ZAP is consulted, and ZMQ_ZAP_ENFORCE_DOMAIN so that a
    /// missing ZAP handler refuses every connection instead of allowing it.
    /// - Returns: whether libzmq enforces the domain (the option is a draft API that a
    ///   library built without drafts refuses; the caller must then keep its ZAP handler
    ///   running for as long as the socket lives, which ``RouterTransport`` does).
    @discardableResult
    public func makeCurveServer(secretKey: String, domain: String = "probefarm") throws -> Bool {
        try set(ZMQ_CURVE_SERVER, Int32(1))
        try set(ZMQ_CURVE_SECRETKEY, string: secretKey)
        try set(ZMQ_ZAP_DOMAIN, string: domain)
        return (try? set(Self.zapEnforceDomain, Int32(1))) != nil
    }

    /// ZMQ_ZAP_ENFORCE_DOMAIN (zmq.h's draft section, 4.3).
    static let zapEnforceDomain: Int32 = 93

    /// Makes this socket a CURVE client of a server whose public key is `serverKey`.
    public func makeCurveClient(publicKey: String, secretKey: String, serverKey: String) throws {
        try set(ZMQ_CURVE_SERVERKEY, string: serverKey)
        try set(ZMQ_CURVE_PUBLICKEY, string: publicKey)
        try set(ZMQ_CURVE_SECRETKEY, string: secretKey)
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(open, endpoint) == 0 else { throw ZMQError("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(open, endpoint) == 0 else { throw ZMQError("connect \(endpoint)") }
    }

    public func disconnect(_ endpoint: String) throws {
        guard zmq_disconnect(open, endpoint) == 0 else { throw ZMQError("disconnect \(endpoint)") }
    }

    // MARK: Messages

    /// Sends one multipart message, each frame through its own `zmq_msg_t` (any size).
    /// - Returns: false when `dontWait` is set and the message could not be queued, or
    ///   when a ROUTER with ROUTER_MANDATORY has no route to the first frame's peer.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (i, frame) in frames.enumerated() {
            var msg = zmq_msg_t()
            guard zmq_msg_init_size(&msg, frame.count) == 0 else { throw ZMQError("zmq_msg_init_size") }
            if !frame.isEmpty {
                frame.withUnsafeBytes { src in
                    zmq_msg_data(&msg).copyMemory(from: src.baseAddress!, byteCount: src.count)
                }
            }
            var flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            while zmq_msg_send(&msg, open, flags) < 0 {
                let e = ZMQError("zmq_msg_send")
                if e.code == EINTR { continue }  // a signal (SIGTERM) arrived: the flag is polled elsewhere
                zmq_msg_close(&msg)
                if e.isAgain || e.isUnroutable {
                    if i == 0 { return false }
                }
                throw e
            }
        }
        return true
    }

    /// Receives one whole multipart message; nil when `dontWait` is set and none is queued.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        var frames = [[UInt8]]()
        while true {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            while zmq_msg_recv(&msg, open, dontWait ? ZMQ_DONTWAIT : 0) < 0 {
                let e = ZMQError("zmq_msg_recv")
                if e.code == EINTR { continue }
                if e.isAgain && frames.isEmpty { return nil }
                throw e
            }
            let n = zmq_msg_size(&msg)
            frames.append(n == 0 ? [] : Array(UnsafeRawBufferPointer(start: zmq_msg_data(&msg), count: n)))
            if zmq_msg_more(&msg) == 0 { return frames }
        }
    }

    /// Polls sockets for input; returns which are readable. `timeout` in milliseconds
    /// (−1 waits for ever).
    public static func pollIn(_ sockets: [ZMQSocket], timeout: Int) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.open, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let rc = zmq_poll(&items, Int32(items.count), timeout)
        if rc < 0 {
            let e = ZMQError("zmq_poll")
            if e.code == EINTR { return Array(repeating: false, count: sockets.count) }
            throw e
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }

    // MARK: Monitoring

    /// Starts a monitor for `events` on an inproc endpoint; read it with a PAIR socket
    /// connected to the same endpoint (``MonitorEvent/decode(_:)``).
    public func monitor(_ endpoint: String, events: Int32 = ZMQ_EVENT_ALL) throws {
        guard zmq_socket_monitor(open, endpoint, events) == 0 else { throw ZMQError("zmq_socket_monitor") }
    }
}

/// A socket-monitor event: its kind and the peer's address.
public struct MonitorEvent: Sendable {
    public var event: UInt16
    public var value: UInt32
    public var address: String

    public static func decode(_ frames: [[UInt8]]) -> MonitorEvent? {
        guard frames.count >= 2, frames[0].count >= 6 else { return nil }
        let f = frames[0]
        let event = UInt16(f[0]) | UInt16(f[1]) << 8
        let value = UInt32(f[2]) | UInt32(f[3]) << 8 | UInt32(f[4]) << 16 | UInt32(f[5]) << 24
        return MonitorEvent(event: event, value: value, address: String(decoding: frames[1], as: UTF8.self))
    }

    public var isHandshakeFailure: Bool {
        Int32(event) & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0
    }

    public var isDisconnect: Bool { Int32(event) == ZMQ_EVENT_DISCONNECTED }
    public var isConnected: Bool { Int32(event) == ZMQ_EVENT_CONNECTED }
    public var isHandshakeSuccess: Bool { Int32(event) == ZMQ_EVENT_HANDSHAKE_SUCCEEDED }
    public var isAccepted: Bool { Int32(event) == ZMQ_EVENT_ACCEPTED }
}
