import Foundation
import Logging
import Quorix
import QuorixTestSupport
import Testing

/// A server on a PostgreSQL cluster of its own, which is stopped under it and started again.
@Suite struct DatabaseOutageTests {
    @Test(.timeLimit(.minutes(2)))
    func serverAnswers503WhileTheDatabaseIsDownAndRecoversByItself() async throws {
        let directory = "/tmp/quorix-outage-\(TestCluster.randomHex(bytes: 4))"
        let cluster = EmbeddedPostgres(
            dataDirectory: directory + "/data", logger: Logger(label: "quorix.test-outage") { _ in SwiftLogNoOpLogHandler() })
        defer {
            try? cluster.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let conninfo = try await Self.offThread { try cluster.start() }
        let server = try await ServerProcess.start(database: conninfo)
        #expect(try server.request("GET", "/healthz").status == 200)

        try await Self.offThread { try cluster.stop() }
        let health = try server.request("GET", "/healthz")
        expectError(health, status: 503, code: "database_unavailable")
        #expect(health.header("Retry-After").flatMap { Int($0) }.map { $0 > 0 } == true, "\(health)")
        let create = try server.request("POST", "/v1/keys", headers: [server.adminAuthorization], json: #"{"role": "client", "name": "x"}"#)
        expectError(create, status: 503, code: "database_unavailable")
        #expect(create.header("Retry-After") != nil)
        // Reads that need no database still work, and nothing crashed.
        #expect(try server.request("GET", "/metrics").status == 200)

        try await Self.offThread { _ = try cluster.start() }
        let deadline = ContinuousClock.now + .seconds(10)
        var status = 0
        while ContinuousClock.now < deadline {
            status = try server.request("GET", "/healthz").status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200, "the server did not recover within 10 s")
        #expect(server.isRunning, "the server was restarted or died")
        let created = try server.request("POST", "/v1/keys", headers: [server.adminAuthorization], json: #"{"role": "client", "name": "x"}"#)
        #expect(created.status == 201, "\(created)")
        let errors = server.logLines.filter { $0.contains(#""level":"critical""#) || $0.contains(#""msg":"request failed""#) }
        #expect(errors.isEmpty, "\(errors)")

        server.terminate()
        #expect(await server.waitForExit() == 0)
    }

    /// Runs blocking work (pg_ctl, initdb) on a thread of its own, not on the test executor.
    static func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result(catching: body)) }.start()
        }
    }
}
