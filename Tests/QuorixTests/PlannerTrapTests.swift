import PG
import Quorix
import QuorixTestSupport
import Testing

/// Plans made while `holds` looks empty must not scan it once it is full.
///
/// A session plans the seat-change trigger's hold lookup once, at its first use. When `holds`
/// had been analyzed while empty (a fresh database before its first sale), the plan made then
/// scanned the table, or walked the token index over every hold of the event, and the session
/// kept it while the sale filled the table: 10,000 holds read 84 million rows (migration 0007).
@Suite struct PlannerTrapTests {
    @Test(.timeLimit(.minutes(1)))
    func theSeatTriggerFindsHoldsByKeyAfterTheTableWasAnalyzedEmpty() async throws {
        let server = try await ServerProcess.start()
        let organizer = try server.createKey(role: "organizer", name: "trap organizer")
        let theatre = try server.uploadSample(SampleMaps.theatre, key: organizer)
        let fixture = CatalogServer.Fixture(
            server: server, organizer: organizer, otherOrganizer: organizer, client: organizer, otherClient: organizer,
            theatreID: theatre, stadiumID: theatre)
        let id = try fixture.newEvent(holdTTL: 600)
        let seats = try await server.sql("SELECT seat_id FROM event_seats WHERE event_id = \(id) ORDER BY seat_id LIMIT 40")
            .rows.map { try $0.int("seat_id") }
        #expect(seats.count == 40)

        let session = try await TestDatabase.connect(server.databaseConninfo)
        // The server's own session setting, so the trigger's plan is the generic one it would get.
        try await TestDatabase.execute("ANALYZE holds; SET plan_cache_mode = force_generic_plan", on: session)
        func hold(_ seat: Int) -> String {
            """
            WITH h AS (INSERT INTO holds (event_id, token_hash, customer, seat_ids, expires_at, max_expires_at)
                       VALUES (\(id), decode(md5(random()::text), 'hex'), 'trap', '{\(seat)}', now() + interval '1 hour', now() + interval '1 hour')
                       RETURNING id)
            UPDATE event_seats SET status = 'held', hold_id = (SELECT id FROM h), version = nextval('seat_change_version')
            WHERE event_id = \(id) AND seat_id = \(seat);
            """
        }
        var script = "BEGIN;" + hold(seats[0])  // the trigger's first use: its plan is made with the table empty
        script += """
            INSERT INTO holds (event_id, token_hash, customer, seat_ids, expires_at, max_expires_at)
            SELECT \(id), decode(md5(g::text || random()::text), 'hex'), 'filler', '{}', now() + interval '1 hour', now() + interval '1 hour'
            FROM generate_series(1, 5000) g;
            """
        for seat in seats.dropFirst() { script += hold(seat) }
        script += """
            SELECT seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) AS idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'holds';
            """
        let results: [PGResult]
        do {
            results = try await TestDatabase.execute(script, on: session)
            _ = try await TestDatabase.execute("ROLLBACK", on: session)
        } catch {
            _ = try? await TestDatabase.execute("ROLLBACK", on: session)
            await TestDatabase.close(session)
            throw error
        }
        await TestDatabase.close(session)
        let reads = try #require(results.last?.first)
        // 39 lookups by key after the filler; a scan would read 5,000 rows for each.
        let rowsRead = try reads.int("seq_tup_read") + reads.int("idx_tup_fetch")
        let scans = try reads.int("seq_scan")
        #expect(rowsRead < 500, "holds rows read: \(rowsRead), sequential scans: \(scans)")
    }
}
