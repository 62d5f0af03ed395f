internal import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket that hands each accepted connection to `onConnection`.
@LoopActor
public final class TCPListener {
    private var storage: HandleStorage<uv_tcp_t>!
    private var onConnection: (@LoopActor (TCPStream) -> Void)?
    private var onAcceptError: (@LoopActor (UVError) -> Void)?

    /// Binds and listens on `host:port` (port 0 picks a free one; see `port`).
    public init(
        host: String, port: Int, backlog: Int32 = 1024,
        onAcceptError: @escaping @LoopActor (UVError) -> Void = { _ in },
        onConnection: @escaping @LoopActor (TCPStream) -> Void
    ) throws(UVError) {
        self.onConnection = onConnection
        self.onAcceptError = onAcceptError
        storage = HandleStorage(owner: self)
        uv_tcp_init(EventLoop.shared.uvLoop, storage.pointer)
        do {
            var address = sockaddr_storage()
            try SocketAddress.parse(host: host, port: port, into: &address)
            try withUnsafePointer(to: &address) { pointer throws(UVError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(UVError) in
                    try check(uv_tcp_bind(storage.pointer, address, 0))
                }
            }
            try check(uv_listen(storage.asStream, backlog) { server, status in
                LoopActor.assumeIsolated {
                    HandleStorage<uv_tcp_t>.owner(of: UnsafeMutableRawPointer(server)?.assumingMemoryBound(to: uv_tcp_t.self), as: TCPListener.self)?
                        .accept(status: status)
                }
            })
        } catch {
            close()
            throw error
        }
    }

    /// The port actually bound (useful after binding port 0).
    public var port: Int {
        var address = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                _ = uv_tcp_getsockname(storage.pointer, address, &length)
            }
        }
        return SocketAddress.port(of: address)
    }

    private func accept(status: Int32) {
        guard status >= 0 else {
            onAcceptError?(UVError(status))
            return
        }
        let stream = TCPStream()
        let accepted = uv_accept(storage.asStream, stream.storage.asStream)
        guard accepted == 0 else {
            stream.close()
            onAcceptError?(UVError(accepted))
            return
        }
        uv_tcp_nodelay(stream.storage.pointer, 1)
        onConnection?(stream)
    }

    public func close() {
        onConnection = nil
        storage.close()
    }
}

/// A connected TCP socket: reads delivered as they arrive, writes queued in order.
@LoopActor
public final class TCPStream {
    fileprivate var storage: HandleStorage<uv_tcp_t>!
    private var onRead: (@LoopActor (UnsafeRawBufferPointer) -> Void)?
    private var onReadEnd: (@LoopActor (UVError) -> Void)?
    private var closeCallbacks: [@LoopActor () -> Void] = []
    public private(set) var isReading = false

    fileprivate init() {
        storage = HandleStorage(owner: self)
        uv_tcp_init(EventLoop.shared.uvLoop, storage.pointer)
    }

