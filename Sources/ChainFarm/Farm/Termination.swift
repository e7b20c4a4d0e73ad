import Foundation
import Synchronization

/// SIGTERM and SIGINT as a flag the farm's loops poll. The handler only stores the
/// signal's number (async-signal-safe); the loops decide what stopping means: a worker
/// drains (finishes and sends the segment it is on, then says it leaves), a
/// coordinator tells its workers the job is over and exits with the journal intact, so
/// that `--resume` continues it (Slurm's `scancel` and requeue, Kubernetes' pod
/// termination, `systemctl stop`).
public enum Termination {
    static let pending = Atomic<Int32>(0)

    /// Routes the signals to the flag (instead of ending the process at once), and
    /// unblocks them on the calling thread: a launcher may have started us with them
    /// blocked (seen with Foundation's Process under a test runner), and a blocked
    /// SIGTERM would wait for the SIGKILL that follows it.
    public static func install(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { Termination.pending.store($0, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(s, &action, nil)
        }
    }

    /// The signal received, if any.
    public static var received: Int32? {
        let s = pending.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }
}
