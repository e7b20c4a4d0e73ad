import ArgumentParser
import Foundation
import Logging

/// How farm events are written to stderr: one line of text each, or one JSON object per
/// line (for log aggregators: Loki, Elasticsearch, Cloud Logging), with the event's
/// metadata (worker, host, group, chains, …) as fields.
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// swift-log handler writing one JSON object per line to stderr:
/// `{"time": ISO 8601, "level", "logger", "message", …metadata}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        var object: [String: Any] = ["time": Self.now(), "level": level.rawValue, "logger": label, "message": message.description]
        for (k, v) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) where object[k] == nil { object[k] = "\(v)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }

    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
