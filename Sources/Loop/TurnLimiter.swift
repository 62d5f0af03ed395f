internal import CLibUV

/// Starts work at once while fewer than `perTurn` pieces started in this turn of the loop, and
/// queues the rest, in order, for the next turns.
///
/// One poll can hand the loop a thousand readable sockets. Starting every request among them
/// before polling again means a database answer that arrived meanwhile waits for all of them;
/// when sales open, that answer is what lets the later requests be refused from memory, and
/// until it is read they all queue for statements instead. With a limit per turn the loop polls
/// again (without blocking) after each `perTurn` requests.
@LoopActor
public final class TurnLimiter {
    private let perTurn: Int
    private var startedThisTurn = 0
    /// A queue: `queued[next...]` wait; the taken front is dropped once it is half the array.
    private var queued: [@LoopActor () -> Void] = []
    private var next = 0
    private var beforePoll: HandleStorage<uv_prepare_t>!
    private var afterPoll: HandleStorage<uv_check_t>!
    private var keepPolling: HandleStorage<uv_idle_t>!
    private var polling = false

    public init(perTurn: Int) {
        self.perTurn = max(1, perTurn)
        let loop = EventLoop.shared.uvLoop
        beforePoll = HandleStorage(owner: self)
        uv_prepare_init(loop, beforePoll.pointer)
        uv_prepare_start(beforePoll.pointer) { handle in
            LoopActor.assumeIsolated { HandleStorage<uv_prepare_t>.owner(of: handle, as: TurnLimiter.self)?.startedThisTurn = 0 }
        }
        uv_unref(beforePoll.asHandle)
        afterPoll = HandleStorage(owner: self)
        uv_check_init(loop, afterPoll.pointer)
        uv_check_start(afterPoll.pointer) { handle in
            LoopActor.assumeIsolated { HandleStorage<uv_check_t>.owner(of: handle, as: TurnLimiter.self)?.startQueued() }
        }
        uv_unref(afterPoll.asHandle)
        keepPolling = HandleStorage(owner: self)
        uv_idle_init(loop, keepPolling.pointer)
    }

    /// Pieces of work waiting for a later turn.
    public var waiting: Int { queued.count - next }

    public func run(_ work: @escaping @LoopActor () -> Void) {
        if waiting == 0 && startedThisTurn < perTurn {
            startedThisTurn += 1
            work()
            return
        }
        queued.append(work)
        // While work waits, the next poll must not block: it only collects what else is ready.
        if !polling && !keepPolling.isClosing {
            polling = true
            uv_idle_start(keepPolling.pointer) { _ in }
        }
    }

    private func startQueued() {
        while startedThisTurn < perTurn && next < queued.count {
            let work = queued[next]
            next += 1
            startedThisTurn += 1
            work()
        }
        if next == queued.count {
            queued.removeAll(keepingCapacity: true)
            next = 0
        } else if next > 1_024 && next * 2 > queued.count {
            queued.removeFirst(next)
            next = 0
        }
        if waiting == 0 && polling {
            polling = false
            uv_idle_stop(keepPolling.pointer)
        }
    }

    /// Drops what still waits and releases the handles.
    public func close() {
        queued.removeAll()
        next = 0
        beforePoll.close()
        afterPoll.close()
        keepPolling.close()
    }
}
