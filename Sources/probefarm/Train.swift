import ArgumentParser

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train an MLP, CNN or VAE (see docs/training.md).")
    @Argument(help: "A training spec (YAML).")
    var spec: String
    func run() throws { throw UsageError("train: not yet available", sysexit: .software) }
}
