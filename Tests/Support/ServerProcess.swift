import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real `quorix serve` process on a fresh database, listening on a port the kernel picked.
///
/// Standard output (one JSON object per line) is collected on a background thread; `start` returns
/// once the `"msg":"listening"` line named the port. The process is killed when this object goes
/// away, and at the latest when the test process exits.
public final class ServerProcess: Sendable {
    public let process: Subprocess
    public let port: Int
    /// The database the server uses.
    public let databaseConninfo: String
    /// `QUORIX_ADMIN_KEY` of this server.
    public let adminKey: String

    private static let live = Mutex<[pid_t: Subprocess]>([:])

    private init(process: Subprocess, port: Int, databaseConninfo: String, adminKey: String) {
        self.process = process
        self.port = port
        self.databaseConninfo = databaseConninfo
        self.adminKey = adminKey
    }

    /// Launches `quorix serve --listen 127.0.0.1:0` and waits (up to `timeout`) until it listens.
    ///
    /// - Parameters:
    ///   - database: a conninfo; by default a fresh database of `TestCluster`.
    ///   - environment: extra or overriding `QUORIX_*` settings (`QUORIX_HTTP_IDLE_TIMEOUT_MS`…).
    @concurrent
    public static func start(
        database: String? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(30)
    ) async throws -> ServerProcess {
        let conninfo = try database ?? TestCluster.shared.makeDatabase()
        let adminKey = TestCluster.randomHex(bytes: 16)
        var settings = [
            "QUORIX_DATABASE_URL": conninfo,
            "QUORIX_ADMIN_KEY": adminKey,
            "QUORIX_MIGRATIONS_DIR": PackagePaths.migrationsDirectory,
        ]
        settings.merge(environment) { _, new in new }
        let process = try launch(arguments: ["serve", "--listen", "127.0.0.1:0"], environment: settings)
        let line: String
        do {
            line = try await waitForLine(of: process, containing: #""msg":"listening""#, timeout: timeout)
        } catch {
            process.killAndReap()
            throw error
        }
        guard let port = logField(line, "port").flatMap({ $0 as? Int }) else {
            process.killAndReap()
            throw SupportError("the listening line has no port: \(line)")
        }
        return ServerProcess(process: process, port: port, databaseConninfo: conninfo, adminKey: adminKey)
    }

    /// Runs the quorix binary with `arguments`; the environment is this process's without any
    /// `QUORIX_*` variable, plus `environment`.
    public static func launch(arguments: [String], environment: [String: String]) throws -> Subprocess {
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("QUORIX_") }
        merged.merge(environment) { _, new in new }
        let process = try Subprocess(
            executable: try PackagePaths.quorixBinary(), arguments: arguments, environment: merged,
            workingDirectory: PackagePaths.root, killWithParent: true)
        live.withLock { $0[process.pid] = process }
        TestCleanUp.register()
        return process
    }

    // MARK: - Logs

    /// Every line the server wrote to standard output so far.
    public var logLines: [String] { process.outputLines }

    /// The first log line containing `text` (waiting up to `timeout` for it to appear).
    @discardableResult
    public func waitForLog(containing text: String, timeout: Duration = .seconds(10)) async throws -> String {
        try await ServerProcess.waitForLine(of: process, containing: text, timeout: timeout)
    }

    static func waitForLine(of process: Subprocess, containing text: String, timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = process.outputLines.first(where: { $0.contains(text) }) { return line }
            if !process.isRunning {
                // Lines written just before exiting may still be in the pipe.
                _ = await process.waitForExit(timeout: .seconds(2))
                if let line = process.outputLines.first(where: { $0.contains(text) }) { return line }
                throw SupportError("""
                    quorix exited (status \(process.exitCode ?? -1)) without logging \(text).
                    stdout:
                    \(process.standardOutput)
                    stderr:
                    \(process.standardError)
                    """)
            }
            if ContinuousClock.now >= deadline {
                throw SupportError("""
                    quorix did not log \(text) within \(timeout).
                    stdout:
                    \(process.standardOutput)
                    stderr:
                    \(process.standardError)
                    """)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A field of a JSON log line (numbers come back as `Int` or `Double`).
    public static func logField(_ line: String, _ name: String) -> Any? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object[name]
    }

    // MARK: - Stopping

    public var isRunning: Bool { process.isRunning }

    /// SIGTERM: the server drains and exits.
    public func terminate() {
        process.signal(SIGTERM)
    }

    public func kill() {
        process.signal(SIGKILL)
    }

    /// The exit code, or nil if the server still runs after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(15)) async -> Int32? {
        await process.waitForExit(timeout: timeout)
    }

    deinit {
        process.killAndReap()
        ServerProcess.live.withLock { _ = $0.removeValue(forKey: process.pid) }
    }

    /// Kills every server still running (at exit, so none outlives the test process).
    static func killAll() {
        let all = live.withLock { live -> [Subprocess] in
            let processes = Array(live.values)
            live.removeAll()
            return processes
        }
        for process in all { process.killAndReap() }
    }
}

/// One server shared by the tests of a suite that do not interfere with each other, started on
/// first use.
public final class SharedServer: Sendable {
    private let environment: [String: String]
    private let task = Mutex<Task<ServerProcess, any Error>?>(nil)

    public init(environment: [String: String] = [:]) {
        self.environment = environment
    }

    public func get() async throws -> ServerProcess {
        let task = task.withLock { task -> Task<ServerProcess, any Error> in
            if let task { return task }
            let environment = environment
            let started = Task { try await ServerProcess.start(environment: environment) }
            task = started
            return started
        }
        return try await task.value
    }
}
