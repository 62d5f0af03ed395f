public import Logging
public import Loop
public import PG

/// Releases expired holds: a libuv timer armed for the earliest expiry this process knows of
/// (the holds it created), with a short backstop for holds made by other processes.
///
/// Each sweep is one statement per batch: it locks due holds with `FOR UPDATE SKIP LOCKED`, so
/// several server processes sweep one database at once without waiting on each other and
/// without releasing a hold twice, and a hold that a confirm or an extension has locked is left
/// to them. Batches repeat while they come back full.
@LoopActor
public final class HoldSweeper {
    public static let batchSize = 500
    /// Sweeps at least this often, whatever this process knows of.
    public static let backstopMilliseconds: UInt64 = 500

    private let pool: PGPool
    private let logger: Logger
    /// Made by `start`: a server that fails to start must not leave a handle open.
    private var timer: LoopTimer?
    private var wakeAtMilliseconds: UInt64 = .max
    /// Expiries of this process's holds, rounded up to 50 ms so that a busy sale keeps a few
    /// thousand entries rather than one per hold.
    private var expiries = ExpiryQueue(granularityMilliseconds: 50)
    private var sweeping = false
    private var closed = false
    private var onStopped: (() -> Void)?
    /// Told of each sweep's released holds: events whose seats were freed, and each hold's lag
    /// (seconds between its `expires_at` and its release).
    public var onReleased: ((_ eventIDs: Set<Int>, _ lags: [Double]) -> Void)?

