internal import CLibPQ
public import Loop
#if canImport(Glibc)
import Glibc
#endif

/// A notification received on a connection that ran `LISTEN`.
public struct PGNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    public let backendPID: Int32
}

/// One libpq connection in non-blocking mode, driven by a `uv_poll_t` on its socket.
///
/// One statement (or one multi-statement string) runs at a time; the pool guarantees it. The
/// socket is watched for readability whenever the connection is open, so notifications and a
/// server that went away are noticed while idle, and for writability only while `PQflush` has
/// bytes left to send.
@LoopActor
public final class PGConnection {
    private var connection: OpaquePointer?
    /// Statements (or statement strings) sent by every connection of the process: the database
    /// work per request, as the benchmarks and `/metrics` report it.
    public private(set) static var statementsSent = 0
    /// False for a connection whose statements are not requests' work (the seat listener's
    /// pauses), so `statementsSent` stays the database work per request.
    public var countsStatements = true
    /// Statements prepared on this connection, by SQL text. Planning the hold statement costs
    /// more than running it (2.3 ms against 0.9 ms here), so each text is parsed and planned once
    /// per connection; PostgreSQL re-plans by itself when the schema changes.
    private var preparedNames: [String: String] = [:]
    /// Texts past this many run unprepared (SQL built at run time must not grow the cache).
    static let preparedLimit = 256
    private var watcher: FDWatcher?
    private var flushing = false
    private var connectWaiter: CheckedContinuation<Result<Void, PGError>, Never>?
    /// Until `PQconnectPoll` says OK, socket events only wake the connecting task.
    private var connecting = true
    private var queryWaiter: CheckedContinuation<Result<[PGResult], PGError>, Never>?
    private var results: [PGResult] = []
    private var firstError: PGError?
    public private(set) var isBroken = false
    /// Notifications from `LISTEN`; delivered on the loop.
    public var onNotification: ((PGNotification) -> Void)?
    /// Called once when the connection breaks (server gone, socket error).
    public var onBroken: ((PGError) -> Void)?

    private init() {}

    /// Connects without blocking the loop (`PQconnectStart` / `PQconnectPoll`).
    /// Give `host` as a socket directory or an IP address: a host name would be resolved by
    /// libpq synchronously.
    public static func connect(_ conninfo: String, timeoutMilliseconds: UInt64 = 5_000) async throws(PGError) -> PGConnection {
        let connection = PGConnection()
        try await connection.open(conninfo, timeoutMilliseconds: timeoutMilliseconds)
        return connection
    }

    private func open(_ conninfo: String, timeoutMilliseconds: UInt64) async throws(PGError) {
        guard let connection = PQconnectStart(conninfo) else {
            throw PGError(kind: .unavailable, message: "PQconnectStart: out of memory")
        }
        self.connection = connection
        if PQstatus(connection) == CONNECTION_BAD {
            let message = lastErrorMessage
            close()
            throw PGError(kind: .unavailable, message: message)
        }
        let deadline = LoopTimer()
        deadline.start(after: timeoutMilliseconds) { [weak self] in
            self?.resumeConnectWaiter(.failure(PGError(kind: .unavailable, message: "connecting timed out after \(timeoutMilliseconds) ms")))
        }
        defer { deadline.close() }
        var polling = PGRES_POLLING_WRITING
        while polling != PGRES_POLLING_OK {
            if polling == PGRES_POLLING_FAILED {
                let message = lastErrorMessage
                close()
                throw PGError(kind: .unavailable, message: message)
            }
            let wait = await waitForConnectStep(writable: polling == PGRES_POLLING_WRITING)
            if case .failure(let error) = wait {
                close()
                throw error
            }
            polling = PQconnectPoll(connection)
        }
        PQsetnonblocking(connection, 1)
        // Server notices (NOTICE: relation already exists…) would go to stderr unstructured.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        connecting = false
        watch()
    }

    private func waitForConnectStep(writable: Bool) async -> Result<Void, PGError> {
        guard let connection else { return .failure(PGError(kind: .unavailable, message: "connection closed")) }
        let socket = PQsocket(connection)
        // libpq may move to another socket while connecting (another address of the host).
        if watcher?.fileDescriptor != socket {
            watcher?.close()
            watcher = nil
            do {
                watcher = try FDWatcher(fileDescriptor: socket) { [weak self] event in self?.socketEvent(event) }
            } catch {
                return .failure(PGError(kind: .unavailable, message: "cannot watch the database socket: \(error)"))
            }
        }
        watcher?.watch(readable: !writable, writable: writable)
        return await withCheckedContinuation { connectWaiter = $0 }
    }

