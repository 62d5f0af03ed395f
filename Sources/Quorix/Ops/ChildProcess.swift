#if os(Linux)
public import Glibc

/// Starts a child process the way Quorix needs: exactly stdin (`/dev/null`), stdout and stderr
/// (pipes whose read ends are returned), no other inherited descriptor, a clean signal mask and
/// default signal handlers (the caller may be a thread that blocks every signal).
///
/// Not Foundation `Process`: on Linux it learns that a child exited from EOF on a descriptor the
/// child inherits, and `pg_ctl start` hands that on to the server it starts, so `Process` would
/// only notice pg_ctl's exit when PostgreSQL stops.
public enum ChildProcess {
    public struct Started: Sendable {
        public let pid: pid_t
        /// Read ends of the child's standard output and error (close-on-exec; the caller closes them).
        public let standardOutput: Int32
        public let standardError: Int32
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func spawn(
        _ path: String, _ arguments: [String], environment: [String: String], workingDirectory: String?,
        newProcessGroup: Bool = false
    ) throws(Failure) -> Started {
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard makePipe(&outPipe) else { throw Failure(description: "could not create a pipe: \(errnoText())") }
        guard makePipe(&errPipe) else {
            let text = errnoText()
            close(outPipe[0])
            close(outPipe[1])
            throw Failure(description: "could not create a pipe: \(text)")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        // GNU extensions (glibc 2.34 / 2.29) that Swift's Glibc module does not export.
        if let addClosefrom = gnuSpawnClosefrom { _ = addClosefrom(&actions, 3) }
        if let workingDirectory, let addChdir = gnuSpawnChdir { _ = addChdir(&actions, workingDirectory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in Int32(1)..<32 where signal != SIGKILL && signal != SIGSTOP {
            sigaddset(&defaultSignals, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw Failure(description: "could not run \(path): \(String(cString: strerror(status)))")
        }
        return Started(pid: pid, standardOutput: outPipe[0], standardError: errPipe[0])
    }

    private typealias SpawnClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private typealias SpawnChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    private static let gnuSpawnClosefrom: SpawnClosefrom? = glibcSymbol("posix_spawn_file_actions_addclosefrom_np")
    private static let gnuSpawnChdir: SpawnChdir? = glibcSymbol("posix_spawn_file_actions_addchdir_np")
    private static let pipe2: Pipe2? = glibcSymbol("pipe2")

    /// A close-on-exec pipe (atomically where glibc has pipe2).
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        if let pipe2 {
            return fds.withUnsafeMutableBufferPointer { pipe2($0.baseAddress, O_CLOEXEC) } == 0
        }
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    private static func glibcSymbol<T>(_ name: String) -> T? {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: T.self)
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
#endif
