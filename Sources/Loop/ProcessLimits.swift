#if canImport(Glibc)
import Glibc
#endif

/// Limits of this process that a server (or a load generator) with many sockets must raise.
public enum ProcessLimits {
    /// Raises the soft limit on open files to the hard limit; returns the limit now in force.
    /// Every connection is a descriptor: the common soft default of 1,024 would refuse a flash
    /// crowd long before the loop is busy.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
