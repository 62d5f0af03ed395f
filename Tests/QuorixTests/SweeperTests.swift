import Foundation
import Synchronization
import PG
import QuorixTestSupport
import Testing
@testable import Quorix

@Suite struct ExpiryQueueTests {
    @Test func earliestFirstRoundedUpAndKeptOncePerGranule() {
        var queue = ExpiryQueue(granularityMilliseconds: 50)
        for time: UInt64 in [1_230, 1_001, 1_049, 5_000, 1_000, 3_333] { queue.insert(time) }
        // 1,001 and 1,049 share the granule ending at 1,050; 1,000 is a granule of its own.
        #expect(queue.count == 5)
        #expect(queue.earliest == 1_000)
        queue.removeDue(now: 1_000)
        #expect(queue.earliest == 1_050)
        queue.removeDue(now: 3_349)
        #expect(queue.earliest == 3_350)
        queue.removeDue(now: 10_000)
        #expect(queue.earliest == nil && queue.count == 0)
        queue.insert(1_050)
        #expect(queue.earliest == 1_050, "a granule removed as due can come back")
    }
}

/// The sweeper releases expired holds with no request touching them, and several processes on
/// one database release each hold exactly once.
@Suite struct SweeperTests {
    /// `quorix_holds_expired_total` of a server.
    func expiredCount(_ server: ServerProcess) throws -> Int {
        let response = try server.slowRequest("GET", "/metrics")
        let text = String(decoding: response.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("quorix_holds_expired_total ") {
            return Int(Double(line.split(separator: " ")[1]) ?? -1)
        }
        return 0
    }

    @Test func anExpiredHoldIsReleasedWithoutAnyRequest() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let before = try expiredCount(sale.server)
        let hold = try sale.requireHold(id, seats: ["STALLS-H-1", "STALLS-H-2"], ttl: 1)
        // Watch the database only: nothing asks the API about this hold until it is released.
        let deadline = ContinuousClock.now + .seconds(5)
        var status = "active"
        while status != "expired", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            status = try #require(try await sale.server.sql("SELECT status FROM holds WHERE event_id = \(id) AND id = \(hold.id)").first)
                .string("status")
        }
        #expect(status == "expired")
        #expect(try await sale.storedStatuses(id, hold.seats) == ["STALLS-H-1": "free", "STALLS-H-2": "free"])
        let lag = try #require(try await sale.server.sql("""
            SELECT extract(epoch FROM released_at - expires_at)::float8 AS lag FROM holds WHERE event_id = \(id) AND id = \(hold.id)
            """).first).double("lag")
        #expect(lag >= 0 && lag < 1, "released \(lag) s after expiry")
        #expect(try expiredCount(sale.server) >= before + 1)
        let metrics = String(decoding: try sale.server.slowRequest("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("quorix_sweeper_lag_seconds_count"), "no sweeper lag histogram")
        // Released by the sweeper, it answers as expired.
        expectError(try sale.confirm(hold.token), status: 410, code: "hold_expired")
        expectError(try sale.release(hold.token), status: 410, code: "hold_expired")
        #expect(try sale.getHold(hold.token).json()["status"]?.catalogString == "expired")
        _ = try sale.requireHold(id, seats: hold.seats, customer: "next")
        try await sale.expectConsistent(id)
    }

    @Test func twoProcessesOnOneDatabaseReleaseEveryHoldExactlyOnce() async throws {
        let first = try await ServerProcess.start()
        let second = try await ServerProcess.start(database: first.databaseConninfo)
        let organizer = try first.createKey(role: "organizer", name: "sweep organizer")
        let client = try first.createKey(role: "client", name: "sweep client")
        let theatre = try first.uploadSample(SampleMaps.theatre, key: organizer)
        let viaFirst = CatalogServer.Fixture(
            server: first, organizer: organizer, otherOrganizer: organizer, client: client, otherClient: client,
            theatreID: theatre, stadiumID: theatre)
        let viaSecond = CatalogServer.Fixture(
            server: second, organizer: organizer, otherOrganizer: organizer, client: client, otherClient: client,
            theatreID: theatre, stadiumID: theatre)
        let id = try viaFirst.newEvent()
        let labels = try await viaFirst.labels(seatmapID: theatre)
        // 300 one-second holds, made through both processes by racing threads.
        let count = 300
        let made = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 12) { worker in
            for index in stride(from: worker, to: count, by: 12) {
                let fixture = index % 2 == 0 ? viaFirst : viaSecond
                if let response = try? fixture.hold(id, seats: [labels[index]], customer: "c\(index)", ttl: 1), response.status == 201 {
                    made.withLock { $0 += 1 }
                }
            }
        }
        #expect(made.withLock { $0 } == count)
        let deadline = ContinuousClock.now + .seconds(10)
        var active = count
        while active > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            active = try await first.sqlInt("SELECT count(*)::int AS n FROM holds WHERE event_id = \(id) AND status = 'active'")
        }
        #expect(active == 0)
        // Each process counts what it released: together, every hold once.
        let released = (try expiredCount(first), try expiredCount(second))
        #expect(released.0 + released.1 == count, "first released \(released.0), second \(released.1)")
        #expect(try await first.sqlInt("""
            SELECT count(*)::int AS n FROM holds WHERE event_id = \(id) AND (status <> 'expired' OR released_at IS NULL)
            """) == 0)
        #expect(try await first.sqlInt("SELECT count(*)::int AS n FROM event_seats WHERE event_id = \(id) AND status <> 'free'") == 0)
        try await viaFirst.expectConsistent(id)
    }
}
