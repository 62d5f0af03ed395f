internal import CLibUV

/// Delivers a POSIX signal (SIGTERM, SIGINT) as a loop callback.
@LoopActor
public final class SignalWatcher {
    private var storage: HandleStorage<uv_signal_t>!
    private var callback: (@LoopActor (Int32) -> Void)?

    public init(signal: Int32, _ callback: @escaping @LoopActor (Int32) -> Void) throws(UVError) {
        self.callback = callback
        storage = HandleStorage(owner: self)
        uv_signal_init(EventLoop.shared.uvLoop, storage.pointer)
        try check(uv_signal_start(storage.pointer, { handle, signal in
            LoopActor.assumeIsolated {
                HandleStorage<uv_signal_t>.owner(of: handle, as: SignalWatcher.self)?.callback?(signal)
            }
        }, signal))
        // Waiting for a signal is no reason to keep the loop running.
        uv_unref(storage.asHandle)
    }

    public func close() {
        callback = nil
        storage.close()
    }
}
