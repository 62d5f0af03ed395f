internal import CLibUV
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The process's one libuv loop.
///
/// `run()` blocks the calling thread until `finish()` has been called and every handle is closed;
/// `startThread()` does the same on a thread of its own (tests, tools).
public final class EventLoop: @unchecked Sendable {
    public static let shared = EventLoop()

    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    let executor: LoopExecutor
    private let state = Mutex(RunState.created)
    private let threadStarted = Mutex(false)
    /// Touched only on the loop thread (`finish()`, and `run()` after `uv_run` returned).
    private var shutdownWatchdog: UnsafeMutablePointer<uv_timer_t>?

    private enum RunState { case created, running, finished }

    private init() {
        // Writing to a socket the peer closed must be an error to handle, not a process kill.
        signal(SIGPIPE, SIG_IGN)
        uvLoop = .allocate(capacity: 1)
        let status = uv_loop_init(uvLoop)
        precondition(status == 0, "uv_loop_init failed: \(UVError(status))")
        executor = LoopExecutor(loop: uvLoop)
    }

    /// Runs the loop on the calling thread; returns after `finish()` once the last handle closed.
    /// Returns the number of handles libuv still knew of when the loop was closed (0 when clean).
    @discardableResult
    public func run() -> Int {
        state.withLock { state in
            precondition(state == .created, "the event loop runs once")
            state = .running
        }
        executor.bindToCurrentThread()
        uv_run(uvLoop, UV_RUN_DEFAULT)
        if let watchdog = shutdownWatchdog {
            // The loop ended (cleanly or by the watchdog): close the watchdog itself, then let
            // libuv run the close callbacks still pending.
            uv_close(UnsafeMutableRawPointer(watchdog).assumingMemoryBound(to: uv_handle_t.self)) { $0?.deallocate() }
            uv_run(uvLoop, UV_RUN_NOWAIT)
        }
        let leftover = countHandles()
        let closeStatus = uv_loop_close(uvLoop)
        state.withLock { $0 = .finished }
        return closeStatus == 0 ? 0 : max(leftover, 1)
    }

    /// Starts `run()` on a new thread and returns once the loop accepts work.
    ///
    /// Idempotent: every test target in the one test process starts the loop for itself, and the
    /// second `run()` would trap.
    public func startThread() {
        let first = threadStarted.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        if first {
            let thread = Thread { [self] in
                self.run()
            }
            thread.start()
        }
        while !executor.isBound { usleep(100) }
    }

    /// Lets the loop end once every other handle is closed. Call on the loop thread, after closing
    /// the server's own handles.
    @LoopActor
    public func finish(graceMilliseconds: UInt64 = 5_000) {
        executor.close()
        // A handle someone forgot to close would keep uv_run going for ever; after a grace period
        // the loop is stopped anyway and `run()` reports what was left open.
        let watchdog = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        uv_timer_init(uvLoop, watchdog)
        uv_timer_start(watchdog, { timer in
            guard let timer else { return }
            uv_stop(timer.pointee.loop)
        }, graceMilliseconds, 0)
        uv_unref(UnsafeMutableRawPointer(watchdog).assumingMemoryBound(to: uv_handle_t.self))
        shutdownWatchdog = watchdog
    }

    /// Handles libuv still tracks (open or closing), with their type names: the proof, at shutdown,
    /// that nothing was left open.
    @LoopActor
    public func openHandles() -> [String] {
        let names = UnsafeMutablePointer<[String]>.allocate(capacity: 1)
        names.initialize(to: [])
        defer { names.deinitialize(count: 1); names.deallocate() }
        uv_walk(uvLoop, { handle, arg in
            guard let handle, let arg else { return }
            let type = String(cString: uv_handle_type_name(handle.pointee.type))
            let closing = uv_is_closing(handle) != 0
            arg.assumingMemoryBound(to: [String].self).pointee.append(closing ? "\(type) (closing)" : type)
        }, names)
        return names.pointee
    }

    private func countHandles() -> Int {
        var count = 0
        withUnsafeMutablePointer(to: &count) { pointer in
            uv_walk(uvLoop, { _, arg in arg?.assumingMemoryBound(to: Int.self).pointee += 1 }, pointer)
        }
        return count
    }

    /// The loop's cached time in milliseconds (monotonic).
    @LoopActor
    public var nowMilliseconds: UInt64 { uv_now(uvLoop) }

    /// Monotonic high-resolution time in nanoseconds.
    public static func hrtime() -> UInt64 { uv_hrtime() }
}

/// A minimal thread: the loop gets a thread of its own without Foundation.
private final class Thread: @unchecked Sendable {
    private let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let thread = Unmanaged<Thread>.fromOpaque(context!).takeRetainedValue()
            thread.body()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
        pthread_detach(thread)
    }
}

extension EventLoop {
    /// Starts a task on the loop: its `@LoopActor` code and any nonisolated async code it calls
    /// run on the loop thread.
    @discardableResult
    public static func spawn(_ operation: sending @escaping @LoopActor () async -> Void) -> Task<Void, Never> {
        Task(executorPreference: shared.executor, operation: operation)
    }

    /// Like `spawn`, but asks to start the task at once, in the caller's stack, until its first
    /// suspension. Swift 6.3 still queues a task that carries an executor preference (a test
    /// records this as a known issue); on the loop thread that queueing costs no system call
    /// (see `LoopExecutor`). The preference is kept: without it, code such as `@concurrent`
    /// functions called by a handler could leave the loop.
    @discardableResult
    public static func spawnImmediately(_ operation: sending @escaping @LoopActor () async -> Void) -> Task<Void, Never> {
        Task.immediate(executorPreference: shared.executor, operation: operation)
    }
}
