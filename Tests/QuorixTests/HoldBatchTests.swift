import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// Holds that wait for a connection at the same time share one statement (`HoldBatcher`); each
/// must still be all or nothing on its own, and a seat wanted twice must go to one of them.
@Suite struct HoldBatchTests {
    /// A server whose pool has `poolSize` connections, `holdStatements` of them for holds at
    /// once, with the theatre and a client key.
    static func start(poolSize: Int, holdStatements: Int) async throws -> CatalogServer.Fixture {
        let server = try await ServerProcess.start(environment: [
            "QUORIX_DB_POOL_SIZE": "\(poolSize)", "QUORIX_HOLD_STATEMENTS": "\(holdStatements)",
        ])
        let organizer = try server.createKey(role: "organizer", name: "batch organizer")
        let client = try server.createKey(role: "client", name: "batch client")
        let theatre = try server.uploadSample(SampleMaps.theatre, key: organizer)
        return CatalogServer.Fixture(
            server: server, organizer: organizer, otherOrganizer: organizer, client: client, otherClient: client,
            theatreID: theatre, stadiumID: theatre)
    }

    static func metric(_ server: ServerProcess, _ name: String) throws -> Int {
        let text = String(decoding: try server.slowRequest("GET", "/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int(Double(line.split(separator: " ")[1]) ?? -1)
        }
        return 0
    }

    static func waitForMetric(_ server: ServerProcess, _ name: String, toBe value: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try metric(server, name) == value { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SupportError("\(name) never reached \(value) (it is \(try metric(server, name)))")
    }

    /// With the only hold statement allowed stuck behind a row lock (the other connection
    /// serves the requests' reads), five holds queue; when it frees, the
    /// four whose seats do not meet (one of them on another event, with the same seat ids as
    /// another's) run in one statement, where one loses (a seat is already held) without taking
    /// the others down, and the fifth, which wants a seat of the first, runs next and loses that
    /// seat only.
    @Test(.timeLimit(.minutes(1)))
    func queuedHoldsShareAStatementAndEachIsAllOrNothing() async throws {
        let sale = try await Self.start(poolSize: 2, holdStatements: 1)
        let server = sale.server
        let id = try sale.newEvent(holdTTL: 600)
        let otherEvent = try sale.newEvent(holdTTL: 600)
        _ = try sale.requireHold(id, seats: ["STALLS-A-6"], customer: "earlier")
        let statementsBefore = try Self.metric(server, "quorix_hold_statements_total")
        let holdsBefore = try Self.metric(server, "quorix_hold_statement_holds_total")

        let answers = try await answersAfterLock(server.databaseConninfo, """
            SELECT 1 FROM event_seats es JOIN seats s ON s.id = es.seat_id
            WHERE es.event_id = \(id) AND s.label = 'STALLS-A-1' FOR UPDATE
            """) {
            func send(_ seats: [String], _ customer: String, event: Int? = nil) throws -> HTTPTestClient {
                let client = try server.client(timeout: .seconds(20))
                try client.sendRequest(
                    "POST", "/v1/events/\(event ?? id)/holds", headers: [bearer(sale.client), ("Content-Type", "application/json")],
                    body: Array(#"{"customer": "\#(customer)", "seats": \#(jsonList(seats))}"#.utf8))
                return client
            }
            let stuck = try send(["STALLS-A-1"], "stuck")
            try await ShutdownTests.waitForLockWaiter(server.databaseConninfo)
            let clients = [
                stuck, try send(["STALLS-A-3", "STALLS-A-4"], "first"), try send(["STALLS-A-5", "STALLS-A-6"], "loser"),
                try send(["STALLS-A-7", "STALLS-A-8"], "third"), try send(["STALLS-A-3", "STALLS-A-4"], "elsewhere", event: otherEvent),
                try send(["STALLS-A-3", "STALLS-A-9"], "overlapping"),
            ]
            try await Self.waitForMetric(server, "quorix_holds_waiting", toBe: 5)
            return clients
        }
        #expect([0, 1, 3, 4].allSatisfy { answers[$0].status == 201 }, "\(answers)")
        #expect(try sale.parseHold(answers[1]).seats == ["STALLS-A-3", "STALLS-A-4"])
        #expect(try sale.parseHold(answers[3]).seats == ["STALLS-A-7", "STALLS-A-8"])
        let elsewhere = try sale.parseHold(answers[4])
        #expect(elsewhere.eventID == otherEvent && elsewhere.seats == ["STALLS-A-3", "STALLS-A-4"])
        expectError(answers[2], status: 409, code: "seats_unavailable")
        #expect(errorSeats(answers[2]) == ["STALLS-A-6"], "\(answers[2])")
        expectError(answers[5], status: 409, code: "seats_unavailable")
        #expect(errorSeats(answers[5]) == ["STALLS-A-3"], "\(answers[5])")

        // The stuck hold alone, the four together, the overlapping one after them.
        #expect(try Self.metric(server, "quorix_hold_statements_total") - statementsBefore == 3)
        #expect(try Self.metric(server, "quorix_hold_statement_holds_total") - holdsBefore == 6)
        #expect(try Self.metric(server, "quorix_holds_waiting") == 0)
        let stored = try await sale.storedStatuses(id, (1...9).map { "STALLS-A-\($0)" })
        #expect(stored == [
            "STALLS-A-1": "held", "STALLS-A-2": "free", "STALLS-A-3": "held", "STALLS-A-4": "held", "STALLS-A-5": "free",
            "STALLS-A-6": "held", "STALLS-A-7": "held", "STALLS-A-8": "held", "STALLS-A-9": "free",
        ])
        #expect(try await sale.liveHoldCount(id) == 4)
        let elsewhereStored = try await sale.storedStatuses(otherEvent, ["STALLS-A-2", "STALLS-A-3", "STALLS-A-4"])
        #expect(elsewhereStored == ["STALLS-A-2": "free", "STALLS-A-3": "held", "STALLS-A-4": "held"])
        try await sale.expectConsistent(id)
        try await sale.expectConsistent(otherEvent)
    }

    /// 240 clients at once through two connections: pairs of their own, pairs that overlap
    /// another client's, and best available. Batches must form, and afterwards no seat is in two
    /// holds, every winner holds exactly what it asked for, and every refusal names seats that
    /// someone else holds.
    @Test(.timeLimit(.minutes(1)))
    func aRaceThroughBatchesSellsEachSeatOnce() async throws {
        let sale = try await Self.start(poolSize: 2, holdStatements: 2)
        let server = sale.server
        let id = try sale.newEvent(holdTTL: 600)
        let row = (1...30).map { "STALLS-B-\($0)" }
        let all = try await sale.labels(seatmapID: sale.theatreID)
        try sale.block(id, all.filter { !row.contains($0) })
        let statementsBefore = try Self.metric(server, "quorix_hold_statements_total")
        let holdsBefore = try Self.metric(server, "quorix_hold_statement_holds_total")

        let clients = 240
        let requests: [[String]?] = (0..<clients).map { index in
            switch index % 4 {
            case 0: return [row[(index / 4) % 15 * 2], row[(index / 4) % 15 * 2 + 1]]  // a pair
            case 1: return [row[(index / 4) % 14 * 2 + 1], row[(index / 4) % 14 * 2 + 2]]  // straddling two pairs
            case 2: return [row[index % 30]]
            default: return nil  // 2 best available
            }
        }
        let port = sale.port
        let key = sale.client
        let outcomes = await onThreads(clients) { index in
            let body = requests[index].map { #"{"customer": "batch-\#(index)", "seats": \#(jsonList($0))}"# }
                ?? CatalogServer.Fixture.bestBody(quantity: 2, customer: "batch-\(index)")
            return saleRequest(port: port, "POST", "/v1/events/\(id)/holds", key: key, body: body)
        }
        var won: [String: Int] = [:]
        var refusals: [(index: Int, seats: [String])] = []
        for (index, outcome) in outcomes.enumerated() {
            guard case .success(let response) = outcome else {
                Issue.record("client \(index) got no answer: \(outcome)")
                continue
            }
            switch response.status {
            case 201:
                let hold = try sale.parseHold(response)
                if let wanted = requests[index] {
                    #expect(hold.seats == wanted, "\(response)")
                } else {
                    #expect(hold.seats.count == 2 && areAdjacentInOneRow(hold.seats), "\(response)")
                }
                for seat in hold.seats {
                    #expect(won[seat] == nil, "\(seat) won by clients \(won[seat] ?? -1) and \(index)")
                    won[seat] = index
                }
            case 409 where requests[index] != nil:
                expectError(response, status: 409, code: "seats_unavailable")
                let named = errorSeats(response) ?? []
                #expect(!named.isEmpty && Set(named).isSubset(of: Set(requests[index]!)), "\(response)")
                refusals.append((index, named))
            case 409:
                expectError(response, status: 409, code: "no_seats_available")
            default:
                Issue.record("client \(index): \(response)")
            }
        }
        // A refused seat is held by a winner (the seats never become free again in this test).
        for refusal in refusals {
            for seat in refusal.seats {
                #expect(won[seat] != nil && won[seat] != refusal.index, "client \(refusal.index) was refused \(seat), which nobody won")
            }
        }
        let statements = try Self.metric(server, "quorix_hold_statements_total") - statementsBefore
        let batched = try Self.metric(server, "quorix_hold_statement_holds_total") - holdsBefore
        #expect(statements > 0 && batched > statements, "\(batched) holds in \(statements) statements: no batch formed")

        let stored = try await sale.storedStatuses(id, row)
        for seat in row {
            #expect(stored[seat] == (won[seat] != nil ? "held" : "free"), "\(seat) is \(stored[seat] ?? "?")")
        }
        let doubles = try await server.sql("""
            SELECT seat_id FROM holds, unnest(seat_ids) AS seat_id
            WHERE event_id = \(id) AND status = 'active' GROUP BY 1 HAVING count(*) > 1
            """)
        #expect(doubles.isEmpty)
        #expect(try await sale.liveHoldCount(id) == Set(won.values).count)
        try await sale.expectConsistent(id)
    }
}
