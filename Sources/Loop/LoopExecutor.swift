internal import CLibUV
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs Swift concurrency jobs on the libuv loop thread.
///
/// Other threads (and the loop thread itself) enqueue jobs into a locked queue; one `uv_async_t`
/// wakes the loop, which drains the queue between I/O callbacks. Being both the serial executor of
/// `LoopActor` and a task executor, it keeps nonisolated async code of a loop task on the loop too.
public final class LoopExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var wakeRequested = false
    }

    private let queue = Mutex(Queue())
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let loopThread: Mutex<pthread_t?> = Mutex(nil)

    init(loop: UnsafeMutablePointer<uv_loop_t>) {
        wakeup = .allocate(capacity: 1)
        uv_async_init(loop, wakeup) { handle in
            guard let handle, let data = handle.pointee.data else { return }
            Unmanaged<LoopExecutor>.fromOpaque(data).takeUnretainedValue().drain()
        }
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // The wake-up handle stays referenced: the loop runs until `EventLoop.finish()` closes it.
    }

    func bindToCurrentThread() {
        loopThread.withLock { $0 = pthread_self() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
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
            let batch = queue.withLock { state -> [UnownedJob] in
                let jobs = state.jobs
                state.jobs.removeAll(keepingCapacity: true)
                if jobs.isEmpty { state.wakeRequested = false }
                return jobs
            }
            if batch.isEmpty { return }
            for job in batch {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
        }
        // Still busy: come back after the next round of I/O.
        uv_async_send(wakeup)
    }

    var isBound: Bool { loopThread.withLock { $0 != nil } }

    public var isOnLoopThread: Bool {
        loopThread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
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
        uv_close(UnsafeMutableRawPointer(wakeup).assumingMemoryBound(to: uv_handle_t.self)) { handle in
            handle?.deallocate()
        }
    }
}
