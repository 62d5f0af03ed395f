public import Loop

/// Why an HTTP client request got no response.
public enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    case connectFailed(UVError)
    case writeFailed(UVError)
    /// The whole exchange (connect, request, response) took longer than its timeout.
    case timedOut(milliseconds: UInt64)
    /// The peer closed the connection (or it broke) before a whole response arrived.
    case closedEarly(UVError?)
    case malformedResponse(ResponseFramer.FramingError)
    case cancelled

    public var description: String {
        switch self {
        case .connectFailed(let error): "connect failed: \(error)"
        case .writeFailed(let error): "sending the request failed: \(error)"
        case .timedOut(let milliseconds): "no response within \(milliseconds) ms"
        case .closedEarly(let error): "the connection closed before a whole response arrived\(error.map { " (\($0))" } ?? "")"
        case .malformedResponse(let error): "the response is not valid HTTP/1.1 (\(error))"
        case .cancelled: "cancelled"
        }
    }
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`), for webhook
/// deliveries: connect to an IP address, write the request, frame the response, all within one
/// timeout. `cancel()` abandons it at any point and closes what it opened.
///
/// Only the status matters to the caller when the response is not framed by `Content-Length`
/// (chunked, or ended by closing): its status is still reported, with an empty body.
@LoopActor
public final class HTTPClientRequest {
    public let method: String
    /// For the `Host` header: the name the URL gave, which may differ from the address dialled.
    public let host: String
    public let port: Int
    public let path: String
    public let headers: [(String, String)]
    public let body: [UInt8]
    public let timeoutMilliseconds: UInt64

    private var stream: TCPStream?
    private var timer: LoopTimer?
    private var framer = ResponseFramer()
    /// The start of what arrived, to read the status of a response the framer cannot frame.
    private var head: [UInt8] = []
    private var continuation: CheckedContinuation<Result<ResponseFramer.Response, HTTPClientError>, Never>?
    private var finished = false

    public init(
        method: String, host: String, port: Int, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
        timeoutMilliseconds: UInt64
    ) {
        self.method = method
        self.host = host
        self.port = port
        self.path = path
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The request's bytes: request line, `Host`, the caller's headers, `Content-Length`,
    /// `Connection: close`, body.
    public var serialized: [UInt8] {
        let name = host.contains(":") ? "[\(host)]" : host
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(port == 80 ? name : "\(name):\(port)")\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(text.utf8) + body
    }

    /// Sends the request to `address` (an IP literal) and waits for the response. Runs once.
    public func send(toAddress address: String) async -> Result<ResponseFramer.Response, HTTPClientError> {
        precondition(continuation == nil, "an HTTPClientRequest is sent once")
        if finished { return .failure(.cancelled) }
        return await withCheckedContinuation { continuation in
            self.continuation = continuation
            let timer = LoopTimer()
            self.timer = timer
            timer.start(after: timeoutMilliseconds) { [weak self] in
                guard let self else { return }
                self.finish(.failure(.timedOut(milliseconds: self.timeoutMilliseconds)))
            }
            EventLoop.spawn { await self.connect(address) }
        }
    }

    /// Abandons the request: nothing more is read or written, and `send` returns `.cancelled`.
    public func cancel() {
        finish(.failure(.cancelled))
    }

    private func connect(_ address: String) async {
        do {
            let stream = try await TCPStream.connect(host: address, port: port) { [weak self] stream in
                // Held while connecting, so that a timeout or a cancel can close it.
                self?.stream = stream
            }
            guard !finished else {
                stream.close()
                return
            }
            stream.startReading(
                onRead: { [weak self] bytes in self?.received(bytes) },
                onReadEnd: { [weak self] error in self?.readEnded(error) })
            stream.write(serialized) { [weak self] error in
                if let error { self?.finish(.failure(.writeFailed(error))) }
            }
        } catch {
            finish(.failure(.connectFailed(error)))
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if head.count < 16 { head.append(contentsOf: bytes.prefix(16 - head.count)) }
        do {
            if let response = try framer.feed(bytes).first { finish(.success(response)) }
        } catch .unsupportedFraming {
            if let status = statusOfHead() {
                finish(.success(ResponseFramer.Response(status: status, body: [])))
            } else {
                finish(.failure(.malformedResponse(.unsupportedFraming)))
            }
        } catch {
            finish(.failure(.malformedResponse(error)))
        }
    }

    private func readEnded(_ error: UVError) {
        finish(.failure(.closedEarly(error.isEndOfFile ? nil : error)))
    }

    /// "HTTP/1.1 200 ..." → 200.
    private func statusOfHead() -> Int? {
        guard head.count >= 12, head.starts(with: Array("HTTP/1.".utf8)) else { return nil }
        let digits = head[9..<12]
        guard digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    private func finish(_ outcome: Result<ResponseFramer.Response, HTTPClientError>) {
        guard !finished else { return }
        finished = true
        timer?.close()
        timer = nil
        stream?.close()
        stream = nil
        let waiting = continuation
        continuation = nil
        waiting?.resume(returning: outcome)
    }
}
