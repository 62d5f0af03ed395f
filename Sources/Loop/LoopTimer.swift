internal import CLibUV

/// A libuv timer. Re-arming is `start` again; `close()` releases it.
@LoopActor
public final class LoopTimer {
    private var storage: HandleStorage<uv_timer_t>!
    private var callback: (@LoopActor () -> Void)?

    public init() {
        storage = HandleStorage(owner: self)
        uv_timer_init(EventLoop.shared.uvLoop, storage.pointer)
    }

    /// Fires once after `milliseconds`, then every `repeatMilliseconds` if that is non-zero.
    public func start(after milliseconds: UInt64, repeat repeatMilliseconds: UInt64 = 0, _ callback: @escaping @LoopActor () -> Void) {
        guard !storage.isClosing else { return }
        self.callback = callback
        uv_timer_start(storage.pointer, { timer in
            LoopActor.assumeIsolated {
                HandleStorage<uv_timer_t>.owner(of: timer, as: LoopTimer.self)?.callback?()
            }
        }, milliseconds, repeatMilliseconds)
    }

    public func stop() {
        guard !storage.isClosing else { return }
        uv_timer_stop(storage.pointer)
    }

    /// A timer that must not keep the loop alive by itself (a backstop, a watchdog).
    public func unref() {
        uv_unref(storage.asHandle)
    }

    public var isClosed: Bool { storage.isClosing }

    public func close() {
        callback = nil
        storage.close()
    }
}

extension EventLoop {
    /// Suspends the calling loop task for `milliseconds` without blocking the loop.
    @LoopActor
    public static func sleep(milliseconds: UInt64) async {
        let timer = LoopTimer()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            timer.start(after: milliseconds) {
                continuation.resume()
            }
        }
        timer.close()
    }
}
