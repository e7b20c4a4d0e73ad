import Foundation

/// Locates fixture files committed beside the tests and the built `probefarm` binary.
public enum Fixtures {
    /// The repository's root, found from this source file's location.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/ProbeFarmTesting/Fixtures.swift
        return url
    }()

    /// A file under `Tests/<target>/Fixtures/`.
    public static func url(_ target: String, _ relativePath: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/\(target)/Fixtures/\(relativePath)")
    }

    /// Parses a JSON fixture into Foundation objects.
    public static func json(_ url: URL) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }

    /// A fresh temporary directory, removed by the caller or left for the OS.
    public static func temporaryDirectory(_ label: String = "probefarm-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
