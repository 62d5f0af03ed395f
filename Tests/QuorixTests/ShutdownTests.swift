import Foundation
import PG
import QuorixTestSupport
import Testing

/// SIGTERM: stop accepting, finish what is in flight, close every handle, exit 0.
@Suite struct ShutdownTests {
    static func expectCleanStop(_ server: ServerProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        let last = server.logLines.last ?? ""
        #expect(last.contains(#""msg":"stopped""#), "last log line: \(last)", sourceLocation: sourceLocation)
        #expect(last.contains(#""open_handles":0"#), "last log line: \(last)", sourceLocation: sourceLocation)
    }

    @Test(.timeLimit(.minutes(1)))
    func sigtermLetsTheRequestInFlightFinish() async throws {
        let server = try await ServerProcess.start()
        let conninfo = server.databaseConninfo
        // Hold a lock the request's INSERT must wait for.
        let locker = try await TestDatabase.connect(conninfo)
        try await TestDatabase.execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE", on: locker)
        var locked = true
        do {
            let client = try server.client(timeout: .seconds(20))
            try client.sendRequest(
                "POST", "/v1/keys", headers: [server.adminAuthorization, ("Content-Type", "application/json")],
                body: Array(#"{"role": "client", "name": "in flight"}"#.utf8))
            try await Self.waitForLockWaiter(conninfo)

            server.terminate()
            try await server.waitForLog(containing: #""msg":"shutting down""#)
            // Draining: the listener closes (a connection the kernel accepted just before is
            // closed unanswered), while the request in flight waits for its answer.
            #expect(Self.newConnectionsAreRefused(port: server.port, within: .seconds(5)))
            #expect(server.isRunning)

            try await TestDatabase.execute("COMMIT", on: locker)
            locked = false
            let response = try client.readResponse()
            #expect(response.status == 201, "\(response)")
            #expect(try response.json()["name"] == .string("in flight"))
            #expect(response.header("Connection")?.lowercased() == "close")
        } catch {
            if locked { _ = try? await TestDatabase.execute("ROLLBACK", on: locker) }
            await TestDatabase.close(locker)
            throw error
        }
        await TestDatabase.close(locker)

        let code = await server.waitForExit(timeout: .seconds(15))
        #expect(code == 0, "exit \(code.map(String.init) ?? "none"); stderr: \(server.process.standardError)")
        Self.expectCleanStop(server)
        // The key the drained request created was committed.
        let rows = try await TestDatabase.query(conninfo, "SELECT count(*) AS n FROM api_keys WHERE name = \("in flight")")
        #expect(try rows.first?.int("n") == 1)
    }

    /// Whether connecting is refused before `within` passes; any connection that still gets
    /// through must be closed without an answer.
    static func newConnectionsAreRefused(port: Int, within: Duration) -> Bool {
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            guard let client = try? HTTPTestClient(port: port, timeout: .seconds(2)) else { return true }
            defer { client.close() }
            if let response = try? client.request("GET", "/healthz") {
                Issue.record("a connection opened after SIGTERM was served: \(response)")
                return false
            }
            usleep(20_000)
        }
        return false
    }

    /// Until some backend of the database waits for a lock.
    static func waitForLockWaiter(_ conninfo: String) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let rows = try await TestDatabase.query(conninfo, """
                SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """)
            if try rows.first?.int("n") ?? 0 > 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SupportError("the request never waited for the lock")
    }

    @Test(.timeLimit(.minutes(1)))
    func sigtermOnAnIdleServerExitsPromptly() async throws {
        let server = try await ServerProcess.start()
        #expect(try server.request("GET", "/healthz").status == 200)
        // An idle keep-alive connection does not hold the shutdown up.
        let idle = try server.client()
        #expect(try idle.request("GET", "/healthz").status == 200)
        let started = ContinuousClock.now
        server.terminate()
        let code = await server.waitForExit(timeout: .seconds(10))
        #expect(code == 0, "exit \(code.map(String.init) ?? "none"); stderr: \(server.process.standardError)")
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(idle.waitForClose(timeout: .seconds(1)))
        Self.expectCleanStop(server)
    }

    @Test(.timeLimit(.minutes(1)))
    func sigintStopsCleanlyToo() async throws {
        let server = try await ServerProcess.start()
        server.process.signal(SIGINT)
        #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
        Self.expectCleanStop(server)
    }

    @Test(.timeLimit(.minutes(1)))
    func anOpenStreamEndsAndTheServerStopsPromptly() async throws {
        let server = try await ServerProcess.start()
        let organizer = try server.createKey(role: "organizer", name: "stream organizer")
        let theatre = try server.uploadSample(SampleMaps.theatre, key: organizer)
        let created = try server.slowRequest("POST", "/v1/events", headers: [bearer(organizer), ("Content-Type", "application/json")], body: Array("""
            {"name": "Stream night", "seatmap_id": \(theatre), "starts_at": "2026-12-01T20:00:00Z", "prices": \(SalePrices.json(SalePrices.theatre))}
            """.utf8))
        let id = try #require(try created.json()["id"]?.catalogInt)
        let stream = try SSETestClient(port: server.port, path: "/v1/events/\(id)/stream")
        defer { stream.close() }
        #expect(try stream.next()?.event == "snapshot")
        let started = ContinuousClock.now
        server.terminate()
        #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
        #expect(ContinuousClock.now - started < .seconds(3), "the stream held the drain open")
        try stream.pump(for: .milliseconds(200))
        #expect(stream.client.peerClosed, "the stream was ended")
        Self.expectCleanStop(server)
    }
}
