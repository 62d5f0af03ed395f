import Loop
import PG

/// Puts holds that wait at the same time into one statement.
///
/// Every hold commit takes the cluster-wide lock of the `NOTIFY` that announces its seats, so
/// under load the commits, not the statements, are the limit: pgbench ran the one-hold statement
/// at 3,400-4,400/s here and a statement taking 14 holds at 11,000-14,000 holds/s. At most
/// `concurrentStatements` hold statements run at once; holds that arrive meanwhile queue here.
/// A drainer with a connection takes the queued holds whose seats do not meet, oldest first, of
/// whichever events (up to `maxAttempts` and `maxSeats`), and runs them together. A hold that
/// finds a statement's place free runs at once (alone, unless others queued too): batches form
/// only while the allowed statements are busy, so they add no wait.
///
/// Drainers are tasks of their own, run in turn with the loop's other jobs: after a statement's
/// answer, a drainer takes its next holds behind the handlers of the requests already read, and
/// so with their holds (running it ahead of them halved the batches; docs/ARCHITECTURE.md).
@LoopActor
final class HoldBatcher {
    static let maxAttempts = 32
    static let maxSeats = 256

    @LoopActor private final class Queued {
        let attempt: HoldStore.HoldAttempt
        let knownTaken: @LoopActor () -> [Int]?
        let report: @LoopActor (HoldStore.HoldOutcome) -> Void
        /// The waiting request; every queued hold is finished exactly once, by a drainer.
        let continuation: CheckedContinuation<HoldStore.HoldOutcome, any Error>

        init(
            attempt: HoldStore.HoldAttempt, knownTaken: @escaping @LoopActor () -> [Int]?,
            report: @escaping @LoopActor (HoldStore.HoldOutcome) -> Void, continuation: CheckedContinuation<HoldStore.HoldOutcome, any Error>
        ) {
            self.attempt = attempt
            self.knownTaken = knownTaken
            self.report = report
            self.continuation = continuation
        }

        func finish(_ result: Result<HoldStore.HoldOutcome, any Error>) {
            if case .success(let outcome) = result { report(outcome) }
            continuation.resume(with: result)
        }
    }

    private let pool: PGPool
    private unowned let store: HoldStore
    private var queue: [Queued] = []
    private var drainers = 0
    private let maxDrainers: Int
    /// The seats of the holds queued or in a statement, with how many want each.
    private var pendingSeats: [EventSeat: Int] = [:]
    var onStatement: ((Int) -> Void)?
    var waiting: Int { queue.count }

    /// Whether a hold waiting here or in a statement wants any of these seats.
    func isPending(eventID: Int, seatIDs: [Int]) -> Bool {
        !pendingSeats.isEmpty && seatIDs.contains { pendingSeats[EventSeat(eventID: eventID, seatID: $0)] != nil }
    }

    init(pool: PGPool, store: HoldStore, concurrentStatements: Int) {
        self.pool = pool
        self.store = store
        maxDrainers = max(1, min(concurrentStatements, pool.configuration.size))
    }

    func hold(
        _ attempt: HoldStore.HoldAttempt, knownTaken: @escaping @LoopActor () -> [Int]?,
        report: @escaping @LoopActor (HoldStore.HoldOutcome) -> Void
    ) async throws -> HoldStore.HoldOutcome {
        for seatID in attempt.seatIDs { pendingSeats[EventSeat(eventID: attempt.eventID, seatID: seatID), default: 0] += 1 }
        defer {
            for seatID in attempt.seatIDs {
                let seat = EventSeat(eventID: attempt.eventID, seatID: seatID)
                if let count = pendingSeats[seat], count > 1 { pendingSeats[seat] = count - 1 } else { pendingSeats.removeValue(forKey: seat) }
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            queue.append(Queued(attempt: attempt, knownTaken: knownTaken, report: report, continuation: continuation))
            // A drainer per statement allowed to run at once; it runs after this request suspends.
            if drainers < maxDrainers {
                drainers += 1
                EventLoop.spawn { [self] in await drain() }
            }
        }
    }

    /// Runs statements while holds are queued.
    private func drain() async {
        while !queue.isEmpty {
            let queuedBefore = queue.count
            let connection: PGConnection
            do {
                connection = try await pool.acquire(first: true)
            } catch {
                // The pool timed out or the database is down: those that waited as long as this
                // drainer did get the error (the oldest first), as they would have in the pool.
                let failed = queue.prefix(min(queuedBefore, queue.count))
                queue.removeFirst(failed.count)
                for queued in failed { queued.finish(.failure(error)) }
                continue
            }
            let batch = takeBatch()
            if !batch.isEmpty { await run(batch, on: connection) }
            pool.release(connection)
        }
        drainers -= 1
    }

    /// The oldest queued holds whose seats do not meet, of any events. Holds the snapshot already
    /// refuses are answered here, without a statement.
    private func takeBatch() -> [Queued] {
        var batch: [Queued] = []
        var seats = Set<EventSeat>()
        var left: [Queued] = []
        for queued in queue {
            let attempt = queued.attempt
            guard batch.isEmpty || (batch.count < Self.maxAttempts && seats.count + attempt.seatIDs.count <= Self.maxSeats) else {
                left.append(queued)
                continue
            }
            if let known = queued.knownTaken() {
                queued.finish(.success(.unavailable(seatIDs: known)))
                continue
            }
            // A seat wanted twice waits for the next statement, which knows the first outcome.
            let wanted = attempt.seatIDs.map { EventSeat(eventID: attempt.eventID, seatID: $0) }
            guard !wanted.contains(where: seats.contains) else {
                left.append(queued)
                continue
            }
            batch.append(queued)
            seats.formUnion(wanted)
        }
        queue = left
        return batch
    }

    private struct EventSeat: Hashable {
        let eventID: Int
        let seatID: Int
    }

    private func run(_ batch: [Queued], on connection: PGConnection) async {
        onStatement?(batch.count)
        if batch.count == 1 {
            let only = batch[0]
            do {
                only.finish(.success(try await store.holdAlone(only.attempt, on: connection)))
            } catch {
                only.finish(.failure(error))
            }
            return
        }
        do {
            let outcomes = try await store.holdTogether(batch.map(\.attempt), on: connection)
            for (queued, outcome) in zip(batch, outcomes) { queued.finish(.success(outcome)) }
        } catch let error as PGError where error.sqlState != nil && !connection.isBroken {
            // The database refused the shared statement (a deadlock with something else), which
            // rolled it back: no answer for each hold, so each is tried alone.
            for queued in batch {
                do {
                    queued.finish(.success(try await store.holdAlone(queued.attempt, on: connection)))
                } catch {
                    queued.finish(.failure(error))
                }
            }
        } catch {
            // A lost connection or an unreadable answer: the statement may have committed, and a
            // retry would then refuse its own holds; each request gets the error.
            for queued in batch { queued.finish(.failure(error)) }
        }
    }
}
