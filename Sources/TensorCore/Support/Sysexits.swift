/// Exit statuses from BSD's sysexits.h, the codes ProbeFarm's commands end with.
public enum Sysexit: Int32, Sendable {
    case usage = 64        // EX_USAGE: bad flag or argument
    case dataError = 65    // EX_DATAERR: unreadable or inconsistent input data
    case noInput = 66      // EX_NOINPUT: input file missing
    case unavailable = 69  // EX_UNAVAILABLE: service unreachable
    case software = 70     // EX_SOFTWARE: internal error
    case cantCreate = 73   // EX_CANTCREAT: output cannot be written
    case ioError = 74      // EX_IOERR
    case tempFail = 75     // EX_TEMPFAIL: interrupted; try again (resume)
    case config = 78       // EX_CONFIG: bad configuration (job or spec file)
}

/// An error that knows which sysexits code the command should end with and can say,
/// on one line, what is wrong and how to fix it.
public protocol ProbeFarmError: Error, CustomStringConvertible, Sendable {
    var sysexit: Sysexit { get }
}
