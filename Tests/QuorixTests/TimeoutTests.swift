import Foundation
import QuorixTestSupport
import Testing

/// Slow and idle clients, against a server with 500 ms timeouts.
@Suite struct TimeoutTests {
    static let server = SharedServer(environment: [
        "QUORIX_HTTP_REQUEST_TIMEOUT_MS": "500", "QUORIX_HTTP_IDLE_TIMEOUT_MS": "500",
    ])

    @Test func requestWhoseHeadersNeverFinishGets408() async throws {
        let server = try await Self.server.get()
        let client = try server.client()
        let started = ContinuousClock.now
        try client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: still typ")
        do {
            let response = try client.readResponse(timeout: .seconds(5))
            expectError(response, status: 408, code: "request_timeout")
        } catch let error as HTTPTestClientError where error.isClosed {
            // Closing without an answer is allowed too.
        }
        #expect(client.waitForClose(timeout: .seconds(4)))
        let elapsed = ContinuousClock.now - started
        // ~0.5 s; the upper bound allows for a loaded machine.
        #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(3), "cut after \(elapsed)")
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let server = try await Self.server.get()
        let client = try server.client()
        #expect(try client.request("GET", "/healthz").status == 200)
        let started = ContinuousClock.now
        #expect(client.waitForClose(timeout: .seconds(4)), "the idle connection stayed open")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(3), "closed after \(elapsed)")
        #expect(client.unreadBytes.isEmpty)
    }

    @Test func requestSentInPiecesWithinTheTimeoutIsServed() async throws {
        let server = try await Self.server.get()
        let client = try server.client()
        let bytes = HTTPTestClient.requestBytes("GET", "/healthz")
        let third = bytes.count / 3
        // Blocking sleeps: an await here could resume late when other tests keep the executor busy.
        try client.send(Array(bytes[..<third]))
        usleep(100_000)
        try client.send(Array(bytes[third..<(2 * third)]))
        usleep(100_000)
        try client.send(Array(bytes[(2 * third)...]))
        #expect(try client.readResponse().status == 200)
    }
}
