import Foundation
public import Quorix
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP response as it came over the wire.
public struct HTTPTestResponse: Sendable, CustomStringConvertible {
    public let status: Int
    public let reason: String
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    public func headerValues(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON (strictly: Quorix's own parser, which refuses anything RFC 8259 does).
    public func json() throws -> JSONValue {
        try JSONParser.parse(body)
    }

    /// `error.code` of a contract error body, if the body is one.
    public var errorCode: String? {
        guard let value = try? json(), case .string(let code)? = value["error"]?["code"] else { return nil }
        return code
    }

    /// What is wrong with this response as a contract error (`{"error": {"code", "message", ...}}`,
    /// JSON, 4xx or 5xx, `details` a list of `{path, message}`); empty when nothing is.
    public var errorShapeProblems: [String] {
        var problems: [String] = []
        if !(400..<600).contains(status) { problems.append("status \(status) is not an error status") }
        if let type = header("Content-Type"), type.lowercased().hasPrefix("application/json") {} else {
            problems.append("Content-Type is \(header("Content-Type") ?? "missing"), not application/json")
        }
        guard let value = try? json() else {
            problems.append("the body is not JSON: \(text.prefix(200))")
            return problems
        }
        guard case .object(let members) = value, let error = value["error"], case .object = error else {
            problems.append("the body is not {\"error\": {...}}: \(text.prefix(200))")
            return problems
        }
        if members.count != 1 { problems.append("the body has members besides error: \(members.map(\.0))") }
        guard case .string(let code)? = error["code"], !code.isEmpty,
            code.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLowercase || $0.isNumber)) })
        else {
            problems.append("error.code is not a snake_case string: \(text.prefix(200))")
            return problems
        }
        if case .string(let message)? = error["message"], !message.isEmpty {} else {
            problems.append("error.message is not a non-empty string")
        }
        if let details = error["details"] {
            if case .array(let items) = details, !items.isEmpty {
                for item in items {
                    guard case .string? = item["path"], case .string(let message)? = item["message"], !message.isEmpty else {
                        problems.append("a detail is not {path, message}: \(item)")
                        continue
                    }
                }
            } else {
                problems.append("error.details is not a non-empty array")
            }
        }
        return problems
    }

    public var description: String {
        "HTTP \(status) \(reason) \(headers.map { "\($0.name): \($0.value)" }) \(text.prefix(500))"
    }
}

public enum HTTPTestClientError: Error, CustomStringConvertible, Equatable {
    case connectFailed(String)
    /// Nothing (or not enough) arrived in time.
    case timedOut(received: Int)
    /// The server closed the connection (EOF or reset); `partial` is what arrived of the next response.
    case closed(partial: [UInt8])
    case malformedResponse(String)

    public var description: String {
        switch self {
        case .connectFailed(let reason): "connect failed: \(reason)"
        case .timedOut(let received): "timed out (\(received) bytes of the response had arrived)"
        case .closed(let partial): "the server closed the connection (\(partial.count) bytes of a response had arrived: \(String(decoding: partial.prefix(200), as: UTF8.self)))"
        case .malformedResponse(let reason): "malformed response: \(reason)"
        }
    }

    public var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }
}

/// A small blocking HTTP/1.1 client over one POSIX TCP socket, for tests of a real server.
///
/// Every read has a deadline (SO_RCVTIMEO), so a silent server makes a test fail, never hang.
/// Sends raw bytes or requests; reads responses by Content-Length (or chunked, or to EOF), several
/// per connection (keep-alive, pipelining); tells when the server closed the connection.
public final class HTTPTestClient {
    public let host: String
    public let port: Int
    /// Default time allowed for each response.
    public var timeout: Duration
    private var socket: Int32 = -1
    private var buffer: [UInt8] = []
    public private(set) var peerClosed = false

