import CZeroMQ
import FarmWire
import Foundation

/// CURVE settings for one side of a connection.
public struct CurveSecurity: Sendable {
    /// This side's key pair.
    public var keys: CurveKeyPair
    /// A worker: the coordinator's public key. A coordinator: nil.
    public var serverKey: String?
    /// A coordinator: the workers' public keys it admits.
    public var allowedClients: [String]

    public init(keys: CurveKeyPair, serverKey: String? = nil, allowedClients: [String] = []) {
        self.keys = keys
        self.serverKey = serverKey
        self.allowedClients = allowedClients
    }
}

/// The coordinator's ROUTER socket (ROUTER_MANDATORY, ROUTER_HANDOVER so a reconnecting
/// worker with the same id takes over its old route, MAXMSGSIZE), with an optional CURVE
/// server and ZAP allow-list, and a monitor that counts refused handshakes.
public final class RouterTransport: CoordinatorTransport {
    public let context: ZMQContext
    let socket: ZMQSocket
    let monitor: ZMQSocket
    let zap: ZAPHandler?
    public private(set) var endpoint: String = ""
    /// Handshakes that failed (bad ZMTP, wrong CURVE key, refused by ZAP).
    public private(set) var handshakeFailures = 0
    /// Connections closed by the peer or by libzmq (e.g. an oversized message).
    public private(set) var disconnects = 0
    public private(set) var accepted = 0
    /// Whether libzmq itself fails closed without a ZAP handler (see
    /// ``ZMQSocket/makeCurveServer(secretKey:domain:)``).
    public private(set) var zapEnforced = false

    public var refusedConnections: Int { handshakeFailures }
    public var zapDenied: Int { zap?.denied ?? 0 }

    public init(bind endpoint: String, security: CurveSecurity? = nil, maxMessageBytes: Int64 = WireProtocol.maxMessageBytes,
                context: ZMQContext = ZMQContext()) throws {
        self.context = context
        if let security {
            let z = try ZAPHandler(context: context, allowedKeys: security.allowedClients)
            try z.start()
            zap = z
        } else {
            zap = nil
        }
        socket = try ZMQSocket(context, .router, linger: 100)
        try socket.set(ZMQ_ROUTER_MANDATORY, Int32(1))
        try socket.set(ZMQ_ROUTER_HANDOVER, Int32(1))
        try socket.setMaxMessageSize(maxMessageBytes)
        try socket.set(ZMQ_SNDHWM, Int32(100_000))
        try socket.set(ZMQ_RCVHWM, Int32(100_000))
        if let security { zapEnforced = try socket.makeCurveServer(secretKey: security.keys.secretKey) }
        let monitorEndpoint = "inproc://probefarm-monitor-\(UInt64.random(in: 0...UInt64.max))"
        try socket.monitor(monitorEndpoint, events: ZMQ_EVENT_ALL)
        monitor = try ZMQSocket(context, .pair, linger: 0)
        try monitor.connect(monitorEndpoint)
        // libzmq binds interfaces and addresses, not host names: "localhost" is loopback.
        try socket.bind(endpoint.replacingOccurrences(of: "tcp://localhost:", with: "tcp://127.0.0.1:"))
        self.endpoint = socket.lastEndpoint
    }

    deinit { close() }

    /// Closes the sockets, then stops the ZAP handler (idempotent).
    public func close() {
        socket.close()
        monitor.close()
        zap?.stop()
    }

    public func receive(timeout: Double) throws -> (peer: [UInt8], frames: [[UInt8]])? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if var frames = try socket.receive(dontWait: true) {
                let peer = frames.removeFirst()
                return (peer, frames)
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return nil }
            let ready = try ZMQSocket.pollIn([socket, monitor], timeout: Int((remaining * 1000).rounded(.up)))
            if ready[1] { drainMonitor() }
        }
    }

    func drainMonitor() {
        while let frames = try? monitor.receive(dontWait: true), let e = MonitorEvent.decode(frames) {
            if e.isHandshakeFailure { handshakeFailures += 1 }
            if e.isDisconnect { disconnects += 1 }
            if e.isAccepted { accepted += 1 }
        }
    }

    public func send(_ frames: [[UInt8]], to peer: [UInt8]) throws -> Bool {
        do {
            return try socket.send([peer] + frames, dontWait: true)
        } catch let e as ZMQError where e.isUnroutable || e.isAgain {
            return false
        }
    }
}

