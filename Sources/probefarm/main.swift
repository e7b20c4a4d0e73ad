import ArgumentParser
import Foundation
import TensorCore

/// `probefarm`: probe trained models by sampling the inputs that answer a question.
struct ProbeFarm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probefarm",
        abstract: "Question trained ML models by sampling the inputs that answer the question.",
        discussion: """
            Models are safetensors files with the architecture in __metadata__ \
            (PyTorch state_dict names and layouts). See README.md and docs/.
            """,
        version: ProbeFarmVersion.string,
        subcommands: [Run.self, Coordinate.self, WorkerCommand.self, Keys.self, Health.self, Diagnose.self, ReportCommand.self, Train.self, Inspect.self, Predict.self])
}

enum ProbeFarmVersion {
    static let string = "0.1.0"
}

/// Runs the command; a ``ProbeFarmError`` ends it with one line on stderr and its
/// sysexits code, anything else through ArgumentParser (usage errors exit 64).
func runProbeFarm() -> Never {
    do {
        var command = try ProbeFarm.parseAsRoot()
        try command.run()
        ProbeFarm.exit()
    } catch let error as any ProbeFarmError {
        FileHandle.standardError.write(Data("probefarm: \(error)\n".utf8))
        Foundation.exit(error.sysexit.rawValue)
    } catch {
        ProbeFarm.exit(withError: error)
    }
}

MemoryTuning.keepLargeAllocations()
runProbeFarm()