    private func resumeConnectWaiter(_ result: Result<Void, PGError>) {
        let waiter = connectWaiter
        connectWaiter = nil
        waiter?.resume(returning: result)
    }

    /// Runs one parameterized statement and returns its result.
    @discardableResult
    public func query(_ query: PGQuery) async throws(PGError) -> PGResult {
        // Parameters travel as C strings: a NUL would silently cut the value short.
        if query.binds.contains(where: { $0?.utf8.contains(0) == true }) {
            throw PGError(
                kind: .server, message: "a parameter contains a NUL character (\\u0000), which text cannot store",
                sqlState: "22021")
        }
        let name = try await preparedName(for: query)
        let results = try await send { connection in
            let count = Int32(query.binds.count)
            return withCStrings(query.binds) { values in
                if let name {
                    PQsendQueryPrepared(connection, name, count, values, nil, nil, 0)
                } else {
                    PQsendQueryParams(connection, query.sql, count, nil, values, nil, nil, 0)
                }
            }
        }
        guard let last = results.last else { throw PGError(kind: .decoding, message: "the statement returned no result") }
        return last
    }

    /// The name `query`'s text is prepared under on this connection (preparing it first, one round
    /// trip, the first time), or nil once the cache is full.
    private func preparedName(for query: PGQuery) async throws(PGError) -> String? {
        if let name = preparedNames[query.sql] { return name }
        guard preparedNames.count < Self.preparedLimit else { return nil }
        let name = "qx\(preparedNames.count)"
        let count = Int32(query.binds.count)
        _ = try await send { connection in PQsendPrepare(connection, name, query.sql, count, nil) }
        preparedNames[query.sql] = name
        return name
    }

    /// Statements this connection has prepared (tests check the cache's bound).
    public var preparedStatementCount: Int { preparedNames.count }

    /// Runs a string of statements without parameters (migrations, `BEGIN`, `LISTEN x`).
    @discardableResult
    public func execute(_ sql: String) async throws(PGError) -> [PGResult] {
        try await send { connection in PQsendQuery(connection, sql) }
    }

    private func send(_ start: (OpaquePointer) -> Int32) async throws(PGError) -> [PGResult] {
        guard !isBroken, let connection else { throw PGError(kind: .unavailable, message: "the connection is closed") }
        precondition(queryWaiter == nil, "a PGConnection runs one statement at a time")
        guard start(connection) == 1 else {
            let error = PGError(kind: .unavailable, message: lastErrorMessage)
            broke(error)
            throw error
        }
        if countsStatements { PGConnection.statementsSent += 1 }
        results = []
        firstError = nil
        flush()
        let outcome = await withCheckedContinuation { queryWaiter = $0 }
        return try outcome.get()
    }

    public var isIdleOutsideTransaction: Bool {
        guard let connection, !isBroken else { return false }
        return PQtransactionStatus(connection) == PQTRANS_IDLE
    }

    public var backendPID: Int32 {
        connection.map { PQbackendPID($0) } ?? 0
    }

    // MARK: - Socket events

    private func watch() {
        watcher?.watch(readable: true, writable: flushing)
    }

    private func flush() {
        guard let connection else { return }
        switch PQflush(connection) {
        case 0: flushing = false
        case 1: flushing = true
        default:
            broke(PGError(kind: .unavailable, message: lastErrorMessage))
            return
        }
        watch()
    }

