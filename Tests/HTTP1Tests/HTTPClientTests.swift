@testable import HTTP1
import Loop
import Synchronization
import Testing

/// The webhook client against listeners on this process's loop: framing, the timeout, refused
/// and broken connections, cancelling; every handle it opened is closed when it returns.
@Suite(.serialized) struct HTTPClientTests {
    /// A listener on 127.0.0.1 that hands each connection's bytes to `answer`, which writes what
    /// it likes (or nothing) back.
    @LoopActor
    final class Receiver {
        private(set) var listener: TCPListener!
        private(set) var received: [UInt8] = []
        private var streams: [TCPStream] = []

        init(answer: @escaping @LoopActor (_ received: [UInt8], _ stream: TCPStream) -> Void) throws {
            listener = try TCPListener(host: "127.0.0.1", port: 0) { [unowned self] stream in
                streams.append(stream)
                stream.startReading(onRead: { [unowned self] bytes in
                    received.append(contentsOf: bytes)
                    answer(received, stream)
                }, onReadEnd: { _ in stream.close() })
            }
        }

        var port: Int { listener.port }

        func close() {
            listener.close()
            for stream in streams { stream.close() }
        }
    }

    static let loopStarted: Void = { EventLoop.shared.startThread() }()

    /// Runs `body` on the loop; fails (instead of hanging) after `seconds`.
    func onLoop<T: Sendable>(seconds: Int = 10, _ body: @escaping @Sendable @LoopActor () async throws -> T) async throws -> T {
        _ = Self.loopStarted
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await Task { @LoopActor in try await body() }.value }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            guard let first = try await group.next(), let value = first else {
                group.cancelAll()
                throw TestTimedOut()
            }
            group.cancelAll()
            return value
        }
    }

    struct TestTimedOut: Error {}

    /// A request to the receiver: a POST with a small JSON body.
    @LoopActor
    static func post(port: Int, timeout: UInt64 = 2_000) -> HTTPClientRequest {
        HTTPClientRequest(
            method: "POST", host: "127.0.0.1", port: port, path: "/hooks?x=1", headers: [("Content-Type", "application/json")],
            body: Array(#"{"a":1}"#.utf8), timeoutMilliseconds: timeout)
    }

    /// How many handles are open once close callbacks had time to run (up to half a second)
    /// for the count to come back to `expected`. Turns the loop with yields, not a sleep: a
    /// sleep's own timer would still be counted.
    @LoopActor
    static func settledHandles(expecting expected: Int) async -> Int {
        let deadline = EventLoop.hrtime() + 500_000_000
        while OpenHandles.current != expected, EventLoop.hrtime() < deadline { await Task.yield() }
        return OpenHandles.current
    }

    @Test func framesAContentLengthResponseAndSendsAWellFormedRequest() async throws {
        try await onLoop {
            let before = await Self.settledHandles(expecting: 0)
            let receiver = try Receiver { received, stream in
                guard received.count >= 7, received.suffix(7) == Array(#"{"a":1}"#.utf8) else { return }
                stream.write(Array("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello".utf8))
            }
            let result = await Self.post(port: receiver.port).send(toAddress: "127.0.0.1")
            #expect(try result.get() == ResponseFramer.Response(status: 201, body: Array("hello".utf8)))
            let request = String(decoding: receiver.received, as: UTF8.self)
            #expect(request.hasPrefix("POST /hooks?x=1 HTTP/1.1\r\nHost: 127.0.0.1:\(receiver.port)\r\n"), "\(request)")
            #expect(request.contains("\r\nContent-Length: 7\r\n") && request.contains("\r\nConnection: close\r\n"))
            #expect(request.hasSuffix("\r\n\r\n{\"a\":1}"))
            receiver.close()
            let after = await Self.settledHandles(expecting: before); #expect(after == before, "handles before \(before), after \(after)")
        }
    }

    @Test func theHostHeaderNamesTheURLsHost() async throws {
        try await onLoop {
            @LoopActor func head(_ host: String, _ port: Int) -> String {
                let request = HTTPClientRequest(method: "GET", host: host, port: port, path: "/", timeoutMilliseconds: 1)
                return String(String(decoding: request.serialized, as: UTF8.self).split(separator: "\r\n")[1])
            }
            #expect(head("hooks.example.com", 80) == "Host: hooks.example.com")
            #expect(head("hooks.example.com", 8080) == "Host: hooks.example.com:8080")
            #expect(head("2001:db8::1", 80) == "Host: [2001:db8::1]")
            #expect(head("2001:db8::1", 81) == "Host: [2001:db8::1]:81")
        }
    }

    @Test func reportsTheStatusOfAChunkedResponse() async throws {
        try await onLoop {
            let receiver = try Receiver { _, stream in
                stream.write(Array("HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".utf8))
            }
            defer { receiver.close() }
            let response = try await Self.post(port: receiver.port).send(toAddress: "127.0.0.1").get()
            #expect(response.status == 202 && response.body.isEmpty)
        }
    }

    @Test func timesOutWhenNoResponseComesAndClosesEverything() async throws {
        try await onLoop {
            let before = await Self.settledHandles(expecting: 0)
            let receiver = try Receiver { _, _ in }  // reads, never answers
            let started = EventLoop.hrtime()
            let result = await Self.post(port: receiver.port, timeout: 300).send(toAddress: "127.0.0.1")
            let elapsed = (EventLoop.hrtime() - started) / 1_000_000
            #expect(throws: HTTPClientError.timedOut(milliseconds: 300)) { try result.get() }
            #expect(elapsed >= 290 && elapsed < 1_500, "gave up after \(elapsed) ms")
            receiver.close()
            let after = await Self.settledHandles(expecting: before); #expect(after == before, "handles before \(before), after \(after)")
        }
    }

    @Test func aRefusedConnectionFailsAtOnce() async throws {
        try await onLoop {
            let before = await Self.settledHandles(expecting: 0)
            let receiver = try Receiver { _, _ in }
            let port = receiver.port
            receiver.close()
            await EventLoop.sleep(milliseconds: 20)
            let result = await Self.post(port: port).send(toAddress: "127.0.0.1")
            guard case .failure(.connectFailed(let error)) = result else {
                Issue.record("expected a refused connect, got \(result)")
                return
            }
            #expect(error.name == "ECONNREFUSED")
            let after = await Self.settledHandles(expecting: before); #expect(after == before, "handles before \(before), after \(after)")
        }
    }

    @Test func aConnectionClosedBeforeTheResponseEndsIsAnError() async throws {
        try await onLoop {
            let receiver = try Receiver { _, stream in
                // Half a response, then the connection closes.
                stream.write(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8)) { _ in stream.close() }
            }
            defer { receiver.close() }
            let result = await Self.post(port: receiver.port).send(toAddress: "127.0.0.1")
            #expect(throws: HTTPClientError.closedEarly(nil)) { try result.get() }
        }
    }

    @Test func aMalformedResponseIsAnError() async throws {
        try await onLoop {
            let receiver = try Receiver { _, stream in stream.write(Array("SMTP ready\r\n\r\n".utf8)) }
            defer { receiver.close() }
            let result = await Self.post(port: receiver.port).send(toAddress: "127.0.0.1")
            #expect(throws: HTTPClientError.malformedResponse(.malformedStatusLine)) { try result.get() }
        }
    }

    @Test func cancelAbandonsARequestInFlight() async throws {
        try await onLoop {
            let before = await Self.settledHandles(expecting: 0)
            let receiver = try Receiver { _, _ in }
            let request = Self.post(port: receiver.port, timeout: 5_000)
            let task = Task { @LoopActor in await request.send(toAddress: "127.0.0.1") }
            await EventLoop.sleep(milliseconds: 50)
            request.cancel()
            let result = await task.value
            #expect(throws: HTTPClientError.cancelled) { try result.get() }
            receiver.close()
            let after = await Self.settledHandles(expecting: before); #expect(after == before, "handles before \(before), after \(after)")
        }
    }

    @Test func resolvesLocalhostAndPassesLiteralsThrough() async throws {
        try await onLoop {
            let addresses = try await AddressResolver.resolve(host: "localhost")
            #expect(!addresses.isEmpty && addresses.allSatisfy { $0 == "127.0.0.1" || $0 == "::1" }, "\(addresses)")
            #expect(try await AddressResolver.resolve(host: "203.0.113.7") == ["203.0.113.7"])
            #expect(try await AddressResolver.resolve(host: "::1") == ["::1"])
            await #expect(throws: UVError.self) { try await AddressResolver.resolve(host: "no-such-host.invalid") }
        }
    }
}
