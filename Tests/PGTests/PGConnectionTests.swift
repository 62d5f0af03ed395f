import Loop
import PG
import QuorixTestSupport
import Testing

/// A real PGConnection against the test cluster, each test on a database of its own.
@Suite struct PGConnectionTests {
    init() {
        TestLoop.start()
    }

    @LoopActor
    func freshConnection() async throws -> PGConnection {
        let conninfo = try await TestCluster.shared.createDatabase()
        return try await PGConnection.connect(conninfo)
    }

    @Test @LoopActor
    func connectsToAFreshDatabaseAndReadsTypedRows() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        let number = 42
        let text = "hello"
        let result = try await connection.query("""
            SELECT \(number)::int AS n, \(text) AS s, \(true)::boolean AS yes, \(false)::boolean AS no,
                   \(7)::int AS present, NULL::int AS missing, current_database() AS db
            """)
        #expect(result.count == 1)
        #expect(result.columns == ["n", "s", "yes", "no", "present", "missing", "db"])
        let row = try #require(result.first)
        #expect(try row.int("n") == 42)
        #expect(try row.string("s") == "hello")
        #expect(try row.bool("yes") == true)
        #expect(try row.bool("no") == false)
        #expect(try row.optionalInt("present") == 7)
        #expect(try row.optionalInt("missing") == nil)
        #expect(try row.string("db").hasPrefix("quorix_test_"))
    }

    @Test @LoopActor
    func nullsAreNilAndTypedAccessorsNameTheColumn() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        let nothing: String? = nil
        let row = try #require(try await connection.query("SELECT \(nothing)::text AS note, 'x'::text AS word").first)
        #expect(try row.optionalString("note") == nil)
        #expect(try row.value("note") == nil)
        do {
            _ = try row.string("note")
            Issue.record("reading NULL as a string did not throw")
        } catch {
            #expect(error.kind == .decoding)
            #expect(error.message.contains("note"))
        }
        do {
            _ = try row.int("word")
            Issue.record("reading 'x' as an integer did not throw")
        } catch {
            #expect(error.kind == .decoding)
            #expect(error.message.contains("word"))
        }
        do {
            _ = try row.string("no_such_column")
            Issue.record("reading a missing column did not throw")
        } catch {
            #expect(error.message.contains("no_such_column"))
        }
    }

    @Test @LoopActor
    func executeRunsSeveralStatementsInOneString() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        let results = try await connection.execute("""
            CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
            INSERT INTO items VALUES (1, 'one'), (2, 'two');
            INSERT INTO items VALUES (3, 'three');
            SELECT count(*) AS n FROM items;
            """)
        #expect(results.count == 4)
        #expect(results[1].affectedRows == 2)
        #expect(results[2].affectedRows == 1)
        #expect(try results[3].first?.int("n") == 3)
    }

    @Test @LoopActor
    func uniqueViolationCarriesSQLStateAndConstraintName() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        try await connection.execute("CREATE TABLE people (email text CONSTRAINT people_email_unique UNIQUE)")
        try await connection.query("INSERT INTO people VALUES (\("a@example.com"))")
        do {
            try await connection.query("INSERT INTO people VALUES (\("a@example.com"))")
            Issue.record("a duplicate insert succeeded")
        } catch {
            #expect(error.kind == .server)
            #expect(error.sqlState == "23505")
            #expect(error.isUniqueViolation)
            #expect(error.constraint == "people_email_unique")
            #expect(!error.isUnavailable)
        }
        // The connection is still usable after a statement failed.
        #expect(try await connection.query("SELECT count(*) AS n FROM people").first?.int("n") == 1)
    }

    @Test @LoopActor
    func syntaxErrorIsAServerErrorAndNotUnavailable() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        do {
            try await connection.query("SELEC 1")
            Issue.record("a syntax error was accepted")
        } catch {
            #expect(error.kind == .server)
            #expect(error.sqlState == "42601")
            #expect(!error.isUnavailable)
            #expect(!connection.isBroken)
        }
        #expect(try await connection.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    @Test @LoopActor
    func hostileAndUnusualTextRoundTripsThroughBindsAsData() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        try await connection.execute("CREATE TABLE x (id serial PRIMARY KEY, value text)")
        let values = [
            "'; DROP TABLE x; --", "it's", #"back\slash \\ and \n"#, #""double" quotes"#,
            "emoji 🎫 ünïcödé 中文 \u{200B}", "", "line\nbreak\ttab\r", "$1 $2 ?", "{\"a\",\"b\"}",
        ]
        for value in values {
            let row = try #require(try await connection.query("INSERT INTO x (value) VALUES (\(value)) RETURNING value").first)
            #expect(try row.string("value") == value)
            let echoed = try #require(try await connection.query("SELECT \(value)::text AS v, length(\(value)) AS n").first)
            #expect(try echoed.string("v") == value)
            #expect(try echoed.int("n") == value.count)
        }
        // The table survived, with every value stored as sent.
        let stored = try await connection.query("SELECT value FROM x ORDER BY id").rows.map { try $0.string("value") }
        #expect(stored == values)
        let found = try await connection.query("SELECT count(*) AS n FROM x WHERE value = \("'; DROP TABLE x; --")")
        #expect(try found.first?.int("n") == 1)
    }

    @Test @LoopActor
    func arraysBindAsAnyOfAnArrayParameter() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        try await connection.execute("""
            CREATE TABLE seats (id int PRIMARY KEY, label text NOT NULL);
            INSERT INTO seats VALUES (1, 'A-1'), (2, 'A-2'), (3, 'B "1"'), (4, 'C\\,1'), (5, 'D{1}');
            """)
        let labels = ["A-2", #"B "1""#, #"C\,1"#, "D{1}", "nope"]
        let byLabel = try await connection.query("SELECT id FROM seats WHERE label = ANY(\(labels)) ORDER BY id")
        #expect(try byLabel.rows.map { try $0.int("id") } == [2, 3, 4, 5])
        let ids = [1, 3, 99]
        let byID = try await connection.query("SELECT label FROM seats WHERE id = ANY(\(ids)) ORDER BY id")
        #expect(try byID.rows.map { try $0.string("label") } == ["A-1", #"B "1""#])
        let none = try await connection.query("SELECT id FROM seats WHERE id = ANY(\([Int]()))")
        #expect(none.isEmpty)
    }

    @Test @LoopActor
    func bytesRoundTripThroughBytea() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        try await connection.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)")
        let bytes = PGBytes((0...255).map { UInt8($0) } + [0, 0, 255])
        try await connection.query("INSERT INTO blobs VALUES (1, \(bytes))")
        let row = try #require(try await connection.query("SELECT data, length(data) AS n FROM blobs WHERE data = \(bytes)").first)
        #expect(try row.int("n") == 259)
        #expect(try row.string("data") == bytes.pgText)
        #expect(try await connection.query("SELECT 1 FROM blobs WHERE data = \(PGBytes([1, 2, 3]))").isEmpty)
    }

    @Test @LoopActor
    func connectMovesOnToTheNextHostWhenOneRefuses() async throws {
        // libpq tries each host in turn (as it does for "localhost" = ::1 and 127.0.0.1); a refused
        // first address must not fail the connection.
        let conninfo = try await TestCluster.shared.createDatabase()
        let socketDirectory = try #require(conninfo.split(separator: " ").first { $0.hasPrefix("host=") }?.dropFirst(5))
        let port = try #require(conninfo.split(separator: " ").first { $0.hasPrefix("port=") }?.dropFirst(5))
        // Stalling on the refused address would end in the 5 s connect timeout, an error.
        let connection = try await PGConnection.connect(conninfo + " host=127.0.0.1,\(socketDirectory) port=1,\(port)")
        defer { connection.close() }
        #expect(try await connection.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    @Test @LoopActor
    func refusedConnectionSaysWhy() async throws {
        do {
            _ = try await PGConnection.connect("host=127.0.0.1 port=1 user=quorix dbname=quorix")
            Issue.record("connecting to port 1 succeeded")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(error.message.lowercased().contains("refused"), "\(error.message)")
        }
    }

    @Test @LoopActor
    func listeningConnectionReceivesNotificationsFromAnother() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let listener = try await PGConnection.connect(conninfo)
        let notifier = try await PGConnection.connect(conninfo)
        defer {
            listener.close()
            notifier.close()
        }
        let received = Recorder<PGNotification>()
        listener.onNotification = { received.append($0) }
        try await listener.execute("LISTEN seat_changes")
        try await notifier.query("SELECT pg_notify('seat_changes', \("event 7: 'ORCH-A-1' 🎫"))")
        try await notifier.execute("NOTIFY seat_changes, 'second'")
        try await notifier.execute("NOTIFY other_channel, 'not for us'")

        try await waitUntil("two notifications arrived") { received.items.count >= 2 }
        #expect(received.items.map(\.channel) == ["seat_changes", "seat_changes"])
        #expect(received.items.map(\.payload) == ["event 7: 'ORCH-A-1' 🎫", "second"])
        #expect(received.items.first?.backendPID == notifier.backendPID)
    }
}

/// Collects values on the loop (notification callbacks, arrival order).
@LoopActor
final class Recorder<T> {
    private(set) var items: [T] = []
    func append(_ item: T) { items.append(item) }
}

/// Polls `condition` on the loop until it holds; fails after `timeout`.
@LoopActor
func waitUntil(
    _ what: String, timeout: Duration = .seconds(5), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        if ContinuousClock.now >= deadline {
            Issue.record("timed out after \(timeout) waiting until \(what)", sourceLocation: sourceLocation)
            throw SupportError("timed out waiting until \(what)")
        }
        await EventLoop.sleep(milliseconds: 10)
    }
}
