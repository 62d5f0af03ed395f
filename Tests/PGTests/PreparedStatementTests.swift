import Loop
import PG
import QuorixTestSupport
import Testing

/// Each statement text is prepared once per connection and then executed by name.
@Suite struct PreparedStatementTests {
    init() {
        TestLoop.start()
    }

    @LoopActor
    func freshConnection() async throws -> PGConnection {
        try await PGConnection.connect(try await TestCluster.shared.createDatabase())
    }

    /// Statements prepared on this connection, as the server sees them.
    @LoopActor
    func serverSidePrepared(_ connection: PGConnection) async throws -> Int {
        try #require(try await connection.query("SELECT count(*)::int AS n FROM pg_prepared_statements").first).int("n")
    }

    @Test @LoopActor
    func aTextIsPreparedOnceAndRunsWithNewValuesEachTime() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        for value in [1, 2, 3] {
            let row = try #require(try await connection.query("SELECT \(value)::int * 10 AS n").first)
            #expect(try row.int("n") == value * 10)
        }
        #expect(connection.preparedStatementCount == 1)
        // The count query itself is the second text.
        #expect(try await serverSidePrepared(connection) == 2)
        #expect(connection.preparedStatementCount == 2)
    }

    @Test @LoopActor
    func aFailingTextIsNotKeptAndTheConnectionGoesOn() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        do {
            try await connection.query("SELEC \(1)::int")
            Issue.record("a syntax error did not throw")
        } catch {
            #expect(error.sqlState == "42601")
        }
        #expect(connection.preparedStatementCount == 0)
        // A run-time error of a prepared statement leaves it prepared and usable.
        let zero = 0
        do {
            try await connection.query("SELECT 1 / \(zero)::int AS n")
            Issue.record("division by zero did not throw")
        } catch {
            #expect(error.sqlState == "22012")
        }
        #expect(try #require(try await connection.query("SELECT 1 / \(1)::int AS n").first).int("n") == 1)
        #expect(connection.preparedStatementCount == 1)
    }

    @Test @LoopActor
    func theCacheIsBoundedAndTextsPastItStillRun() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        let limit = 256
        for number in 0..<(limit + 20) {
            let row = try #require(try await connection.query(PGQuery(unsafeSQL: "SELECT \(number) AS n")).first)
            #expect(try row.int("n") == number)
        }
        #expect(connection.preparedStatementCount == limit)
        #expect(try await serverSidePrepared(connection) == limit)
    }

    @Test @LoopActor
    func aPreparedStatementFollowsSchemaChanges() async throws {
        let connection = try await freshConnection()
        defer { connection.close() }
        try await connection.execute("CREATE TABLE seats_demo (id int PRIMARY KEY, label text)")
        let query: PGQuery = "SELECT label FROM seats_demo WHERE id = \(1)"
        try await connection.execute("INSERT INTO seats_demo VALUES (1, 'A-1')")
        #expect(try #require(try await connection.query(query).first).string("label") == "A-1")
        // An index and new statistics invalidate the cached plan; the statement keeps working.
        try await connection.execute("CREATE INDEX seats_demo_label ON seats_demo (label); ANALYZE seats_demo; ALTER TABLE seats_demo ADD COLUMN note text")
        #expect(try #require(try await connection.query(query).first).string("label") == "A-1")
    }
}
