public import Loop

/// The body of a streamed response (server-sent events), written as HTTP/1.1 chunks.
///
/// Writes never wait: the bytes queue in the socket. A writer that must not buffer without
/// bound (a slow reader) watches `pendingBytes` and closes.
@LoopActor
public final class ResponseStream {
    private let tcp: TCPStream
    private let closeConnection: @LoopActor () -> Void
    public private(set) var isClosed = false
    /// The client went away, the stream was closed, or the server is shutting down.
    public var onClose: (@LoopActor () -> Void)?

    init(tcp: TCPStream, closeConnection: @escaping @LoopActor () -> Void) {
        self.tcp = tcp
        self.closeConnection = closeConnection
    }

    /// Bytes written and not yet taken by the kernel.
    public var pendingBytes: Int { tcp.pendingWriteBytes }

    /// Sends `bytes` as one chunk.
    public func write(_ bytes: [UInt8]) {
        guard !isClosed, !bytes.isEmpty else { return }
        var chunk = Array(String(bytes.count, radix: 16).utf8)
        chunk.reserveCapacity(chunk.count + bytes.count + 4)
        chunk.append(contentsOf: [13, 10])
        chunk.append(contentsOf: bytes)
        chunk.append(contentsOf: [13, 10])
        tcp.write(chunk) { [weak self] error in
            if error != nil { self?.close() }
        }
    }

    /// Ends the body (the last chunk), then closes the connection once it is written.
    public func finish() {
        guard !isClosed else { return }
        tcp.write(Array("0\r\n\r\n".utf8)) { [weak self] _ in self?.close() }
    }

    /// Closes the connection now; queued bytes are dropped.
    public func close() {
        guard !isClosed else { return }
        closeConnection()
    }

    /// The connection closed (for any reason).
    func connectionClosed() {
        guard !isClosed else { return }
        isClosed = true
        let callback = onClose
        onClose = nil
        callback?()
    }
}
