internal import CLibUV
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs Swift concurrency jobs on the libuv loop thread.
///
/// Jobs go into a locked queue. Enqueued from another thread, they wake the loop through one
/// `uv_async_t`. Enqueued on the loop thread itself (a continuation resumed by a socket
/// callback, the common case), they need no wake-up system call: a `uv_check_t` drains the queue
/// right after each round of I/O callbacks, and a `uv_idle_t`, active only while jobs wait, keeps
/// the loop from blocking in the meantime. Being both the serial executor of `LoopActor` and a
/// task executor, it keeps nonisolated async code of a loop task on the loop too.
///
/// Jobs run in the order they were queued, whatever their task's priority: a hold statement's
/// drainer that takes its next holds behind the handlers already queued gets their holds into
/// the same statement (docs/ARCHITECTURE.md).
public final class LoopExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var wakeRequested = false
    }

    private let queue = Mutex(Queue())
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let afterIO: UnsafeMutablePointer<uv_check_t>
    private let keepSpinning: UnsafeMutablePointer<uv_idle_t>
    /// Touched only on the loop thread.
    private var spinning = false
    private var closed = false
    private var spareBatch: [UnownedJob] = []
    /// The loop thread's id, set once before the loop runs (0: not yet).
    private let loopThread = Atomic<UInt>(0)

    init(loop: UnsafeMutablePointer<uv_loop_t>) {
        wakeup = .allocate(capacity: 1)
        afterIO = .allocate(capacity: 1)
        keepSpinning = .allocate(capacity: 1)
        let context = Unmanaged.passUnretained(self).toOpaque()
        uv_async_init(loop, wakeup) { handle in
            guard let handle, let data = handle.pointee.data else { return }
            Unmanaged<LoopExecutor>.fromOpaque(data).takeUnretainedValue().drain()
        }
        wakeup.pointee.data = context
        // The wake-up handle stays referenced: the loop runs until `EventLoop.finish()` closes it.
        uv_check_init(loop, afterIO)
        afterIO.pointee.data = context
        uv_check_start(afterIO) { handle in
            guard let handle, let data = handle.pointee.data else { return }
            Unmanaged<LoopExecutor>.fromOpaque(data).takeUnretainedValue().drain()
        }
        uv_unref(UnsafeMutableRawPointer(afterIO).assumingMemoryBound(to: uv_handle_t.self))
        uv_idle_init(loop, keepSpinning)
        keepSpinning.pointee.data = context
    }

    func bindToCurrentThread() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        if isOnLoopThread {
            queue.withLock { $0.jobs.append(unowned) }
            if !spinning && !closed {
                spinning = true
                uv_idle_start(keepSpinning) { _ in }
            }
            return
        }
        let mustWake = queue.withLock { state -> Bool in
            state.jobs.append(unowned)
            if state.wakeRequested { return false }
            state.wakeRequested = true
            return true
        }
        if mustWake { uv_async_send(wakeup) }
    }

    /// Runs queued jobs, including those they enqueue, for a bounded number of rounds so that
    /// I/O is never starved by a task that keeps yielding.
    private func drain() {
        for _ in 0..<64 {
            var batch = spareBatch
            queue.withLock { state in
                swap(&batch, &state.jobs)
                if batch.isEmpty { state.wakeRequested = false }
            }
            if batch.isEmpty {
                if spinning {
                    spinning = false
                    uv_idle_stop(keepSpinning)
                }
                return
            }
            for job in batch {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            batch.removeAll(keepingCapacity: true)
            spareBatch = batch
        }
        // Still busy: keep the loop from blocking, and come back after the next round of I/O.
        if !spinning && !closed {
            spinning = true
            uv_idle_start(keepSpinning) { _ in }
        }
    }

    var isBound: Bool { loopThread.load(ordering: .acquiring) != 0 }

    public var isOnLoopThread: Bool {
        let thread = loopThread.load(ordering: .acquiring)
        return thread != 0 && pthread_equal(pthread_t(thread), pthread_self()) != 0
    }

    public func checkIsolated() {
        precondition(isOnLoopThread, "Expected to run on the Quorix loop thread")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isOnLoopThread
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(complexEquality: self)
    }

    public func isSameExclusiveExecutionContext(other: LoopExecutor) -> Bool {
        self === other
    }

    /// Closes the wake-up handle; called once, at shutdown, on the loop thread.
    func close() {
        closed = true
        for handle in [
            UnsafeMutableRawPointer(wakeup), UnsafeMutableRawPointer(afterIO), UnsafeMutableRawPointer(keepSpinning),
        ] {
            uv_close(handle.assumingMemoryBound(to: uv_handle_t.self)) { $0?.deallocate() }
        }
    }
}
