public import Loop

/// A handful of connections shared by every request, with FIFO waiters.
///
/// PostgreSQL, not the pool, is the limit: more connections than a few per core only add
/// latency, so requests queue here. When the database is unreachable, acquiring fails at once
/// with `.unavailable` (the API answers 503) and the next request tries to connect again, so the
/// server recovers by itself when the database is back.
@LoopActor
public final class PGPool {
    public struct Configuration: Sendable {
        public var conninfo: String
        public var size: Int
        public var acquireTimeoutMilliseconds: UInt64
        public var connectTimeoutMilliseconds: UInt64

        public init(conninfo: String, size: Int = 8, acquireTimeoutMilliseconds: UInt64 = 5_000, connectTimeoutMilliseconds: UInt64 = 5_000) {
            self.conninfo = conninfo
            self.size = size
            self.acquireTimeoutMilliseconds = acquireTimeoutMilliseconds
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        }
    }

    private struct Waiter {
        let id: UInt64
        let deadline: UInt64
        let first: Bool
        let continuation: CheckedContinuation<Result<PGConnection, PGError>, Never>
    }

    public let configuration: Configuration
    private var idle: [PGConnection] = []
    /// Connections open or being opened.
    private var total = 0
    private var waiters: [Waiter] = []
    private var nextWaiterID: UInt64 = 0
    private var timeoutTimer: LoopTimer?
    private var closed = false
    /// Statements run after every new connection is established (session settings).
    public var sessionSetup: [String] = []

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Connections lent out now.
    public var inUse: Int { total - idle.count }
    public var openConnections: Int { total }
    public var waiting: Int { waiters.count }

    public func withConnection<T>(_ body: (PGConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back and is rethrown.
    public func withTransaction<T>(_ body: (PGConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.execute("BEGIN")
            do {
                let value = try await body(connection)
                try await connection.execute("COMMIT")
                return value
            } catch {
                if !connection.isBroken { _ = try? await connection.execute("ROLLBACK") }
                throw error
            }
        }
    }

    @discardableResult
    public func query(_ query: PGQuery) async throws(PGError) -> PGResult {
        let connection = try await acquire()
        defer { release(connection) }
        return try await connection.query(query)
    }

    /// A connection, at once when one is idle, else the oldest waiter's next. `first` waiters go
    /// before every other kind (among themselves, oldest first): work whose outcome lets the
    /// others be answered without a statement (a hold deciding seats that a crowd's reads and
    /// refusals then know about) should not queue behind them.
    public func acquire(first: Bool = false) async throws(PGError) -> PGConnection {
        guard !closed else { throw PGError(kind: .unavailable, message: "the pool is closed") }
        while let connection = idle.popLast() {
            if !connection.isBroken { return connection }
            total -= 1
        }
        if total < configuration.size {
            // Reserve the slot before the first suspension: a call into an async function may
            // suspend before its body runs (an executor hop), and other acquirers run meanwhile.
            total += 1
            return try await openConnection()
        }
        let id = nextWaiterID
        nextWaiterID += 1
        let deadline = EventLoop.shared.nowMilliseconds + configuration.acquireTimeoutMilliseconds
        let result = await withCheckedContinuation { continuation in
            let waiter = Waiter(id: id, deadline: deadline, first: first, continuation: continuation)
            if first, let later = waiters.firstIndex(where: { !$0.first }) {
                waiters.insert(waiter, at: later)
            } else {
                waiters.append(waiter)
            }
            armTimeouts()
        }
        return try result.get()
    }

    public func release(_ connection: PGConnection) {
        // A connection left inside a transaction is not safe to lend again.
        if connection.isBroken || !connection.isIdleOutsideTransaction || closed {
            connection.close()
            total -= 1
            if !waiters.isEmpty && !closed { openForFirstWaiter() }
            return
        }
        if !waiters.isEmpty {
            waiters.removeFirst().continuation.resume(returning: .success(connection))
        } else {
            idle.append(connection)
        }
    }

    /// Opens a connection for a slot the caller already counted in `total`.
    private func openConnection() async throws(PGError) -> PGConnection {
        do {
            let connection = try await PGConnection.connect(configuration.conninfo, timeoutMilliseconds: configuration.connectTimeoutMilliseconds)
            connection.onBroken = { [weak self, weak connection] _ in
                guard let self, let connection else { return }
                self.discardIdle(connection)
            }
            for statement in sessionSetup {
                try await connection.execute(statement)
            }
            return connection
        } catch {
            total -= 1
            // The database is unreachable: those queued behind us would fail the same way.
            failAllWaiters(error)
            throw error
        }
    }

    private func openForFirstWaiter() {
        guard !waiters.isEmpty, total < configuration.size else { return }
        let waiter = waiters.removeFirst()
        total += 1
        EventLoop.spawn { [self] in
            do throws(PGError) {
                let connection = try await openConnection()
                waiter.continuation.resume(returning: .success(connection))
            } catch {
                waiter.continuation.resume(returning: .failure(error))
            }
        }
    }

    /// An idle connection whose server went away (restart, terminate) leaves the pool at once.
    private func discardIdle(_ connection: PGConnection) {
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
            total -= 1
        }
    }

    private func failAllWaiters(_ error: PGError) {
        let failed = waiters
        waiters = []
        for waiter in failed { waiter.continuation.resume(returning: .failure(error)) }
    }

    private func armTimeouts() {
        guard timeoutTimer == nil else { return }
        let timer = LoopTimer()
        timeoutTimer = timer
        timer.start(after: 100, repeat: 100) { [weak self] in
            guard let self else { return }
            let now = EventLoop.shared.nowMilliseconds
            let expired = self.waiters.filter { $0.deadline <= now }
            self.waiters.removeAll { $0.deadline <= now }
            for waiter in expired {
                waiter.continuation.resume(returning: .failure(PGError(kind: .poolTimeout, message: "waited \(self.configuration.acquireTimeoutMilliseconds) ms for a connection")))
            }
            if self.waiters.isEmpty {
                self.timeoutTimer?.close()
                self.timeoutTimer = nil
            }
        }
    }

    /// Closes idle connections now and the others as they come back; fails waiters.
    public func close() {
        closed = true
        for connection in idle { connection.close() }
        total -= idle.count
        idle = []
        failAllWaiters(PGError(kind: .unavailable, message: "the pool is closed"))
        timeoutTimer?.close()
        timeoutTimer = nil
    }
}
