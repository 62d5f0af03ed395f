import Loop
import PG
import QuorixTestSupport
import Testing

/// Rules the schema itself enforces, whatever the code above it does.
@Suite struct SchemaInvariantTests {
    init() {
        TestLoop.start()
    }

    @LoopActor
    func migratedDatabase() async throws -> PGConnection {
        let connection = try await PGConnection.connect(try await TestCluster.shared.createDatabase())
        try await Migrator(files: try TestMigrations.load()).run(on: connection)
        return connection
    }

    @Test @LoopActor
    func aSeatCannotHaveTwoActiveBookings() async throws {
        let connection = try await migratedDatabase()
        defer { connection.close() }
        try await connection.query("""
            INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents) VALUES (\(1), \(100), \(7), \(2500))
            """)
        do {
            try await connection.query("""
                INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents) VALUES (\(1), \(101), \(7), \(2500))
                """)
            Issue.record("a seat was booked twice")
        } catch {
            #expect(error.sqlState == "23505")
            #expect(error.constraint == "seat_bookings_one_active_per_seat")
        }
        // The same seat at another event is another seat.
        try await connection.query("""
            INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents) VALUES (\(2), \(200), \(7), \(2500))
            """)
    }

    @Test @LoopActor
    func aCancelledBookingFreesTheSeatForAnActiveOne() async throws {
        let connection = try await migratedDatabase()
        defer { connection.close() }
        try await connection.execute("""
            INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents, cancelled_at) VALUES (1, 100, 7, 2500, now());
            INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents, cancelled_at) VALUES (1, 101, 7, 2500, now());
            INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents) VALUES (1, 102, 7, 2500);
            """)
        let rows = try await connection.query("""
            SELECT count(*) AS total, count(*) FILTER (WHERE cancelled_at IS NULL) AS active
            FROM seat_bookings WHERE event_id = 1 AND seat_id = 7
            """)
        #expect(try rows.first?.int("total") == 3)
        #expect(try rows.first?.int("active") == 1)
        // Cancelling the active one and booking again works; a second active one still does not.
        try await connection.execute("UPDATE seat_bookings SET cancelled_at = now() WHERE booking_id = 102")
        try await connection.execute("INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents) VALUES (1, 103, 7, 2500)")
        await #expect {
            try await connection.execute("UPDATE seat_bookings SET cancelled_at = NULL WHERE booking_id = 102")
        } throws: { error in
            (error as? PGError)?.constraint == "seat_bookings_one_active_per_seat"
        }
    }
}
