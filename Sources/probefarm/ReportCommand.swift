import ArgumentParser
import Foundation
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "(Re)write RUN_DIR/report.html from the run directory's files.",
        discussion: """
            The report is one self-contained HTML page (inline CSS, SVG and PNG; no script, no \
            network) that any browser opens: the question in words and as G's formula, the \
            verdict and why (R-hat and ESS against the job's stop rule), the answer (a grid of \
            draws spread over the chains with each model's class and probability, or a table of \
            draws against the anchor with changed features marked), the answer's metrics beside \
            the reference data's, diagnostics with trace and rank plots of G and the worst \
            quantities, densities of the outputs and features against the reference data, and the \
            provenance. `probefarm run` and `probefarm coordinator` write it at the end of a run; \
            this command rewrites it (e.g. after an upgrade, or when writing it failed).
            """)

    @Argument(help: "A run directory (it holds summary.json).")
    var runDirectory: String

    func run() throws {
        let path = try Report.write(runDirectory: runDirectory)
        print("wrote \(path)")
    }
}