/// A worker's DEALER socket with a stable routing id, IMMEDIATE (nothing is queued for
/// a connection that is not up), optional CURVE client keys; reconnects on demand.
public final class DealerTransport: WorkerTransport {
    public let context: ZMQContext
    let endpoint: String
    let routingID: [UInt8]
    let security: CurveSecurity?
    var socket: ZMQSocket
    /// The socket's events: a connection that ends before its handshake succeeded was refused.
    var monitor: ZMQSocket
    var handshaking = false
    public private(set) var refusedHandshakes = 0

    public init(connect endpoint: String, routingID: [UInt8], security: CurveSecurity? = nil,
                context: ZMQContext = ZMQContext()) throws {
        self.context = context
        self.endpoint = endpoint
        self.routingID = routingID
        self.security = security
        (socket, monitor) = try Self.open(context, endpoint, routingID, security)
    }

    static func open(_ context: ZMQContext, _ endpoint: String, _ id: [UInt8], _ security: CurveSecurity?) throws -> (ZMQSocket, ZMQSocket) {
        let s = try ZMQSocket(context, .dealer, linger: 100)
        let monitorEndpoint = "inproc://probefarm-dealer-monitor-\(UInt64.random(in: 0...UInt64.max))"
        try s.monitor(monitorEndpoint, events: ZMQ_EVENT_ALL)
        let monitor = try ZMQSocket(context, .pair, linger: 0)
        try monitor.connect(monitorEndpoint)
        try s.setRoutingID(id)
        try s.set(ZMQ_IMMEDIATE, Int32(1))
        try s.set(ZMQ_RECONNECT_IVL, Int32(200))
        try s.set(ZMQ_RECONNECT_IVL_MAX, Int32(2000))
        try s.setMaxMessageSize(WireProtocol.maxMessageBytes)
        if let security, let server = security.serverKey {
            try s.makeCurveClient(publicKey: security.keys.publicKey, secretKey: security.keys.secretKey, serverKey: server)
        }
        try s.connect(endpoint)
        return (s, monitor)
    }

    deinit { close() }

    public func close() {
        socket.close()
        monitor.close()
    }

    func drainMonitor() {
        while let frames = try? monitor.receive(dontWait: true), let e = MonitorEvent.decode(frames) {
            if e.isConnected { handshaking = true }
            if e.isHandshakeSuccess { handshaking = false }
            if e.isHandshakeFailure || (e.isDisconnect && handshaking) {
                refusedHandshakes += 1
                handshaking = false
            }
        }
    }

    /// Closes after giving queued messages up to `seconds` to leave (a drained worker's
    /// last result and its goodbye).
    public func close(flushing seconds: Double) {
        try? socket.set(ZMQ_LINGER, Int32(seconds * 1000))
        socket.close()
        monitor.close()
    }

    public func receive(timeout: Double) throws -> [[UInt8]]? {
        if let m = try socket.receive(dontWait: true) { return m }
        let ready = try ZMQSocket.pollIn([socket, monitor], timeout: Int((timeout * 1000).rounded(.up)))
        if ready[1] { drainMonitor() }
        return ready[0] ? try socket.receive(dontWait: true) : nil
    }

    public func send(_ frames: [[UInt8]]) throws -> Bool {
        do {
            return try socket.send(frames, dontWait: true)
        } catch let e as ZMQError where e.isAgain {
            return false
        }
    }

    public func reconnect() throws {
        close()
        (socket, monitor) = try Self.open(context, endpoint, routingID, security)
        handshaking = false
    }
}
