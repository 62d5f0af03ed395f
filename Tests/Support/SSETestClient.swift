import Foundation

/// One server-sent event.
public struct SSEMessage: Sendable, Equatable {
    public let id: String?
    public let event: String
    public let data: String
}

/// A client of a `text/event-stream` endpoint over a real socket: reads the head, then the
/// chunked body, and hands out events (comments, such as heartbeats, are counted apart).
public final class SSETestClient {
    public let client: HTTPTestClient
    public private(set) var status = 0
    public private(set) var headers: [(name: String, value: String)] = []
    public private(set) var comments = 0
    private var raw: [UInt8] = []
    private var body: [UInt8] = []
    private var headDone = false
    private var ended = false
    private var messages: [SSEMessage] = []

    /// Opens the stream and reads its head.
    public init(port: Int, path: String, headers: [(String, String)] = [], timeout: Duration = .seconds(10)) throws {
        client = try HTTPTestClient(port: port, timeout: timeout)
        try client.sendRequest("GET", path, headers: headers)
        let deadline = ContinuousClock.now + timeout
        while !headDone {
            guard ContinuousClock.now < deadline, !client.peerClosed else {
                throw HTTPTestClientError.timedOut(received: raw.count)
            }
            raw += try client.readAvailable(timeout: deadline - ContinuousClock.now)
            parseHead()
        }
    }

    public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// The server closed the stream (all its events have been read).
    public var isClosed: Bool { client.peerClosed && messages.isEmpty && raw.isEmpty }

    /// The next event, or nil when none comes within `timeout` or the stream ended.
    public func next(timeout: Duration = .seconds(5)) throws -> SSEMessage? {
        let deadline = ContinuousClock.now + timeout
        while messages.isEmpty {
            if client.peerClosed || ContinuousClock.now >= deadline { return nil }
            raw += try client.readAvailable(timeout: deadline - ContinuousClock.now)
            decodeChunks()
            splitEvents()
        }
        return messages.removeFirst()
    }

    /// Events until `done` says stop (inclusive) or `timeout` passes.
    public func collect(timeout: Duration = .seconds(10), until done: (SSEMessage) -> Bool) throws -> [SSEMessage] {
        let deadline = ContinuousClock.now + timeout
        var collected: [SSEMessage] = []
        while let message = try next(timeout: max(.zero, deadline - ContinuousClock.now)) {
            collected.append(message)
            if done(message) { break }
        }
        return collected
    }

    /// Reads (and counts) for `duration`, keeping the events for `next`.
    public func pump(for duration: Duration) throws {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline && !client.peerClosed {
            raw += try client.readAvailable(timeout: deadline - ContinuousClock.now)
            decodeChunks()
            splitEvents()
        }
    }

    public func close() { client.close() }

    private func parseHead() {
        guard let end = HTTPTestClient.find(Array("\r\n\r\n".utf8), in: raw) else { return }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        headers = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        raw.removeFirst(end + 4)
        headDone = true
        if header("Transfer-Encoding")?.lowercased() != "chunked" {
            // Not a stream (an error answer): keep its body as is.
            body = raw
            raw = []
            ended = true
        }
        decodeChunks()
        splitEvents()
    }

    private func decodeChunks() {
        while !ended, let lineEnd = HTTPTestClient.find([13, 10], in: raw) {
            guard let size = Int(String(decoding: raw[..<lineEnd], as: UTF8.self), radix: 16) else {
                ended = true
                return
            }
            if size == 0 {
                ended = true
                raw = []
                return
            }
            guard raw.count >= lineEnd + 2 + size + 2 else { return }
            body += raw[(lineEnd + 2)..<(lineEnd + 2 + size)]
            raw.removeFirst(lineEnd + 2 + size + 2)
        }
    }

    /// The body of a non-stream answer (an error).
    public var errorBody: String { String(decoding: body, as: UTF8.self) }

    private func splitEvents() {
        guard header("Content-Type")?.hasPrefix("text/event-stream") == true else { return }
        while let end = HTTPTestClient.find([10, 10], in: body) {
            let block = String(decoding: body[..<end], as: UTF8.self)
            body.removeFirst(end + 2)
            var id: String?
            var event = "message"
            var data: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") {
                    comments += 1
                    continue
                }
                let (name, value) = line.firstIndex(of: ":").map {
                    (String(line[..<$0]), String(line[line.index(after: $0)...]).drop { $0 == " " })
                } ?? (String(line), "")
                switch name {
                case "id": id = String(value)
                case "event": event = String(value)
                case "data": data.append(String(value))
                default: break
                }
            }
            if !data.isEmpty { messages.append(SSEMessage(id: id, event: event, data: data.joined(separator: "\n"))) }
        }
    }
}
