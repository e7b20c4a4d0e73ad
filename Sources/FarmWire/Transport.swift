/// The coordinator's side of a transport: messages from and to peers named by an
/// opaque id. ZeroMQ's ROUTER socket is one (FarmZeroMQ); tests use an in-process one.
public protocol CoordinatorTransport: AnyObject {
    /// The next message from any peer, waiting at most `timeout` seconds.
    func receive(timeout: Double) throws -> (peer: [UInt8], frames: [[UInt8]])?
    /// Sends to one peer; false if the peer is not connected (nothing was queued).
    func send(_ frames: [[UInt8]], to peer: [UInt8]) throws -> Bool
    /// Connections refused below the message level (authentication, broken framing).
    var refusedConnections: Int { get }
}

/// A worker's side of a transport: one coordinator.
public protocol WorkerTransport: AnyObject {
    func receive(timeout: Double) throws -> [[UInt8]]?
    /// Queues a message for the coordinator; false if it cannot be queued now (no
    /// connection): the caller keeps it and tries again.
    func send(_ frames: [[UInt8]]) throws -> Bool
    /// Drops the connection and opens a new one (after the coordinator fell silent).
    func reconnect() throws
    /// Connections that reached the coordinator but never completed the handshake (a
    /// CURVE key it does not admit, the wrong server key, encryption on one side only).
    var refusedHandshakes: Int { get }
}

extension WorkerTransport {
    public var refusedHandshakes: Int { 0 }
}
