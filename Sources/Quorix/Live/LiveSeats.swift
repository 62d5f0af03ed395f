import Foundation
import HTTP1
public import Logging
public import Loop
public import PG

/// A seat's version as a statement that changed it set it.
public struct SeatVersion: Sendable, Equatable {
    public let seatID: Int
    public let version: Int64

    static func from(_ result: PGResult) throws -> [SeatVersion] {
        try result.rows.map { SeatVersion(seatID: try $0.int("seat_id"), version: Int64(try $0.int("version"))) }
    }
}

/// Live seat status: a `LISTEN quorix_seats` connection keeps an in-memory snapshot of each
/// active event's seats current, from which `GET .../seats` is served, holds on seats known to
/// be taken are refused at once, and stream clients are sent every change.
///
/// The database triggers announce every seat change in its transaction
/// (Migrations/0005_seat_announcements.sql); PostgreSQL delivers the announcements once their
/// transactions commit, in commit order. While this process is not listening (the connection
/// broke, the database restarted) it cannot know what it missed: snapshots stop being used
/// until they are reloaded after the connection is back, and readers go to the database.
@LoopActor
public final class LiveSeats {
    public static let channel = "quorix_seats"
    /// Entries kept per event for `Last-Event-ID` replay (at least 1,000 versions).
    static let replayLimit = 1_024
    /// A stream client with more than this written and not yet read is cut off: a slow reader
    /// must not make the server buffer without bound.
    static let slowReaderLimitBytes = 1 << 20
    /// Snapshots no request or client used for this long are dropped.
    static let idleMilliseconds: UInt64 = 600_000

    private let pool: PGPool
    private let logger: Logger
    private let heartbeatMilliseconds: UInt64
    private var listener: PGConnection?
    public private(set) var isListening = false
    /// Bumped each time listening starts or stops: a load begun under an earlier connection
    /// may have missed announcements and is thrown away.
    private var listenGeneration = 0
    private var snapshots: [Int: EventSeatSnapshot] = [:]
    /// Announcements that arrived while the event's snapshot was loading, applied after it.
    private var buffered: [Int: [SeatAnnouncement]] = [:]
    /// The listener's connection runs one statement at a time: a load, or the pause that batches
    /// notifications (see `batchNotifications`). Turns are handed over in order.
    private var listenerBusy = false
    private var listenerWaiters: [CheckedContinuation<Void, Never>] = []
    /// Statements the listener's connection has run (pauses and loads: transactions that are
    /// not requests' work, which the benchmarks subtract from PostgreSQL's counts).
    public private(set) var listenerStatements = 0
    /// How long the listener's backend collects notifications before sending them.
    static let batchMilliseconds = 10
    private var loadWaiters: [Int: [CheckedContinuation<Result<EventSeatSnapshot?, any Error>, Never>]] = [:]
    private var reconnectTimer: LoopTimer?
    private var heartbeatTimer: LoopTimer?
    private var flushTimer: LoopTimer?
    private var flushScheduled = false
    private var stopped = false
    /// A connection attempt in flight; shutdown waits for it (it owns a socket and a timer).
    private var connecting = false
    private var onStopped: (() -> Void)?
    private var reconnectDelayMilliseconds: UInt64 = 250
    private var warnedUnreachable = false
    /// Events this process just changed whose announcement has not arrived yet, and readers
    /// waiting for it: a client that changed seats and reads them next sees its change.
    /// Kept apart by kind: refusals wait only for changes that free seats, and a hold checks for
    /// them on every attempt, while a busy event has a change that takes seats in flight for
    /// nearly every hold.
    private var pendingTaking: [Int: [PendingChange]] = [:]
    private var pendingFreeing: [Int: [PendingChange]] = [:]
    private var settleWaiters: [Int: [(since: UInt64, continuation: CheckedContinuation<Void, Never>)]] = [:]
    private var settleTimer: LoopTimer?
    /// A reader waits at most this long for an announcement (it is normally a millisecond away).
    static let settleMilliseconds: UInt64 = 100
    /// Stream clients connected now, and clients cut off for reading too slowly.
    public var onClientCountChange: ((Int) -> Void)?
    public var onSlowReaderCutOff: (() -> Void)?
    private(set) var clientCount = 0

