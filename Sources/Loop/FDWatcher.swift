internal import CLibUV

/// Watches a file descriptor owned by someone else (libpq's socket) with a `uv_poll_t`.
///
/// The interest is recomputed by the owner on every change (`watch(readable:writable:)`), never
/// patched: a write interest must not replace the read interest.
@LoopActor
public final class FDWatcher {
    public struct Events: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int32(UV_READABLE.rawValue))
        public static let writable = Events(rawValue: Int32(UV_WRITABLE.rawValue))
        public static let disconnect = Events(rawValue: Int32(UV_DISCONNECT.rawValue))
    }

    private var storage: HandleStorage<uv_poll_t>!
    private var callback: (@LoopActor (Result<Events, UVError>) -> Void)?
    public let fileDescriptor: Int32
    private var interest: Events = []

    public init(fileDescriptor: Int32, _ callback: @escaping @LoopActor (Result<Events, UVError>) -> Void) throws(UVError) {
        self.fileDescriptor = fileDescriptor
        self.callback = callback
        storage = HandleStorage(owner: self)
        let status = uv_poll_init(EventLoop.shared.uvLoop, storage.pointer, fileDescriptor)
        if status < 0 {
            self.callback = nil
            storage.discardUninitialized()
            throw UVError(status)
        }
    }

    public func watch(readable: Bool, writable: Bool) {
        guard !storage.isClosing else { return }
        var events: Events = []
        if readable { events.insert(.readable) }
        if writable { events.insert(.writable) }
        if events == interest { return }
        interest = events
        if events.isEmpty {
            uv_poll_stop(storage.pointer)
            return
        }
        uv_poll_start(storage.pointer, events.rawValue | Events.disconnect.rawValue) { poll, status, events in
            LoopActor.assumeIsolated {
                guard let watcher = HandleStorage<uv_poll_t>.owner(of: poll, as: FDWatcher.self) else { return }
                watcher.callback?(status < 0 ? .failure(UVError(status)) : .success(Events(rawValue: events)))
            }
        }
    }

    /// Stops watching; must happen before the descriptor's owner closes it (PQfinish).
    public func close() {
        callback = nil
        if !storage.isClosing { uv_poll_stop(storage.pointer) }
        storage.close()
    }
}
