import Foundation
import Quorix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn, its standard output and error read on background
/// threads as they come, so a chatty child never blocks on a full pipe.
///
/// Not Foundation `Process`: the child gets exactly stdin (/dev/null), stdout and stderr, a clean
/// signal mask (test threads may block signals, and a server must be able to receive SIGTERM), and
/// it is reaped here with `waitpid` on its own pid, so the exit status is never lost.
public final class Subprocess: Sendable {
    public let pid: Int32
    public let commandLine: String
    private let state = Mutex(State())

    private struct State {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var lines: [String] = []
        var partialLine: [UInt8] = []
        var openPipes = 2
        var exitStatus: Int32?
    }

    /// Starts `executable`; `environment` replaces the child's environment entirely.
    ///
    /// With `killWithParent`, the child gets SIGKILL when the test process dies, even by a crash
    /// that runs no clean-up (through `setpriv --pdeathsig`, where util-linux has it).
    public init(
        executable: String, arguments: [String], environment: [String: String], workingDirectory: String? = nil,
        killWithParent: Bool = false
    ) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        var executable = executable
        var arguments = arguments
        if killWithParent, let setpriv = (["/usr/bin/setpriv", "/bin/setpriv"] as [String]).first(where: { access($0, X_OK) == 0 }) {
            arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
            executable = setpriv
        }
        // The parent-death signal follows the thread that spawned the child, so spawn from a
        // thread that lives as long as the process.
        let spawnExecutable = executable, spawnArguments = arguments
        let outcome = SpawnerThread.shared.perform { () -> Swift.Result<ChildProcess.Started, ChildProcess.Failure> in
            do throws(ChildProcess.Failure) {
                return .success(try ChildProcess.spawn(spawnExecutable, spawnArguments, environment: environment, workingDirectory: workingDirectory))
            } catch {
                return .failure(error)
            }
        }
        let started: ChildProcess.Started
        switch outcome {
        case .success(let value): started = value
        case .failure(let error): throw SupportError(error.description)
        }
        let pid = started.pid
        let outRead = started.standardOutput
        let errRead = started.standardError
        self.pid = pid
        startReader(fd: outRead, isStandardOutput: true)
        startReader(fd: errRead, isStandardOutput: false)
    }

    private func startReader(fd: Int32, isStandardOutput: Bool) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                let chunk = buffer[0..<count]
                state.withLock { state in
                    if isStandardOutput {
                        state.stdout.append(contentsOf: chunk)
                        for byte in chunk {
                            if byte == 0x0A {
                                state.lines.append(String(decoding: state.partialLine, as: UTF8.self))
                                state.partialLine.removeAll(keepingCapacity: true)
                            } else {
                                state.partialLine.append(byte)
                            }
                        }
                    } else {
                        state.stderr.append(contentsOf: chunk)
                    }
                }
            }
            close(fd)
            state.withLock { state in
                state.openPipes -= 1
                if isStandardOutput && !state.partialLine.isEmpty {
                    state.lines.append(String(decoding: state.partialLine, as: UTF8.self))
                    state.partialLine.removeAll()
                }
            }
        }
        thread.start()
    }

    /// Complete lines written to standard output so far.
    public var outputLines: [String] { state.withLock { $0.lines } }
    public var standardOutput: String { state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    public var standardError: String { state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    /// Both pipes reached end of file.
    public var outputFinished: Bool { state.withLock { $0.openPipes == 0 } }

    /// The exit code once the child has exited (128 + n after signal n), else nil. Never blocks.
    public var exitCode: Int32? {
        state.withLock { state in
            if let status = state.exitStatus { return status }
            var raw: Int32 = 0
            let reaped = waitpid(pid, &raw, WNOHANG)
            if reaped == pid {
                let signal = raw & 0x7f
                state.exitStatus = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            } else if reaped == -1 && errno == ECHILD {
                state.exitStatus = -1
            }
            return state.exitStatus
        }
    }

    public var isRunning: Bool { exitCode == nil }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// Waits without blocking a thread of the test's executor; nil when still running at the deadline.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = exitCode {
                await waitForOutput(until: deadline)
                return code
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return exitCode
    }

    /// Blocks the calling thread (for synchronous callers such as `atexit` or psql helpers).
    public func waitForExitBlocking(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = exitCode {
                while !outputFinished && ContinuousClock.now < deadline { usleep(2_000) }
                return code
            }
            usleep(2_000)
        }
        return exitCode
    }

    private func waitForOutput(until deadline: ContinuousClock.Instant) async {
        // The readers may still hold the last bytes; a grandchild could keep the pipes open, so bounded.
        let limit = min(deadline, ContinuousClock.now + .seconds(2))
        while !outputFinished && ContinuousClock.now < limit {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// SIGKILL and reap; safe to call at any time.
    public func killAndReap() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        _ = waitForExitBlocking(timeout: .seconds(5))
    }

    deinit {
        killAndReap()
    }

    // MARK: One-shot commands

    public struct Result: Sendable {
        public let status: Int32
        public let standardOutput: String
        public let standardError: String
        public var succeeded: Bool { status == 0 }
    }

    /// Runs a command to completion (killed after `timeout`).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)) throws -> Result {
        let process = try Subprocess(
            executable: executable, arguments: arguments,
            environment: environment ?? ProcessInfo.processInfo.environment)
        guard let status = process.waitForExitBlocking(timeout: timeout) else {
            process.killAndReap()
            throw SupportError("\(process.commandLine) did not finish within \(timeout); output: \(process.standardOutput) \(process.standardError)")
        }
        return Result(status: status, standardOutput: process.standardOutput, standardError: process.standardError)
    }
}

/// One thread for the life of the process that performs every spawn (see `killWithParent`).
private final class SpawnerThread: @unchecked Sendable {
    static let shared = SpawnerThread()
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "quorix-test-spawner"
        thread.start()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    func perform<T>(_ body: @escaping () -> T) -> T {
        let done = NSCondition()
        var result: T?
        condition.lock()
        jobs.append {
            let value = body()
            done.lock()
            result = value
            done.signal()
            done.unlock()
        }
        condition.signal()
        condition.unlock()
        done.lock()
        while result == nil { done.wait() }
        done.unlock()
        return result!
    }
}