    public init(pool: PGPool, logger: Logger, heartbeatMilliseconds: UInt64 = 15_000) {
        self.pool = pool
        self.logger = logger
        self.heartbeatMilliseconds = heartbeatMilliseconds
    }

    /// Starts listening (and keeps trying until it listens). Timers are made here: a server
    /// that fails to start must not leave handles open.
    public func start() {
        guard reconnectTimer == nil, !stopped else { return }
        reconnectTimer = LoopTimer()
        flushTimer = LoopTimer()
        settleTimer = LoopTimer()
        let heartbeat = LoopTimer()
        heartbeatTimer = heartbeat
        heartbeat.start(after: heartbeatMilliseconds, repeat: heartbeatMilliseconds) { [weak self] in self?.sendHeartbeats() }
        EventLoop.spawn { await self.connect() }
    }

    /// `stopped` runs once no connection attempt is in flight (at once when none is).
    public func whenStopped(_ stopped: @escaping () -> Void) {
        if connecting {
            onStopped = stopped
        } else {
            stopped()
        }
    }

    /// Stops listening and ends every stream.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        for timer in [reconnectTimer, heartbeatTimer, flushTimer, settleTimer] { timer?.close() }
        for event in Array(settleWaiters.keys) { settle(event) }
        listener?.onBroken = nil
        listener?.close()
        listener = nil
        isListening = false
        for snapshot in snapshots.values {
            for subscriber in snapshot.subscribers.values { subscriber.stream.finish() }
        }
    }

    private func connect() async {
        guard !stopped, !connecting else { return }
        connecting = true
        defer {
            connecting = false
            if stopped, let finished = onStopped {
                onStopped = nil
                finished()
            }
        }
        do {
            let connection = try await PGConnection.connect(pool.configuration.conninfo, timeoutMilliseconds: pool.configuration.connectTimeoutMilliseconds)
            connection.countsStatements = false
            connection.onNotification = { [weak self] notification in self?.received(notification) }
            connection.onBroken = { [weak self] error in self?.lost(error) }
            listener = connection
            try await connection.execute("LISTEN \(Self.channel)")
            guard !stopped else {
                connection.close()
                return
            }
            // A stadium's load planned as a parallel scan spent 160 ms starting its workers.
            try await connection.execute("SET application_name = 'quorix seat listener'; SET max_parallel_workers_per_gather = 0")
            isListening = true
            listenGeneration += 1
            let generation = listenGeneration
            EventLoop.spawn { await self.batchNotifications(on: connection, generation: generation) }
            reconnectDelayMilliseconds = 250
            warnedUnreachable = false
            logger.info("listening for seat changes", metadata: ["channel": "\(Self.channel)", "backend_pid": "\(connection.backendPID)"])
            // Snapshots from before may have missed changes: those clients follow are reloaded
            // now (their clients get the difference as one change), the others when next used.
            for snapshot in snapshots.values where !snapshot.subscribers.isEmpty {
                EventLoop.spawn { _ = try? await self.load(eventID: snapshot.eventID, index: snapshot.index) }
            }
        } catch {
            listener?.onBroken = nil
            listener?.close()
            listener = nil
            if stopped { return }
            if !warnedUnreachable {
                warnedUnreachable = true
                logger.warning("cannot listen for seat changes; seat status is read from the database until this works",
                    metadata: ["error": "\(String(reflecting: error))"])
            }
            scheduleReconnect()
        }
    }

    /// Keeps the listener's backend inside a short statement, again and again. A backend sends
    /// notifications only between statements, so it then reads the shared notification queue
    /// once per pause instead of once per committing transaction: an idle listener, woken by
    /// every commit, contends with the committing backends for the queue and cost the hold
    /// statement half its rate here (BENCHMARKS.md); with the pause, announcements wait at most
    /// `batchMilliseconds` and arrive together.
    private func batchNotifications(on connection: PGConnection, generation: Int) async {
        while !stopped, generation == listenGeneration, !connection.isBroken {
            await takeListenerTurn()
            if !stopped, generation == listenGeneration, !connection.isBroken {
                listenerStatements += 1
                _ = try? await connection.execute("SELECT pg_sleep(\(Double(Self.batchMilliseconds) / 1_000))")
            }
            endListenerTurn()
        }
    }

    private func takeListenerTurn() async {
        if listenerBusy {
            await withCheckedContinuation { listenerWaiters.append($0) }
        } else {
            listenerBusy = true
        }
    }

    /// Hands the connection to the next in line (it stays busy), or frees it.
    private func endListenerTurn() {
        if listenerWaiters.isEmpty {
            listenerBusy = false
        } else {
            listenerWaiters.removeFirst().resume()
        }
    }

    private func lost(_ error: PGError) {
        listener = nil
        guard !stopped else { return }
        isListening = false
        listenGeneration += 1
        for snapshot in snapshots.values { snapshot.isCurrent = false }
        for event in Array(settleWaiters.keys) { settle(event) }
        logger.warning("lost the seat-change listener; reconnecting", metadata: ["error": "\(error.debugDescription)"])
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped, let reconnectTimer else { return }
        let delay = reconnectDelayMilliseconds
        reconnectDelayMilliseconds = min(reconnectDelayMilliseconds * 2, 5_000)
        reconnectTimer.start(after: delay) { [weak self] in
            guard let self else { return }
            EventLoop.spawn { await self.connect() }
        }
    }

    // MARK: - Snapshots

    /// The event's current snapshot, loaded on first use (concurrent first uses share one
    /// load); nil while this process is not listening: then only the database knows.
    func snapshot(eventID: Int, index: SeatMapIndex) async throws -> EventSeatSnapshot? {
        guard isListening else { return nil }
        if let snapshot = snapshots[eventID], snapshot.isCurrent {
            snapshot.lastUsedMilliseconds = EventLoop.shared.nowMilliseconds
            return snapshot
        }
        return try await load(eventID: eventID, index: index)
    }

    /// The snapshot if it is current now, without waiting; otherwise nil, and a load starts in
    /// the background so that the next request finds it (the hold path never waits for one).
    func currentSnapshot(eventID: Int, index: SeatMapIndex) -> EventSeatSnapshot? {
        guard isListening else { return nil }
        if let snapshot = snapshots[eventID], snapshot.isCurrent {
            // Holds use it too: a snapshot only holds read is not idle.
            snapshot.lastUsedMilliseconds = EventLoop.shared.nowMilliseconds
            return snapshot
        }
        if loadWaiters[eventID] == nil {
            EventLoop.spawn { _ = try? await self.load(eventID: eventID, index: index) }
        }
        return nil
    }

    private func load(eventID: Int, index: SeatMapIndex) async throws -> EventSeatSnapshot? {
        if loadWaiters[eventID] != nil {
            return try await withCheckedContinuation { loadWaiters[eventID]?.append($0) }.get()
        }
        loadWaiters[eventID] = []
        buffered[eventID] = []
        let outcome: Result<EventSeatSnapshot?, any Error>
        do {
            outcome = .success(try await loadNow(eventID: eventID, index: index))
        } catch {
            outcome = .failure(error)
        }
        buffered[eventID] = nil
        for waiter in loadWaiters.removeValue(forKey: eventID) ?? [] { waiter.resume(returning: outcome) }
        return try outcome.get()
    }

    private func loadNow(eventID: Int, index: SeatMapIndex) async throws -> EventSeatSnapshot? {
        let generation = listenGeneration
        // On the listener's own connection, one load at a time: through the pool, a load asked
        // for by the first request of a flash crowd would wait behind the whole crowd.
        guard let listener else { return nil }
        await takeListenerTurn()
        defer { endListenerTurn() }
        guard generation == listenGeneration, isListening, !stopped else { return nil }
        // Only held seats look up their hold (for its expiry), through a lateral lookup by key:
        // a join was free to read every hold of the event, and the same lookup as a subquery in
        // the aggregate's argument cost 300 ms for a stadium (60 ms this way). The seats come as
        // one text in the announcements' format, not 240,000 cells to copy out of libpq.
        listenerStatements += 1
        let result = try await listener.query("""
            SELECT \(eventID) || '|' || coalesce(string_agg(
                       es.seat_id || ',' || CASE es.status WHEN 'free' THEN 'f' WHEN 'held' THEN 'h' WHEN 'booked' THEN 'b' ELSE 'x' END
                       || ',' || es.version || coalesce(',' || hold.expires_ms, ''),
                       ';' ORDER BY es.seat_id), '') AS seats
            FROM event_seats es
            LEFT JOIN LATERAL (SELECT (extract(epoch FROM h.expires_at) * 1000)::bigint AS expires_ms FROM holds h
                               WHERE es.status = 'held' AND h.event_id = es.event_id AND h.id = es.hold_id) hold ON true
            WHERE es.event_id = \(eventID)
            """)
        guard generation == listenGeneration, isListening, !stopped else { return nil }
        let text = try result.first?.string("seats") ?? ""
        var rows: [SeatChange] = []
        if !text.hasSuffix("|") {
            guard case .seats(_, let changes)? = SeatAnnouncement.parse(text) else {
                throw PGError(kind: .decoding, message: "the seats of event \(eventID) came back unreadable")
            }
            rows = changes
        }
        let existing = snapshots[eventID]
        let snapshot = existing ?? EventSeatSnapshot(eventID: eventID, index: index)
        let previous = snapshot.version
        let applied = snapshot.apply(rows)
        // A reload tells the event's clients what changed while this process was not listening.
        if existing != nil, !applied.isEmpty {
            snapshot.record(.seats(applied.map { ($0.seatID, $0.state) }), previousVersion: previous)
        }
        for announcement in buffered[eventID] ?? [] { apply(announcement, to: snapshot) }
        snapshot.isCurrent = true
        snapshot.lastUsedMilliseconds = EventLoop.shared.nowMilliseconds
        dropIdleSnapshots()
        snapshots[eventID] = snapshot
        scheduleFlush()
        return snapshot
    }

    private func dropIdleSnapshots() {
        let now = EventLoop.shared.nowMilliseconds
        snapshots = snapshots.filter { !$0.value.subscribers.isEmpty || now - $0.value.lastUsedMilliseconds < Self.idleMilliseconds }
    }

    private func received(_ notification: PGNotification) {
        guard notification.channel == Self.channel, let eventID = SeatAnnouncement.eventID(of: notification.payload) else { return }
        let loading = buffered[eventID] != nil
        guard loading || snapshots[eventID]?.isCurrent == true else { return }
        guard let announcement = SeatAnnouncement.parse(notification.payload) else {
            logger.warning("unreadable seat announcement", metadata: ["payload": "\(notification.payload.prefix(200))"])
            return
        }
        if loading {
            buffered[eventID]?.append(announcement)
        } else if let snapshot = snapshots[eventID] {
            apply(announcement, to: snapshot)
            announced(eventID)
        }
    }

    // MARK: - Reading one's own changes

    /// Seats of a change, with versions each must pass for the snapshot to show the change.
    struct SeatMark {
        let eventID: Int
        let versions: [(seatID: Int, version: Int64)]

        /// A mark for a change already committed, from the versions its statement gave the
        /// seats: shown once the snapshot has each seat at that version or later. A mark read
        /// from the snapshot after the fact could be met by an older change whose announcement
        /// is still on its way (a hold's, just before its release), settling the release early.
        static func after(eventID: Int, changed: [SeatVersion]) -> SeatMark? {
            guard !changed.isEmpty else { return nil }
            return SeatMark(eventID: eventID, versions: changed.map { ($0.seatID, $0.version - 1) })
        }
    }

    func mark(eventID: Int, changed: [SeatVersion]) -> SeatMark? {
        SeatMark.after(eventID: eventID, changed: changed)
    }

    struct PendingChange {
        let mark: SeatMark?
        let notedAt: UInt64
    }

    /// A mark for a hold about to be sent, from the versions the snapshot has now (the hold
    /// statement does not return versions; an older announcement still on its way can meet this
    /// mark, which lets this process's readers go on early but never makes a refusal wrong, as
    /// a hold takes seats). Nil without a current snapshot, whose load then starts.
    func mark(eventID: Int, seatIDs: [Int], index: SeatMapIndex) -> SeatMark? {
        guard let snapshot = currentSnapshot(eventID: eventID, index: index) else { return nil }
        return SeatMark(eventID: eventID, versions: seatIDs.map { ($0, snapshot.version(ofSeat: $0)) })
    }

    /// This process committed a change to the event's seats. Until the snapshot shows it,
    /// readers of the event wait, and — when the change `frees` seats — refusals do not come
    /// from the snapshot (a change that takes seats cannot make the snapshot refuse wrongly).
    /// With a mark, the snapshot shows the change once every marked seat's version has moved
    /// past the mark (at once, if the announcement came first); without one (no snapshot then,
    /// or seats not named), only after `settleMilliseconds`: a snapshot loading meanwhile may
    /// have read the seats before the change.
    func noteLocalChange(eventID: Int, frees: Bool, mark: SeatMark? = nil) {
        guard isListening else { return }
        let current = snapshots[eventID].map { $0.isCurrent } ?? false
        if let mark, current, snapshots[eventID]?.shows(mark) == true { return }
        let change = PendingChange(mark: current ? mark : nil, notedAt: EventLoop.shared.nowMilliseconds)
        if frees {
            Self.append(change, to: &pendingFreeing, eventID: eventID)
        } else {
            Self.append(change, to: &pendingTaking, eventID: eventID)
        }
    }

    /// Changes are noted in time order, and ones older than `settleMilliseconds` no longer count:
    /// a long list sheds them from its front as it grows. Only reads prune an event's list
    /// otherwise, and holds are noted whether or not anything reads: a run of 30,000 holds on an
    /// event nobody read kept 30,000 changes, event after event.
    static func append(_ change: PendingChange, to pending: inout [Int: [PendingChange]], eventID: Int) {
        pending[eventID, default: []].append(change)
        guard let count = pending[eventID]?.count, count >= 256, count.nonzeroBitCount == 1 else { return }
        let stale = pending[eventID]?.prefix { change.notedAt - $0.notedAt >= settleMilliseconds }.count ?? 0
        if stale > 0 { pending[eventID]?.removeFirst(stale) }
    }

    /// False while a change this process made may not show in the snapshot yet (for at most
    /// `settleMilliseconds`); `forRefusals`: only changes that free seats count.
    func isSettled(eventID: Int, forRefusals: Bool = false) -> Bool {
        let freeingSettled = Self.prune(&pendingFreeing, eventID: eventID, snapshot: snapshots[eventID])
        if forRefusals { return freeingSettled }
        return Self.prune(&pendingTaking, eventID: eventID, snapshot: snapshots[eventID]) && freeingSettled
    }

    /// Drops the event's changes that the snapshot shows or that are older than
    /// `settleMilliseconds` (in place); whether none is left.
    private static func prune(_ pending: inout [Int: [PendingChange]], eventID: Int, snapshot: EventSeatSnapshot?) -> Bool {
        guard pending[eventID] != nil else { return true }
        let now = EventLoop.shared.nowMilliseconds
        pending[eventID]?.removeAll { change in
            now - change.notedAt >= settleMilliseconds || change.mark.map { snapshot?.shows($0) != false } ?? false
        }
        guard pending[eventID]?.isEmpty ?? true else { return false }
        pending[eventID] = nil
        return true
    }

    /// Returns once the snapshot shows this process's changes to the event (or after
    /// `settleMilliseconds`).
    func settled(eventID: Int) async {
        guard !isSettled(eventID: eventID), let settleTimer, !settleTimer.isClosed else { return }
        if settleWaiters.isEmpty {
            settleTimer.start(after: 10, repeat: 10) { [weak self] in self?.settleOverdue() }
        }
        await withCheckedContinuation { continuation in
            settleWaiters[eventID, default: []].append((EventLoop.shared.nowMilliseconds, continuation))
        }
    }

    /// An announcement for the event was applied: waiting readers go on if it settles the event.
    /// (A change without a mark waits its full `settleMilliseconds`: an announcement arriving
    /// now may be an older one.)
    private func announced(_ eventID: Int) {
        if settleWaiters[eventID] != nil, isSettled(eventID: eventID) { settle(eventID) }
    }

    private func settle(_ eventID: Int) {
        pendingTaking[eventID] = nil
        pendingFreeing[eventID] = nil
        guard let waiters = settleWaiters.removeValue(forKey: eventID) else { return }
        if settleWaiters.isEmpty { settleTimer?.stop() }
        for waiter in waiters { waiter.continuation.resume() }
    }

    private func settleOverdue() {
        let now = EventLoop.shared.nowMilliseconds
        for (eventID, waiters) in settleWaiters
        where isSettled(eventID: eventID) || waiters.contains(where: { now - $0.since >= Self.settleMilliseconds }) {
            settle(eventID)
        }
    }

    private func apply(_ announcement: SeatAnnouncement, to snapshot: EventSeatSnapshot) {
        switch announcement {
        case .seats(_, let changes):
            let previous = snapshot.version
            let applied = snapshot.apply(changes)
            guard !applied.isEmpty else { return }
            snapshot.record(.seats(applied.map { ($0.seatID, $0.state) }), previousVersion: previous)
        case .offer(_, let entryID, let expiresAt):
            snapshot.record(.offer(entryID: entryID, expiresAt: expiresAt), previousVersion: snapshot.version)
        }
        if !snapshot.pendingFrames.isEmpty { scheduleFlush() }
    }

    // MARK: - Stream clients

    /// Adds a stream client: first what it missed since `lastEventID` (or the whole status when
    /// that is too old, unknown or not given), then every change as it is applied.
    func subscribe(_ stream: ResponseStream, to snapshot: EventSeatSnapshot, lastEventID: Int64?, snapshotBody: () -> [UInt8]) {
        // The client may have gone while its head was being written.
        guard !stream.isClosed else { return }
        var opening: [UInt8] = Array("retry: 2000\n\n".utf8)
        if let lastEventID, let missed = snapshot.history.since(lastEventID, current: snapshot.version) {
            for entry in missed { opening.append(contentsOf: SeatStream.frame(entry, index: snapshot.index)) }
        } else {
            opening.append(contentsOf: SeatStream.snapshotFrame(version: snapshot.version, body: snapshotBody()))
        }
        stream.write(opening)
        let subscriber = StreamSubscriber(stream: stream, sentThrough: snapshot.sequence)
        let key = ObjectIdentifier(subscriber)
        snapshot.subscribers[key] = subscriber
        clientCount += 1
        onClientCountChange?(clientCount)
        stream.onClose = { [weak self, weak snapshot] in
            guard let self else { return }
            snapshot?.subscribers.removeValue(forKey: key)
            self.clientCount -= 1
            self.onClientCountChange?(self.clientCount)
        }
    }

    private func scheduleFlush() {
        guard !flushScheduled, let flushTimer, !flushTimer.isClosed else { return }
        flushScheduled = true
        // Next loop turn: every announcement read from the socket in this one goes out in one
        // write per client.
        flushTimer.start(after: 0) { [weak self] in self?.flush() }
    }

    private func flush() {
        flushScheduled = false
        for snapshot in snapshots.values where !snapshot.pendingFrames.isEmpty {
            let frames = snapshot.pendingFrames
            snapshot.pendingFrames = []
            guard let first = frames.first?.sequence, let last = frames.last?.sequence else { continue }
            var shared: [UInt8] = []
            for frame in frames { shared.append(contentsOf: frame.bytes) }
            for subscriber in snapshot.subscribers.values {
                guard keepUp(subscriber) else { continue }
                if subscriber.sentThrough < first {
                    subscriber.stream.write(shared)
                } else if subscriber.sentThrough < last {
                    subscriber.stream.write(frames.filter { $0.sequence > subscriber.sentThrough }.flatMap(\.bytes))
                }
                subscriber.sentThrough = last
            }
        }
    }

    /// False (and the client is cut off) when the client has not read what it was sent.
    private func keepUp(_ subscriber: StreamSubscriber) -> Bool {
        guard subscriber.stream.pendingBytes > Self.slowReaderLimitBytes else { return true }
        logger.info("stream client cut off: reading too slowly", metadata: ["unread_bytes": "\(subscriber.stream.pendingBytes)"])
        onSlowReaderCutOff?()
        subscriber.stream.close()
        return false
    }

    private func sendHeartbeats() {
        for snapshot in snapshots.values {
            for subscriber in snapshot.subscribers.values where keepUp(subscriber) {
                subscriber.stream.write(SeatStream.heartbeat)
            }
        }
    }
}

/// Wall-clock time in Unix milliseconds (hold expiries are database timestamps).
enum WallClock {
    static var nowMilliseconds: Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded()) }
}
