import Loop
import PG
import QuorixTestSupport
import Testing

/// PGPool against a real cluster: limits, FIFO waiters, transactions, failure and recovery.
@Suite struct PGPoolTests {
    init() {
        TestLoop.start()
    }

    @Test @LoopActor
    func moreUsersThanConnectionsAllCompleteWithinTheSizeLimit() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 3, acquireTimeoutMilliseconds: 30_000))
        defer { pool.close() }
        let peakOpen = Recorder<Int>()
        let backends = Recorder<Int>()
        let completed = Recorder<Int>()
        let users = (0..<50).map { index in
            Task { @LoopActor in
                try await pool.withConnection { connection in
                    peakOpen.append(pool.openConnections)
                    let row = try await connection.query("""
                        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
                        """).first
                    backends.append(try row?.int("n") ?? -1)
                    try await connection.query("SELECT pg_sleep(0.002)")
                }
                completed.append(index)
            }
        }
        for user in users { try await user.value }
        #expect(completed.items.count == 50)
        #expect(peakOpen.items.max() == 3, "all three connections were used, never more")
        #expect(backends.items.allSatisfy { (1...3).contains($0) }, "backends seen by the database: \(backends.items)")
        #expect(pool.openConnections <= 3)
        #expect(pool.inUse == 0)
        #expect(pool.waiting == 0)
    }

    @Test @LoopActor
    func waitersAreServedInArrivalOrder() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 1, acquireTimeoutMilliseconds: 30_000))
        defer { pool.close() }
        let held = try await pool.acquire()
        let order = Recorder<Int>()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<10 {
            tasks.append(Task { @LoopActor in
                let connection = try await pool.acquire()
                order.append(index)
                try await connection.query("SELECT 1")
                pool.release(connection)
            })
            try await waitUntil("waiter \(index) is queued") { pool.waiting == index + 1 }
        }
        pool.release(held)
        for task in tasks { try await task.value }
        #expect(order.items == Array(0..<10))
        #expect(pool.openConnections == 1)
    }

    struct Boom: Error {}

    @Test @LoopActor
    func transactionCommitsOnSuccessAndRollsBackOnAThrownError() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 2))
        defer { pool.close() }
        _ = try await pool.withConnection { try await $0.execute("CREATE TABLE ledger (id int PRIMARY KEY, note text)") }

        let returned = try await pool.withTransaction { connection in
            try await connection.query("INSERT INTO ledger VALUES (1, 'kept')")
            return "done"
        }
        #expect(returned == "done")

        await #expect(throws: Boom.self) {
            try await pool.withTransaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (2, 'thrown away')")
                throw Boom()
            }
        }
        // A statement that fails inside the transaction rolls back what came before it too.
        await #expect {
            try await pool.withTransaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (3, 'thrown away too')")
                try await connection.query("INSERT INTO ledger VALUES (1, 'duplicate')")
            }
        } throws: { error in
            (error as? PGError)?.sqlState == "23505"
        }

        let ids = try await pool.query("SELECT id FROM ledger ORDER BY id").rows.map { try $0.int("id") }
        #expect(ids == [1])
        #expect(pool.inUse == 0)
        // Rolled-back connections went back clean: nothing is left open in a transaction.
        let open = try await pool.query("""
            SELECT count(*) AS n FROM pg_stat_activity
            WHERE datname = current_database() AND state LIKE 'idle in transaction%'
            """)
        #expect(try open.first?.int("n") == 0)
    }

    @Test @LoopActor
    func connectionLeftInATransactionIsNotLentAgain() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 1))
        defer { pool.close() }
        _ = try await pool.withConnection { try await $0.execute("CREATE TABLE notes (id int PRIMARY KEY)") }

        // Left in a failed transaction.
        let failedPID = try await pool.withConnection { connection in
            try await connection.execute("BEGIN")
            await #expect(throws: PGError.self) { try await connection.query("SELECT 1 / 0") }
            return connection.backendPID
        }
        let (pid, clean) = try await pool.withConnection { ($0.backendPID, $0.isIdleOutsideTransaction) }
        #expect(pid != failedPID, "the connection in a failed transaction was lent again")
        #expect(clean)
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)

        // Left in an open transaction with uncommitted work: that work never commits.
        let openPID = try await pool.withConnection { connection in
            try await connection.execute("BEGIN")
            try await connection.query("INSERT INTO notes VALUES (1)")
            return connection.backendPID
        }
        let next = try await pool.withConnection { connection in
            (connection.backendPID, try await connection.query("SELECT count(*) AS n FROM notes").first?.int("n"))
        }
        #expect(next.0 != openPID)
        #expect(next.1 == 0)
        #expect(pool.openConnections == 1)
    }

    @Test @LoopActor
    func acquireTimesOutWithPoolTimeoutWhenAllConnectionsAreHeld() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 1, acquireTimeoutMilliseconds: 300))
        defer { pool.close() }
        let held = try await pool.acquire()
        let started = ContinuousClock.now
        do {
            _ = try await pool.acquire()
            Issue.record("acquire succeeded although the only connection is held")
        } catch {
            #expect(error.kind == .poolTimeout)
            #expect(error.isUnavailable)
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(4), "timed out after \(elapsed)")
        #expect(pool.waiting == 0)
        pool.release(held)
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    @Test @LoopActor
    func missingDatabaseOrUnreachableServerFailsFastAsUnavailable() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let targets = [
            conninfo + " dbname=quorix_test_no_such_database",
            "host=/tmp/quorix-no-such-socket-dir-\(TestCluster.randomHex(bytes: 4)) port=5432 user=quorix dbname=quorix",
            "host=127.0.0.1 port=1 user=quorix dbname=quorix",
        ]
        for target in targets {
            let pool = PGPool(PGPool.Configuration(conninfo: target, size: 1, acquireTimeoutMilliseconds: 30_000))
            defer { pool.close() }
            let started = ContinuousClock.now
            // One opens the connection, the others queue behind it: all fail together.
            let outcomes = Recorder<PGError>()
            let users = (0..<4).map { _ in
                Task { @LoopActor in
                    do throws(PGError) {
                        try await pool.query("SELECT 1")
                        Issue.record("a query succeeded against \(target)")
                    } catch {
                        outcomes.append(error)
                    }
                }
            }
            for user in users { await user.value }
            let elapsed = ContinuousClock.now - started
            #expect(outcomes.items.count == 4)
            #expect(outcomes.items.allSatisfy { $0.kind == .unavailable && $0.isUnavailable }, "\(outcomes.items.map(\.debugDescription))")
            // Well under the 5 s connect timeout (the bound allows for a loaded machine).
            #expect(elapsed < .seconds(4), "\(target) took \(elapsed) to fail")
            #expect(pool.openConnections == 0)
            #expect(pool.waiting == 0)
        }
    }

    @Test @LoopActor
    func poolReconnectsAfterItsBackendsWereTerminated() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 2))
        defer { pool.close() }
        let users = (0..<2).map { _ in Task { @LoopActor in try await pool.query("SELECT pg_sleep(0.05)") } }
        for user in users { _ = try await user.value }
        #expect(pool.openConnections == 2)

        let admin = try await PGConnection.connect(conninfo)
        defer { admin.close() }
        let terminated = try await admin.query("""
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """)
        #expect(try terminated.first?.int("n") == 2)
        // The pool notices by itself that its idle connections died (their sockets close) and
        // forgets them, so no request is handed a dead connection later.
        try await waitUntil("the pool dropped its dead connections") { pool.openConnections == 0 }

        let row: PGResult
        do {
            row = try await pool.query("SELECT 1 AS one")
        } catch {
            Issue.record("the first query after the terminations failed: \(error.debugDescription)")
            throw error
        }
        #expect(try row.first?.int("one") == 1)
        #expect(try await pool.query("SELECT 2 AS two").first?.int("two") == 2)
    }
}