    /// Connects to `host:port` (a client for tests, tools and webhooks). `whileConnecting` is
    /// given the stream before the connection is made, so a caller can close it to abandon a
    /// connect that is taking too long (the connect then fails with `ECANCELED`).
    public static func connect(
        host: String, port: Int, whileConnecting: (@LoopActor (TCPStream) -> Void)? = nil
    ) async throws(UVError) -> TCPStream {
        let stream = TCPStream()
        whileConnecting?(stream)
        var address = sockaddr_storage()
        do {
            try SocketAddress.parse(host: host, port: port, into: &address)
        } catch {
            stream.close()
            throw error
        }
        let status: Int32 = await withCheckedContinuation { continuation in
            let request = ConnectRequest(continuation)
            let pointer = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
            pointer.pointee.data = Unmanaged.passRetained(request).toOpaque()
            let started = withUnsafePointer(to: &address) { address in
                address.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    uv_tcp_connect(pointer, stream.storage.pointer, address) { request, status in
                        guard let request else { return }
                        let pending = Unmanaged<ConnectRequest>.fromOpaque(request.pointee.data).takeRetainedValue()
                        request.deallocate()
                        pending.continuation.resume(returning: status)
                    }
                }
            }
            if started < 0 {
                Unmanaged<ConnectRequest>.fromOpaque(pointer.pointee.data).release()
                pointer.deallocate()
                continuation.resume(returning: started)
            }
        }
        if status < 0 {
            stream.close()
            throw UVError(status)
        }
        uv_tcp_nodelay(stream.storage.pointer, 1)
        return stream
    }

    /// Delivers bytes until EOF or an error (`onReadEnd`). The buffer is valid only during the call.
    public func startReading(
        onRead: @escaping @LoopActor (UnsafeRawBufferPointer) -> Void,
        onReadEnd: @escaping @LoopActor (UVError) -> Void
    ) {
        self.onRead = onRead
        self.onReadEnd = onReadEnd
        resumeReading()
    }

    /// Backpressure: stop taking bytes from the socket until `resumeReading()`.
    public func pauseReading() {
        guard isReading, !storage.isClosing else { return }
        isReading = false
        uv_read_stop(storage.asStream)
    }

    public func resumeReading() {
        guard !isReading, !storage.isClosing, onRead != nil else { return }
        isReading = true
        uv_read_start(storage.asStream, { _, suggested, buffer in
            // Reads are handled synchronously in the read callback, so one buffer serves the loop.
            buffer?.pointee = uv_buf_init(ReadBuffer.shared.base, UInt32(ReadBuffer.size))
        }, { stream, count, buffer in
            LoopActor.assumeIsolated {
                let tcp = UnsafeMutableRawPointer(stream)?.assumingMemoryBound(to: uv_tcp_t.self)
                guard let owner = HandleStorage<uv_tcp_t>.owner(of: tcp, as: TCPStream.self) else { return }
                if count > 0, let base = buffer?.pointee.base {
                    owner.onRead?(UnsafeRawBufferPointer(start: base, count: count))
                } else if count < 0 {
                    owner.isReading = false
                    uv_read_stop(owner.storage.asStream)
                    owner.onReadEnd?(UVError(Int32(count)))
                }
            }
        })
    }

    /// Queues `bytes` for writing; `completion` runs once they were handed to the kernel (or failed).
    public func write(_ bytes: [UInt8], completion: (@LoopActor (UVError?) -> Void)? = nil) {
        guard !storage.isClosing else {
            completion?(UVError.cancelled)
            return
        }
        var offset = 0
        // Most responses fit the socket buffer: try a direct write first, queue only the rest.
        if uv_stream_get_write_queue_size(storage.asStream) == 0, !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { raw -> Int32 in
                var buffer = uv_buf_init(UnsafeMutablePointer(mutating: raw.baseAddress!.assumingMemoryBound(to: CChar.self)), UInt32(raw.count))
                return uv_try_write(storage.asStream, &buffer, 1)
            }
            if written > 0 {
                offset = Int(written)
            } else if written < 0 && written != Int32(UV_EAGAIN.rawValue) {
                completion?(UVError(written))
                return
            }
        }
        if offset == bytes.count {
            completion?(nil)
            return
        }
        let request = WriteRequest(bytes: bytes, offset: offset, completion: completion)
        let status = uv_write(request.request, storage.asStream, &request.buffer, 1) { request, status in
            guard let request, let data = request.pointee.data else { return }
            let pending = Unmanaged<WriteRequest>.fromOpaque(data).takeRetainedValue()
            LoopActor.assumeIsolated {
                pending.completion?(status < 0 ? UVError(status) : nil)
            }
        }
        if status < 0 {
            Unmanaged<WriteRequest>.fromOpaque(request.request.pointee.data).release()
            completion?(UVError(status))
        }
    }

    /// Bytes written but not yet taken by the kernel (for slow-reader cut-offs).
    public var pendingWriteBytes: Int { storage.isClosing ? 0 : uv_stream_get_write_queue_size(storage.asStream) }

    public var isClosed: Bool { storage.isClosing }

    /// The peer's address as `ip:port`.
    public var peerAddress: String {
        var address = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                _ = uv_tcp_getpeername(storage.pointer, address, &length)
            }
        }
        return SocketAddress.describe(address)
    }

    public func onClose(_ callback: @escaping @LoopActor () -> Void) {
        closeCallbacks.append(callback)
    }

    /// Closes the socket; queued writes are cancelled. To finish writing first, close from the
    /// completion of the last write.
    public func close() {
        guard !storage.isClosing else { return }
        onRead = nil
        onReadEnd = nil
        storage.close()
        let callbacks = closeCallbacks
        closeCallbacks = []
        for callback in callbacks { callback() }
    }
}

private final class ConnectRequest {
    let continuation: CheckedContinuation<Int32, Never>
    init(_ continuation: CheckedContinuation<Int32, Never>) { self.continuation = continuation }
}

/// A queued write: owns its bytes until libuv calls back.
private final class WriteRequest {
    let request: UnsafeMutablePointer<uv_write_t>
    let bytes: UnsafeMutableRawBufferPointer
    var buffer: uv_buf_t
    let completion: (@LoopActor (UVError?) -> Void)?

    init(bytes source: [UInt8], offset: Int, completion: (@LoopActor (UVError?) -> Void)?) {
        let count = source.count - offset
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        source.withUnsafeBytes { raw in
            bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset...]))
        }
        self.bytes = bytes
        buffer = uv_buf_init(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(count))
        request = .allocate(capacity: 1)
        self.completion = completion
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        bytes.deallocate()
        request.deallocate()
    }
}

/// The loop's one read buffer.
private final class ReadBuffer: @unchecked Sendable {
    static let size = 65_536
    static let shared = ReadBuffer()
    let base = UnsafeMutablePointer<CChar>.allocate(capacity: ReadBuffer.size)
}

enum SocketAddress {
    static func parse(host: String, port: Int, into storage: inout sockaddr_storage) throws(UVError) {
        guard (0...65_535).contains(port) else { throw UVError(Int32(UV_EINVAL.rawValue)) }
        let status = withUnsafeMutablePointer(to: &storage) { pointer -> Int32 in
            if host.contains(":") {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_addr(host, Int32(port), $0) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(host, Int32(port), $0) }
        }
        try check(status)
    }

    static func port(of storage: sockaddr_storage) -> Int {
        var storage = storage
        let family = Int32(storage.ss_family)
        return withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    static func describe(_ storage: sockaddr_storage) -> String {
        var storage = storage
        var name = [CChar](repeating: 0, count: 64)
        let family = Int32(storage.ss_family)
        withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET6 {
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { _ = uv_ip6_name($0, &name, name.count) }
            } else {
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { _ = uv_ip4_name($0, &name, name.count) }
            }
        }
        let host = String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(host)]:\(port(of: storage))" : "\(host):\(port(of: storage))"
    }
}
