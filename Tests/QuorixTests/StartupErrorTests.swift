import Foundation
import QuorixTestSupport
import Testing

/// Settings that cannot work stop the server at once, with a message saying what to fix.
@Suite struct StartupErrorTests {
    static func run(_ arguments: [String], environment: [String: String]) async throws -> (code: Int32?, output: String) {
        let process = try ServerProcess.launch(arguments: arguments, environment: environment)
        let code = await process.waitForExit(timeout: .seconds(20))
        if code == nil { process.killAndReap() }
        return (code, process.standardError + process.standardOutput)
    }

    /// Never reached: configuration is checked before anything connects.
    static let database = ["QUORIX_DATABASE_URL": "host=/nonexistent port=1 dbname=none"]

    @Test(arguments: [
        (["serve", "--listen", "nonsense"], "HOST:PORT"),
        (["serve", "--listen", "127.0.0.1:99999"], "port"),
        (["serve", "--listen", "example.com:80"], "IP address"),
    ])
    func badListenAddressExitsNonZeroSayingWhatToFix(_ arguments: [String], _ hint: String) async throws {
        let (code, output) = try await Self.run(arguments, environment: Self.database)
        #expect(code != nil && code != 0, "exit \(String(describing: code)): \(output)")
        #expect(output.contains("--listen"), "\(output)")
        #expect(output.contains(hint), "\(output)")
    }

    @Test func shortAdminKeyExitsNonZeroSayingWhatToFix() async throws {
        var environment = Self.database
        environment["QUORIX_ADMIN_KEY"] = "short"
        let (code, output) = try await Self.run(["serve", "--listen", "127.0.0.1:0"], environment: environment)
        #expect(code != nil && code != 0, "exit \(String(describing: code)): \(output)")
        #expect(output.contains("QUORIX_ADMIN_KEY"), "\(output)")
        #expect(output.contains("16"), "\(output)")
    }

    @Test func unreachableDatabaseIsReportedAndSIGTERMEndsTheWait() async throws {
        let process = try ServerProcess.launch(
            arguments: ["serve", "--listen", "127.0.0.1:0"],
            environment: ["QUORIX_DATABASE_URL": "host=127.0.0.1 port=1 user=quorix dbname=quorix"])
        defer { process.killAndReap() }
        // The server waits for the database (it may still be starting) and says so.
        let deadline = ContinuousClock.now + .seconds(10)
        while !process.outputLines.contains(where: { $0.contains("waiting for the database") }) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                Issue.record("no 'waiting for the database' line: \(process.standardOutput) \(process.standardError)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!process.standardOutput.contains("EBADF"), "the refusal is reported as libuv's EBADF")
        process.signal(SIGTERM)
        let code = await process.waitForExit(timeout: .seconds(5))
        #expect(code != nil, "SIGTERM did not end the wait for the database")
        #expect(code == 0, "a requested stop during start-up is not a failure")
        #expect(!process.standardOutput.contains("handles still open"), "\(process.standardOutput)")
        #expect(process.standardOutput.contains("\"open_handles\":0"), "\(process.standardOutput)")
    }

    /// Listening fails after the whole app (sweeper included) was built: a clear error, a
    /// non-zero exit, and every handle closed.
    @Test func aTakenPortExitsNonZeroWithEveryHandleClosed() async throws {
        let first = try await ServerProcess.start()
        let (code, output) = try await Self.run(
            ["serve", "--listen", "127.0.0.1:\(first.port)"],
            environment: ["QUORIX_DATABASE_URL": first.databaseConninfo, "QUORIX_MIGRATIONS_DIR": PackagePaths.migrationsDirectory])
        #expect(code != nil && code != 0, "exit \(code.map(String.init) ?? "none")")
        #expect(output.contains("cannot listen on 127.0.0.1:\(first.port)"), "\(output)")
        #expect(!output.contains("handles still open"), "\(output)")
    }
}