    public init(host: String = "127.0.0.1", port: Int, timeout: Duration = .seconds(10)) throws {
        self.host = host
        self.port = port
        self.timeout = timeout
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw HTTPTestClientError.connectFailed(String(cString: strerror(errno))) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(socket)
            throw HTTPTestClientError.connectFailed("\(host) is not an IPv4 address")
        }
        setTimeout(SO_SNDTIMEO, .seconds(10))
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            socket = -1
            throw HTTPTestClientError.connectFailed("\(host):\(port): \(reason)")
        }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close()
    }

    public func close() {
        if socket >= 0 {
            Glibc.close(socket)
            socket = -1
        }
    }

    /// Half-closes: the server sees end of file but can still answer.
    public func shutdownWrite() {
        if socket >= 0 { Glibc.shutdown(socket, Int32(SHUT_WR)) }
    }

    // MARK: - Sending

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { raw in
                Glibc.send(socket, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE || errno == ECONNRESET {
                    peerClosed = true
                    throw HTTPTestClientError.closed(partial: buffer)
                }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw HTTPTestClientError.timedOut(received: buffer.count) }
                throw HTTPTestClientError.malformedResponse("send failed: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// The bytes of a request: the given headers, plus `Host`, and `Content-Length` when there is
    /// a body and no `Transfer-Encoding` or `Content-Length` was given.
    public static func requestBytes(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, host: String = "127.0.0.1"
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        let names = Set(headers.map { $0.0.lowercased() })
        if !names.contains("host") { head += "Host: \(host)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, !names.contains("content-length"), !names.contains("transfer-encoding") {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    public func sendRequest(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws {
        try send(HTTPTestClient.requestBytes(method, path, headers: headers, body: body, host: "\(host):\(port)"))
    }

    /// Sends a request and reads its response.
    public func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration? = nil
    ) throws -> HTTPTestResponse {
        try sendRequest(method, path, headers: headers, body: body)
        return try readResponse(timeout: timeout, isHead: method == "HEAD")
    }

    public func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], json: String, timeout: Duration? = nil
    ) throws -> HTTPTestResponse {
        try request(method, path, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8), timeout: timeout)
    }

    // MARK: - Receiving

    /// Reads the next response (skipping `1xx` interim responses).
    public func readResponse(timeout: Duration? = nil, isHead: Bool = false) throws -> HTTPTestResponse {
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        while true {
            let response = try readOneResponse(deadline: deadline, isHead: isHead)
            if (100..<200).contains(response.status) { continue }
            return response
        }
    }

    /// Reads `count` responses in order (pipelining).
    public func readResponses(_ count: Int, timeout: Duration? = nil) throws -> [HTTPTestResponse] {
        try (0..<count).map { _ in try readResponse(timeout: timeout) }
    }

    /// Waits for the server to close the connection: true on EOF or reset within `timeout`, false
    /// when the connection is still open then. Bytes that arrive meanwhile are kept for `readResponse`.
    public func waitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !peerClosed {
            do {
                if try !fill(deadline: deadline) { return false }
            } catch {
                return peerClosed
            }
        }
        return true
    }

    /// Everything received and not yet consumed as a response.
    public var unreadBytes: [UInt8] { buffer }

    /// Takes whatever has arrived, waiting up to `timeout` for something when nothing has:
    /// empty at the timeout or once the peer closed (a streamed body is read this way).
    public func readAvailable(timeout: Duration) throws -> [UInt8] {
        if buffer.isEmpty { _ = try fill(deadline: ContinuousClock.now + timeout) }
        defer { buffer = [] }
        return buffer
    }

    private func readOneResponse(deadline: ContinuousClock.Instant, isHead: Bool) throws -> HTTPTestResponse {
        // The head.
        var headEnd: Int?
        while true {
            headEnd = HTTPTestClient.find([13, 10, 13, 10], in: buffer)
            if headEnd != nil { break }
            try fillOrFail(deadline: deadline)
        }
        let headText = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...599).contains(status) else {
            throw HTTPTestClientError.malformedResponse("bad status line: \(statusLine)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPTestClientError.malformedResponse("bad header line: \(line)")
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let bodyStart = headEnd! + 4
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }

        var body: [UInt8] = []
        var consumed = bodyStart
        if isHead || (100..<200).contains(status) || status == 204 || status == 304 {
            // No body.
        } else if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            var position = bodyStart
            while true {
                var lineEnd = HTTPTestClient.find([13, 10], in: buffer, from: position)
                while lineEnd == nil {
                    try fillOrFail(deadline: deadline)
                    lineEnd = HTTPTestClient.find([13, 10], in: buffer, from: position)
                }
                let sizeText = String(decoding: buffer[position..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw HTTPTestClientError.malformedResponse("bad chunk size line")
                }
                position = lineEnd! + 2
                while buffer.count < position + size + 2 { try fillOrFail(deadline: deadline) }
                body.append(contentsOf: buffer[position..<(position + size)])
                position += size + 2
                if size == 0 { break }
            }
            consumed = position
        } else if let lengthText = header("content-length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw HTTPTestClientError.malformedResponse("bad Content-Length \(lengthText)")
            }
            while buffer.count < bodyStart + length { try fillOrFail(deadline: deadline) }
            body = Array(buffer[bodyStart..<(bodyStart + length)])
            consumed = bodyStart + length
        } else {
            // Delimited by the end of the connection.
            while !peerClosed { try fillOrFail(deadline: deadline, eofIsError: false) }
            body = Array(buffer[bodyStart...])
            consumed = buffer.count
        }
        buffer.removeFirst(consumed)
        return HTTPTestResponse(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: body)
    }

    private func fillOrFail(deadline: ContinuousClock.Instant, eofIsError: Bool = true) throws {
        let before = buffer.count
        if try !fill(deadline: deadline) { throw HTTPTestClientError.timedOut(received: buffer.count) }
        if buffer.count == before && peerClosed && eofIsError { throw HTTPTestClientError.closed(partial: buffer) }
    }

    /// One recv: true when bytes or EOF arrived, false at the deadline. Throws `.closed` on reset.
    private func fill(deadline: ContinuousClock.Instant) throws -> Bool {
        if peerClosed { return true }
        while true {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return false }
            setTimeout(SO_RCVTIMEO, remaining)
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(socket, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count == 0 {
                peerClosed = true
                return true
            }
            switch errno {
            case EINTR, EAGAIN, EWOULDBLOCK:
                continue
            case ECONNRESET, EPIPE:
                peerClosed = true
                throw HTTPTestClientError.closed(partial: buffer)
            default:
                throw HTTPTestClientError.malformedResponse("recv failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    private func setTimeout(_ option: Int32, _ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var microseconds = Int(attoseconds / 1_000_000_000_000)
        // A zero timeout would mean "wait for ever".
        if seconds == 0 && microseconds < 1_000 { microseconds = 1_000 }
        var value = timeval(tv_sec: Int(seconds), tv_usec: microseconds)
        setsockopt(socket, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0] && Array(haystack[index..<(index + needle.count)]) == needle { return index }
            index += 1
        }
        return nil
    }

    // MARK: - One-shot

    /// Opens a connection, sends one request, reads its response, closes.
    public static func request(
        port: Int, _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration = .seconds(10)
    ) throws -> HTTPTestResponse {
        let client = try HTTPTestClient(port: port, timeout: timeout)
        defer { client.close() }
        return try client.request(method, path, headers: headers, body: body)
    }
}
