import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// When sales open, requests that need the same answer from the database at the same moment
/// must share one question: an API key's lookup, a best-available page. Each test stalls the
/// database behind a table lock while a crowd arrives, counts the backends waiting on it, then
/// lets go and checks every answer and the stored seats.
@Suite struct CrowdSharingTests {
    /// The statements waiting for a lock, a line each.
    static func lockWaiters(_ conninfo: String) async throws -> [String] {
        try await TestDatabase.query(conninfo, """
            SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'
            """).rows.map { try $0.string("query") }
    }

    /// Sends `count` requests on connections of their own with `table` locked, returns the lock
    /// waiters once they are all in, then unlocks and reads every answer.
    static func whileLocked(
        _ table: String, _ server: ServerProcess, count: Int, send: (Int, HTTPTestClient) throws -> Void
    ) async throws -> (waiters: [String], answers: [HTTPTestResponse]) {
        var waiters: [String] = []
        let answers = try await answersAfterLock(server.databaseConninfo, "LOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE") {
            var clients: [HTTPTestClient] = []
            do {
                for index in 0..<count {
                    let client = try server.client(timeout: .seconds(20))
                    clients.append(client)
                    try send(index, client)
                }
                try await ShutdownTests.waitForLockWaiter(server.databaseConninfo)
                // Every request was written before the first waiter; give the server time to read them all.
                try await Task.sleep(for: .milliseconds(400))
                waiters = try await lockWaiters(server.databaseConninfo)
            } catch {
                for client in clients { client.close() }
                throw error
            }
            return clients
        }
        return (waiters, answers)
    }

    /// 40 requests with a key the server has not seen yet: one lookup waits on the lock, not
    /// one per connection of the pool, and every request is then answered as that key.
    @Test(.timeLimit(.minutes(1)))
    func requestsWithAKeyNotYetLookedUpShareOneLookup() async throws {
        let server = try await ServerProcess.start()
        let key = try server.createKey(role: "client", name: "crowd key")
        let (waiters, answers) = try await Self.whileLocked("api_keys", server, count: 40) { _, client in
            try client.sendRequest("GET", "/v1/holds/not-a-token", headers: [bearer(key)])
        }
        #expect(waiters.count == 1, "backends waiting for the key's lookup: \(waiters)")
        for answer in answers { expectError(answer, status: 404, code: "not_found") }
        // The key found is remembered: it is answered with the table locked again.
        let locker = try await TestDatabase.connect(server.databaseConninfo)
        try await TestDatabase.execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE", on: locker)
        let later = Result { try server.client(timeout: .seconds(5)).request("GET", "/v1/holds/not-a-token", headers: [bearer(key)]) }
        _ = try? await TestDatabase.execute("ROLLBACK", on: locker)
        await TestDatabase.close(locker)
        expectError(try later.get(), status: 404, code: "not_found")
    }

    /// 40 best-available requests on an event with 10 free pairs, each in a row of its own: they
    /// share one read of the free seats, spread over its pairs rather than all queueing for the
    /// best, and exactly the 10 pairs are sold, each once.
    @Test(.timeLimit(.minutes(1)))
    func bestAvailableRequestsShareTheirReadAndSpreadOverItsSeats() async throws {
        let sale = try await HoldBatchTests.start(poolSize: 8, holdStatements: 2)
        let server = sale.server
        let id = try sale.newEvent(holdTTL: 600)
        let all = try await sale.labels(seatmapID: sale.theatreID)
        let rows = Array(Set(all.compactMap { SaleLabel($0) }.filter { $0.section == "STALLS" }.map(\.sectionRow)))
            .filter { all.contains("\($0)-6") }.sorted().prefix(10)
        let pairs = rows.map { ["\($0)-5", "\($0)-6"] }
        #expect(pairs.allSatisfy { $0.allSatisfy(all.contains) }, "\(pairs)")
        try sale.block(id, all.filter { label in !pairs.contains { $0.contains(label) } })
        // The snapshot loads (and learns the blocked seats) before the crowd.
        #expect(try sale.send("GET", "/v1/events/\(id)/seats", key: nil).status == 200)
        let statementsBefore = try HoldBatchTests.metric(server, "quorix_hold_statements_total")

        let (waiters, answers) = try await Self.whileLocked("event_seats", server, count: 40) { index, client in
            try client.sendRequest(
                "POST", "/v1/events/\(id)/holds", headers: [bearer(sale.client), ("Content-Type", "application/json")],
                body: Array(CatalogServer.Fixture.bestBody(quantity: 2, customer: "crowd-\(index)").utf8))
        }
        let reads = waiters.filter { $0.hasPrefix("SELECT seat_id, row_id") }
        #expect(reads.count == 1, "backends waiting on the seats (the reads were not shared): \(waiters)")
        var sold: [[String]] = []
        for answer in answers {
            switch answer.status {
            case 201: sold.append(try sale.parseHold(answer).seats.sorted())
            default: expectError(answer, status: 409, code: "no_seats_available")
            }
        }
        #expect(Set(sold) == Set(pairs.map { $0.sorted() }) && sold.count == 10, "\(sold)")
        // Spread over the page, the pairs go in a few statements; all queueing for the best pair
        // would take a statement each.
        let statements = try HoldBatchTests.metric(server, "quorix_hold_statements_total") - statementsBefore
        #expect(statements <= 8, "\(statements) hold statements for 10 pairs")
        let stored = try await sale.storedStatuses(id, pairs.flatMap { $0 })
        #expect(stored.values.allSatisfy { $0 == "held" }, "\(stored)")
        #expect(try await sale.liveHoldCount(id) == 10)
        try await sale.expectConsistent(id)
    }
}
