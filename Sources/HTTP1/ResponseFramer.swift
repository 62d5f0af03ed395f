/// Splits a byte stream of HTTP/1.1 responses into whole responses: status code and body.
///
/// For clients of Quorix's own shape (the load generator, webhook deliveries): every response is
/// framed by `Content-Length` (or has no body: 1xx, 204, 304). A chunked or unframed response is
/// reported as `unsupportedFraming` rather than guessed at.
public struct ResponseFramer {
    public struct Response: Sendable, Equatable {
        public let status: Int
        public let body: [UInt8]
    }

    public enum FramingError: Error, Equatable {
        case malformedStatusLine
        case malformedContentLength
        case unsupportedFraming
        case headerTooLarge
    }

    private var buffer: [UInt8] = []
    private let maxHeaderBytes: Int

    public init(maxHeaderBytes: Int = 64 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// Appends `bytes` and returns every response now complete, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(FramingError) -> [Response] {
        buffer.append(contentsOf: bytes)
        var responses: [Response] = []
        while let response = try next() { responses.append(response) }
        return responses
    }

    /// Bytes received that do not yet form a whole response.
    public var pendingBytes: Int { buffer.count }

    private mutating func next() throws(FramingError) -> Response? {
        guard let headerEnd = Self.headerEnd(in: buffer) else {
            if buffer.count > maxHeaderBytes { throw .headerTooLarge }
            return nil
        }
        let head = buffer[..<headerEnd]
        // "HTTP/1.1 201 Created"
        guard head.count >= 12, head.starts(with: Array("HTTP/1.".utf8)) else { throw .malformedStatusLine }
        let digits = head[head.startIndex + 9 ..< head.startIndex + 12]
        guard digits.allSatisfy({ (48...57).contains($0) }) else { throw .malformedStatusLine }
        let status = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
        let bodyStart = headerEnd + 4
        let length: Int
        if (100..<200).contains(status) || status == 204 || status == 304 {
            length = 0
        } else if let declared = try Self.contentLength(in: head) {
            length = declared
        } else {
            throw .unsupportedFraming
        }
        guard buffer.count >= bodyStart + length else { return nil }
        let body = Array(buffer[bodyStart ..< bodyStart + length])
        buffer.removeFirst(bodyStart + length)
        return Response(status: status, body: body)
    }

    private static func headerEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return index }
            index += 1
        }
        return nil
    }

    /// The value of `Content-Length`, matched case-insensitively; nil when absent. A chunked
    /// response cannot be framed here.
    private static func contentLength(in head: ArraySlice<UInt8>) throws(FramingError) -> Int? {
        for line in head.split(separator: 10).dropFirst() {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let name = text[..<colon].lowercased()
            let value = text[text.index(after: colon)...].filter { $0 != " " && $0 != "\t" && $0 != "\r" }
            if name == "transfer-encoding" { throw .unsupportedFraming }
            if name == "content-length" {
                guard let length = Int(value), length >= 0 else { throw .malformedContentLength }
                return length
            }
        }
        return nil
    }
}
