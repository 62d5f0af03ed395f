internal import CLibUV

/// Memory for one libuv handle whose life is owned by a Swift object.
///
/// The owner is retained when the handle is created and released only in the close callback,
/// after libuv is done with the memory: the one place where `Unmanaged` lifetimes are managed.
struct HandleStorage<Handle> {
    let pointer: UnsafeMutablePointer<Handle>
    /// Kept here, not read from the handle: once the close callback has run, the memory is freed
    /// (and soon reused by another handle), while the owner may still be asked or closed again.
    private(set) var isClosing = false

    init<Owner: AnyObject>(owner: Owner) {
        pointer = .allocate(capacity: 1)
        asHandle.pointee.data = Unmanaged.passRetained(owner).toOpaque()
        OpenHandles.opened()
    }

    var asHandle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: uv_handle_t.self)
    }

    var asStream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: uv_stream_t.self)
    }

    /// Closes the handle; the owner is released and the memory freed in the close callback.
    mutating func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(asHandle) { handle in
            guard let handle else { return }
            if let data = handle.pointee.data {
                Unmanaged<AnyObject>.fromOpaque(data).release()
            }
            handle.deallocate()
            OpenHandles.closed()
        }
    }

    /// Frees a handle whose `uv_*_init` failed: libuv never saw it, so there is nothing to close.
    mutating func discardUninitialized() {
        isClosing = true
        if let data = asHandle.pointee.data {
            Unmanaged<AnyObject>.fromOpaque(data).release()
        }
        pointer.deallocate()
        OpenHandles.closed()
    }

    static func owner<Owner: AnyObject>(of handle: UnsafeMutablePointer<Handle>?, as: Owner.Type) -> Owner? {
        guard let handle else { return nil }
        let raw = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)
        guard let data = raw.pointee.data else { return nil }
        return Unmanaged<Owner>.fromOpaque(data).takeUnretainedValue()
    }
}

/// How many handles Quorix opened and has not yet seen closed (a gauge for tests and metrics).
public enum OpenHandles {
    nonisolated(unsafe) private static var count = 0

    static func opened() { count += 1 }
    static func closed() { count -= 1 }

    /// Read on the loop thread.
    @LoopActor public static var current: Int { count }
}
