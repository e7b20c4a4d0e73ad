import Foundation
import ProbeFarmTesting
import Testing

/// Deploy/ for real: the Slurm route on a one-machine Slurm (Scripts/slurm-test.sh) and
/// the systemd units, Kubernetes manifests, Containerfile and sbatch script checked with
/// their own tools (Scripts/deploy-check.sh).
@Suite(.serialized)
struct DeployTests {
    @Test("systemd units verify, the Kubernetes overlay renders and validates, the Containerfile lints")
    func manifests() throws {
        let (status, text) = try CommandRunner.script("deploy-check.sh")
        #expect(status == 0, "\(text)")
        #expect(text.contains("deploy-check: PASS"))
    }

    @Test("Slurm: sbatch with 2 tasks converges with probefarm run's samples; scancel leaves a journal a resubmission finishes")
    func slurm() throws {
        let (status, text) = try CommandRunner.script("slurm-test.sh")
        if status == 77 {
            // Only where Slurm's daemons cannot run (not root).
            print("DeployTests.slurm skipped: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
            return
        }
        #expect(status == 0, "\(text)")
        #expect(text.contains("slurm-test: PASS"))
    }
}