    private func socketEvent(_ event: Result<FDWatcher.Events, UVError>) {
        if connecting {
            // Level-triggered: stop until the connecting task says what it waits for next.
            watcher?.watch(readable: false, writable: false)
            switch event {
            case .success:
                resumeConnectWaiter(.success(()))
            case .failure:
                // libuv reports POLLERR (a refused or reset socket) as EBADF and stops the handle.
                // PQconnectPoll reads the real error, and moves on to the host's next address if
                // there is one (localhost = ::1 and 127.0.0.1), for which a new watcher is made.
                watcher?.close()
                watcher = nil
                resumeConnectWaiter(.success(()))
            }
            return
        }
        guard let connection else { return }
        let events: FDWatcher.Events
        switch event {
        case .success(let received): events = received
        case .failure(let error):
            // POLLERR: libpq's reading of the socket says what happened (reset, closed) better
            // than libuv's EBADF.
            let message = PQconsumeInput(connection) == 1 && PQstatus(connection) != CONNECTION_BAD ? "database socket: \(error)" : lastErrorMessage
            broke(PGError(kind: .unavailable, message: message))
            return
        }
        if events.contains(.writable) && flushing {
            flush()
            if isBroken { return }
        }
        if events.contains(.readable) || events.contains(.disconnect) {
            guard PQconsumeInput(connection) == 1 else {
                broke(PGError(kind: .unavailable, message: lastErrorMessage))
                return
            }
            deliverNotifications()
            if queryWaiter != nil { collectResults() }
            if PQstatus(connection) == CONNECTION_BAD {
                broke(PGError(kind: .unavailable, message: lastErrorMessage))
            }
        }
    }

    private func collectResults() {
        guard let connection else { return }
        while PQisBusy(connection) == 0 {
            guard let result = PQgetResult(connection) else {
                let waiter = queryWaiter
                queryWaiter = nil
                let outcome: Result<[PGResult], PGError> = firstError.map { .failure($0) } ?? .success(results)
                results = []
                firstError = nil
                waiter?.resume(returning: outcome)
                return
            }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                results.append(PGConnection.copy(result))
            default:
                if firstError == nil { firstError = PGConnection.error(from: result) }
            }
        }
    }

    private func deliverNotifications() {
        guard let connection else { return }
        while let notify = PQnotifies(connection) {
            let notification = PGNotification(
                channel: String(cString: notify.pointee.relname),
                payload: String(cString: notify.pointee.extra),
                backendPID: notify.pointee.be_pid)
            PQfreemem(notify)
            onNotification?(notification)
        }
    }

    private func broke(_ error: PGError) {
        guard !isBroken else { return }
        isBroken = true
        let waiter = queryWaiter
        queryWaiter = nil
        close()
        waiter?.resume(returning: .failure(error))
        onBroken?(error)
    }

    /// Stops watching the socket, then lets libpq close it.
    public func close() {
        watcher?.close()
        watcher = nil
        if let connection {
            PQfinish(connection)
            self.connection = nil
        }
        isBroken = true
        resumeConnectWaiter(.failure(PGError(kind: .unavailable, message: "connection closed")))
        let waiter = queryWaiter
        queryWaiter = nil
        waiter?.resume(returning: .failure(PGError(kind: .unavailable, message: "connection closed")))
    }

    private var lastErrorMessage: String {
        guard let connection, let message = PQerrorMessage(connection) else { return "unknown libpq error" }
        return String(cString: message).trimmingTrailingWhitespace()
    }

    // MARK: - Results

    private static func copy(_ result: OpaquePointer) -> PGResult {
        let rows = Int(PQntuples(result))
        let fields = Int(PQnfields(result))
        var columns: [String] = []
        columns.reserveCapacity(fields)
        for field in 0..<fields {
            columns.append(String(cString: PQfname(result, Int32(field))))
        }
        var cells: [String?] = []
        cells.reserveCapacity(rows * fields)
        for row in 0..<rows {
            for field in 0..<fields {
                if PQgetisnull(result, Int32(row), Int32(field)) == 1 {
                    cells.append(nil)
                } else {
                    cells.append(String(cString: PQgetvalue(result, Int32(row), Int32(field))))
                }
            }
        }
        let tag = String(cString: PQcmdTuples(result))
        return PGResult(columns: columns, cells: cells, affectedRows: Int(tag) ?? rows)
    }

    private static func error(from result: OpaquePointer) -> PGError {
        func field(_ code: Int32) -> String? {
            PQresultErrorField(result, code).map { String(cString: $0) }
        }
        let message = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQresultErrorMessage(result))
        return PGError(
            kind: .server,
            message: message,
            sqlState: field(Int32(UInt8(ascii: "C"))),
            constraint: field(Int32(UInt8(ascii: "n"))),
            detail: field(Int32(UInt8(ascii: "D"))))
    }
}

/// Calls `body` with a C array of C strings (NULL for nil), valid during the call.
private func withCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    if strings.isEmpty { return body(nil) }
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var text = self
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
