import Loop

/// One client connection: bytes in through the parser, one request at a time to the responder,
/// responses out in request order.
@LoopActor
final class HTTPConnection {
    private let stream: TCPStream
    private unowned let server: HTTPServer
    private let parser: RequestParser
    private let timer = LoopTimer()
    private var armedDeadline: UInt64?
    private var lifecycle: ConnectionLifecycle
    /// Bytes received while a request is being answered (pipelining), parsed afterwards.
    private var pending: [UInt8] = []
    private var busy = false
    private var closeAfterResponse = false
    private var peerClosed = false
    private var continuing = false
    private let remoteAddress: String
    /// A streamed response in progress: the connection is its until it ends.
    private var streaming: ResponseStream?

    /// Past this many unparsed bytes, stop reading from the socket until they are handled.
    private static let pendingLimit = 256 * 1024

    init(stream: TCPStream, server: HTTPServer) {
        self.stream = stream
        self.server = server
        remoteAddress = stream.peerAddress
        let responder = server.responder
        parser = RequestParser(maxHeaderBytes: server.configuration.maxHeaderBytes) { head in
            responder.bodyLimit(for: head)
        }
        lifecycle = ConnectionLifecycle(
            now: EventLoop.shared.nowMilliseconds,
            idleTimeout: server.configuration.idleTimeoutMilliseconds,
            requestTimeout: server.configuration.requestTimeoutMilliseconds)
        parser.onHead = { head in
            // Tell a client waiting before it sends a large body to go ahead (RFC 9110 §10.1.1).
            if head.expectsContinue && head.versionMinor >= 1 {
                stream.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            }
        }
    }

    func start() {
        perform(.arm(deadline: lifecycle.deadline!))
        stream.startReading(
            onRead: { [unowned self] bytes in self.received(bytes) },
            onReadEnd: { [unowned self] _ in self.peerFinished() })
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        // A stream's client has nothing more to say; reading on only notices it leaving.
        if streaming != nil { return }
        perform(lifecycle.bytesReceived(now: EventLoop.shared.nowMilliseconds))
        if busy || !pending.isEmpty {
            pending.append(contentsOf: bytes)
            if pending.count > HTTPConnection.pendingLimit { stream.pauseReading() }
            return
        }
        parse(bytes)
    }

    /// Parses until a request is complete (the rest waits in `pending`), or the bytes run out.
    private func parse(_ bytes: UnsafeRawBufferPointer) {
        let (consumed, outcome) = parser.parse(bytes)
        switch outcome {
        case .needMoreData:
            return
        case .request(var request):
            if consumed < bytes.count {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
            request.remoteAddress = remoteAddress
            handle(request)
        case .failed(let error):
            let message: String
            switch error {
            case .malformed(let reason): message = "The request is not valid HTTP/1.1: \(reason)."
            case .headerSectionTooLarge(let limit): message = "The request line and headers exceed \(limit) bytes."
            case .bodyTooLarge(let limit): message = "The request body exceeds \(limit) bytes for this endpoint."
            }
            closeAfterResponse = true
            busy = true
            write(server.responder.errorResponse(status: error.status, message: message), keepAlive: false, isHead: false)
        }
    }

    private func handle(_ request: HTTPRequest) {
        busy = true
        perform(lifecycle.requestReceived())
        let responder = server.responder
        // Starts on the loop (at once unless this turn has started its share of requests): a
        // handler that never suspends answers there, without a trip through the executor's queue.
        let start = { @LoopActor [self] () -> Void in
            _ = EventLoop.spawnImmediately { [self] in
                let response = await responder.respond(to: request)
                let keepAlive = request.head.keepAlive && !response.closeConnection && !closeAfterResponse && !server.isDraining
                write(response, keepAlive: keepAlive, isHead: request.method == "HEAD")
            }
        }
        if let admission = server.admission { admission.run(start) } else { start() }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, isHead: Bool) {
        if let start = response.stream, !isHead, !stream.isClosed {
            startStream(response, start)
            return
        }
        let bytes = response.serialize(keepAlive: keepAlive, date: server.date, isHeadRequest: isHead)
        stream.write(bytes) { [weak self] error in
            guard let self else { return }
            self.busy = false
            if error != nil || !keepAlive || self.peerClosed && self.pending.isEmpty {
                self.close()
                return
            }
            self.perform(self.lifecycle.responseSent(now: EventLoop.shared.nowMilliseconds, moreBuffered: !self.pending.isEmpty))
            self.continueWithPending()
        }
    }

    /// Writes the head, then hands the body to the handler's stream. A stream is the
    /// connection's last response: it ends by closing the connection.
    private func startStream(_ response: HTTPResponse, _ start: @LoopActor (ResponseStream) -> Void) {
        let body = ResponseStream(tcp: stream) { [weak self] in self?.close() }
        streaming = body
        stream.write(response.serialize(keepAlive: false, date: server.date, isHeadRequest: false)) { [weak self] error in
            if error != nil { self?.close() }
        }
        start(body)
    }

    /// Answers requests already buffered. Iterative: a response completed synchronously calls
    /// back in here, and many pipelined requests must not become as many nested calls.
    private func continueWithPending() {
        if continuing { return }
        continuing = true
        defer { continuing = false }
        while !busy && !stream.isClosed && !pending.isEmpty {
            let buffered = pending
            pending = []
            buffered.withUnsafeBytes { parse($0) }
        }
        if !busy && !stream.isClosed {
            if peerClosed {
                close()
            } else {
                stream.resumeReading()
            }
        }
    }

    private func peerFinished() {
        peerClosed = true
        if streaming != nil || !busy && pending.isEmpty { close() }
    }

    /// Draining: close now if nothing is in flight, otherwise after the current response.
    func closeWhenIdle() {
        closeAfterResponse = true
        if let streaming {
            streaming.finish()
            return
        }
        // A request that started arriving is in flight too: it gets its answer.
        if !busy && pending.isEmpty && !parser.isMidRequest { close() }
    }

    private func perform(_ action: ConnectionLifecycle.Action) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            if let armed = armedDeadline, armed <= deadline { return }
            armedDeadline = deadline
            let now = EventLoop.shared.nowMilliseconds
            timer.start(after: deadline > now ? deadline - now : 0) { [weak self] in self?.timerFired() }
        case .close(let requestTimedOut):
            if requestTimedOut && !busy {
                busy = true
                closeAfterResponse = true
                write(server.responder.errorResponse(status: 408, message: "The request was not received in time."), keepAlive: false, isHead: false)
            } else {
                close()
            }
        }
    }

    private func timerFired() {
        armedDeadline = nil
        perform(lifecycle.timerFired(now: EventLoop.shared.nowMilliseconds))
    }

    func close() {
        guard !stream.isClosed else { return }
        lifecycle.closed()
        timer.close()
        stream.close()
        streaming?.connectionClosed()
        streaming = nil
        server.connectionClosed(self)
    }
}
