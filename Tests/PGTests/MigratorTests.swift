import Loop
import PG
import QuorixTestSupport
import Testing

/// The Migrator against real databases, with the project's own Migrations/*.sql.
@Suite struct MigratorTests {
    init() {
        TestLoop.start()
    }

    @LoopActor
    func migrations() throws -> [MigrationFile] {
        try TestMigrations.load()
    }

    @LoopActor
    func recorded(on connection: PGConnection) async throws -> [(version: Int, name: String, checksum: String)] {
        try await connection.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version").rows.map {
            (try $0.int("version"), try $0.string("name"), try $0.string("checksum"))
        }
    }

    @Test @LoopActor
    func appliesEveryMigrationOnAFreshDatabaseAndRecordsVersionsAndChecksums() async throws {
        let files = try migrations()
        let connection = try await PGConnection.connect(try await TestCluster.shared.createDatabase())
        defer { connection.close() }
        let progress = Recorder<Int>()
        let applied = try await Migrator(files: files).run(on: connection) { progress.append($0.version) }
        #expect(applied.map(\.version) == files.map(\.version))
        #expect(progress.items == files.map(\.version))

        let rows = try await recorded(on: connection)
        #expect(rows.map(\.version) == files.map(\.version))
        #expect(rows.map(\.name) == files.map(\.name))
        #expect(rows.map(\.checksum) == files.map { MigrationFile.checksum(of: $0.sql) })
        // The schema is there.
        for table in ["api_keys", "events", "event_seats", "holds", "bookings", "seat_bookings", "webhook_outbox"] {
            let exists = try await connection.query("SELECT to_regclass(\(table)) IS NOT NULL AS present").first?.bool("present")
            #expect(exists == true, "table \(table) is missing")
        }
    }

    @Test @LoopActor
    func runningAgainAppliesNothing() async throws {
        let files = try migrations()
        let connection = try await PGConnection.connect(try await TestCluster.shared.createDatabase())
        defer { connection.close() }
        try await Migrator(files: files).run(on: connection)
        let before = try await recorded(on: connection)
        let second = try await Migrator(files: files).run(on: connection) { file in
            Issue.record("migration \(file.version) was applied a second time")
        }
        #expect(second.isEmpty)
        let after = try await recorded(on: connection)
        #expect(after.map(\.version) == before.map(\.version))
        #expect(after.map(\.checksum) == before.map(\.checksum))
    }

    @Test @LoopActor
    func aChangedAppliedFileIsAnErrorNamingTheFileAndReleasesTheLock() async throws {
        let files = try migrations()
        let conninfo = try await TestCluster.shared.createDatabase()
        let connection = try await PGConnection.connect(conninfo)
        defer { connection.close() }
        try await Migrator(files: files).run(on: connection)

        let first = files[0]
        var changed = files
        changed[0] = MigrationFile(version: first.version, name: first.name, sql: first.sql + "\n-- edited after it was applied\n")
        let fileName = String(repeating: "0", count: max(0, 4 - String(first.version).count)) + "\(first.version)_\(first.name).sql"
        do {
            try await Migrator(files: changed).run(on: connection)
            Issue.record("a changed migration was accepted")
        } catch let error as MigrationError {
            #expect(error.description.contains(fileName), "\(error.description)")
        }
        #expect(!connection.isBroken)
        #expect(connection.isIdleOutsideTransaction)

        // The advisory lock was released: another session migrates at once (bounded by lock_timeout).
        let other = try await PGConnection.connect(conninfo)
        defer { other.close() }
        try await other.execute("SET lock_timeout = '5s'")
        #expect(try await Migrator(files: files).run(on: other).isEmpty)
    }

    @Test @LoopActor
    func twoMigratorsRacingOnOneDatabaseApplyEachMigrationExactlyOnce() async throws {
        // The project's migrations plus one whose effect shows how often it ran.
        let files = try migrations() + [
            MigrationFile(version: 9_001, name: "race_marker", sql: """
                CREATE TABLE IF NOT EXISTS race_marker (applied_by int NOT NULL);
                INSERT INTO race_marker VALUES (pg_backend_pid());
                """)
        ]
        let conninfo = try await TestCluster.shared.createDatabase()
        let first = try await PGConnection.connect(conninfo)
        let second = try await PGConnection.connect(conninfo)
        defer {
            first.close()
            second.close()
        }
        for connection in [first, second] { try await connection.execute("SET lock_timeout = '30s'") }

        let racers = [first, second].map { connection in
            Task { @LoopActor in try await Migrator(files: files).run(on: connection).map(\.version) }
        }
        var outcomes: [[Int]] = []
        for racer in racers { outcomes.append(try await racer.value) }

        #expect(outcomes[0].count + outcomes[1].count == files.count, "\(outcomes)")
        #expect(Set(outcomes[0]).isDisjoint(with: outcomes[1]))
        #expect(Set(outcomes[0] + outcomes[1]) == Set(files.map(\.version)))
        let rows = try await recorded(on: first)
        #expect(rows.map(\.version) == files.map(\.version))
        #expect(try await first.query("SELECT count(*) AS n FROM race_marker").first?.int("n") == 1)
    }
}