    public init(pool: PGPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    public func start() {
        guard timer == nil, !closed else { return }
        timer = LoopTimer()
        arm(afterMilliseconds: 0)
    }

    /// A hold of this process expires in `seconds`: a sweep is planned for then.
    public func expectExpiry(inSeconds seconds: Int) {
        let now = EventLoop.shared.nowMilliseconds
        // A little after: the database, whose clock decides, must see the hold as expired.
        expiries.insert(now + UInt64(max(0, seconds)) * 1_000 + 20)
        arm(afterMilliseconds: Self.backstopMilliseconds)
    }

    /// Plans the next sweep: the earliest known expiry, but no later than `delay` from now.
    private func arm(afterMilliseconds delay: UInt64) {
        guard !closed, let timer else { return }
        let now = EventLoop.shared.nowMilliseconds
        expiries.removeDue(now: now)
        let wake = min(now + delay, expiries.earliest ?? .max)
        guard wake < wakeAtMilliseconds || wakeAtMilliseconds <= now else { return }
        wakeAtMilliseconds = wake
        timer.start(after: wake - now) { [weak self] in
            guard let self else { return }
            self.wakeAtMilliseconds = .max
            EventLoop.spawn { await self.sweep() }
        }
    }

    /// Releases every hold due now, in batches; then waits for the next expiry or the backstop.
    public func sweep() async {
        guard !sweeping, !closed else { return }
        sweeping = true
        defer {
            sweeping = false
            arm(afterMilliseconds: Self.backstopMilliseconds)
            if closed, let stopped = onStopped {
                onStopped = nil
                stopped()
            }
        }
        do {
            while !closed {
                let released = try await releaseBatch()
                if released < Self.batchSize { break }
            }
        } catch let error as PGError where error.isUnavailable {
            // The database is away; the backstop tries again.
        } catch {
            logger.warning("sweeping expired holds failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// One batch in one transaction: one statement makes the holds `expired` and frees the seats
    /// still held by them; expired offers expire their waitlist entries; then the freed seats are
    /// offered to each event's waiting entries before anyone else can take them. Returns how
    /// many holds were released.
    func releaseBatch() async throws -> Int {
        try await pool.withTransaction { connection in try await self.releaseBatch(on: connection) }
    }

    private func releaseBatch(on connection: PGConnection) async throws -> Int {
        // Every step is driven by rows in hand — the locked holds by their ctid, their seats by
        // (event_id, seat_id) — so the plan cannot turn into a scan when the statistics still
        // believe few seats are held (measured: a join on hold_id took 67 s for 500 holds).
        let result = try await connection.query("""
            WITH due AS (
                SELECT ctid, event_id, id FROM holds
                WHERE status = 'active' AND expires_at <= now()
                ORDER BY expires_at LIMIT \(HoldSweeper.batchSize)
                FOR UPDATE SKIP LOCKED
            ), expired AS (
                UPDATE holds h SET status = 'expired', released_at = now()
                WHERE h.ctid = ANY(ARRAY(SELECT ctid FROM due))
                RETURNING h.event_id, h.id, h.seat_ids, extract(epoch FROM (now() - h.expires_at))::float8 AS lag
            ), lapsed AS (
                UPDATE waitlist_entries w SET status = 'expired', offer_token = NULL, updated_at = now()
                FROM expired WHERE w.event_id = expired.event_id AND w.offer_hold_id = expired.id AND w.status = 'offered'
                RETURNING w.id
            ), freed AS (
                UPDATE event_seats es SET status = 'free', hold_id = NULL, version = nextval('seat_change_version')
                FROM expired
                WHERE es.event_id = expired.event_id AND es.seat_id = ANY(expired.seat_ids) AND es.hold_id = expired.id
                RETURNING es.event_id
            ), relaxed AS (
                -- A sweep lost in a crash is done again (its holds are still due, and every hold
                -- counts an expired hold's seats as free meanwhile): no need to wait for the WAL
                -- flush, and so to hold the NOTIFY lock through it (see docs/ARCHITECTURE.md).
                SELECT set_config('synchronous_commit', 'off', true)
            )
            SELECT event_id, lag, (SELECT count(*) FROM freed) AS seats FROM expired, relaxed
            """)
        guard !result.isEmpty else { return 0 }
        var events = Set<Int>()
        var lags: [Double] = []
        lags.reserveCapacity(result.count)
        for row in result.rows {
            events.insert(try row.int("event_id"))
            lags.append(try row.double("lag"))
        }
        for event in events.sorted() { try await WaitlistStore.promote(eventID: event, on: connection) }
        let seats = try result.first?.int("seats") ?? 0
        logger.info("holds expired", metadata: [
            "holds": "\(result.count)", "seats": "\(seats)",
            "max_lag_ms": "\(Int((lags.max() ?? 0) * 1_000))",
        ])
        onReleased?(events, lags)
        return result.count
    }

    /// Stops sweeping; `stopped` runs once no sweep is in flight (at once when none is), so the
    /// pool can close under it: a sweep cut off mid-transaction would leave its connection open.
    public func stop(_ stopped: @escaping () -> Void) {
        closed = true
        timer?.close()
        if sweeping {
            onStopped = stopped
        } else {
            stopped()
        }
    }
}

/// Future times in a min-heap, each kept once per granule (times are rounded up to it).
struct ExpiryQueue {
    private var heap: [UInt64] = []
    private var present = Set<UInt64>()
    let granularityMilliseconds: UInt64

    init(granularityMilliseconds: UInt64) {
        self.granularityMilliseconds = granularityMilliseconds
    }

    var earliest: UInt64? { heap.first }
    var count: Int { heap.count }

    mutating func insert(_ time: UInt64) {
        let rounded = (time + granularityMilliseconds - 1) / granularityMilliseconds * granularityMilliseconds
        guard present.insert(rounded).inserted else { return }
        heap.append(rounded)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent] <= heap[child] { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    /// Drops every time at or before `now`.
    mutating func removeDue(now: UInt64) {
        while let first = heap.first, first <= now {
            present.remove(first)
            let last = heap.removeLast()
            guard !heap.isEmpty else { break }
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && heap[left] < heap[smallest] { smallest = left }
                if right < heap.count && heap[right] < heap[smallest] { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }
}
