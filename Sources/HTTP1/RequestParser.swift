internal import CHTTPParser

/// Why a request could not be read. Each maps to one status; after any of them the connection's
/// byte stream can no longer be trusted and is closed once the error is answered.
public enum HTTPParseError: Error, Equatable, Sendable {
    /// Not HTTP/1.x, or ambiguous framing (request smuggling attempts included): 400.
    case malformed(String)
    /// The request line and header fields exceed the limit: 431.
    case headerSectionTooLarge(limit: Int)
    /// The body exceeds the route's limit: 413.
    case bodyTooLarge(limit: Int)

    public var status: Int {
        switch self {
        case .malformed: 400
        case .headerSectionTooLarge: 431
        case .bodyTooLarge: 413
        }
    }
}

/// Incremental HTTP/1.1 request parsing with http-parser, one request at a time.
///
/// `parse` stops after each complete request (the parser pauses in `on_message_complete`) and
/// reports how many bytes it consumed, so pipelined requests are answered in order and unread
/// bytes wait in the connection's buffer rather than in an ever-growing queue.
public final class RequestParser {
    public enum Outcome: Sendable {
        case needMoreData
        case request(HTTPRequest)
        case failed(HTTPParseError)
    }

    public typealias BodyLimit = (HTTPRequestHead) -> Int

    private let parser: UnsafeMutablePointer<http_parser>
    private let maxHeaderBytes: Int
    private let bodyLimit: BodyLimit
    /// Called once a request's head is complete, before its body is read (for `100 Continue`).
    public var onHead: ((HTTPRequestHead) -> Void)?

    // The message being assembled.
    private var url: [UInt8] = []
    private var fieldName: [UInt8] = []
    private var fieldValue: [UInt8] = []
    private var lastCallbackWasValue = false
    private var headers = HTTPHeaders()
    private var headerBytes = 0
    private var head: HTTPRequestHead?
    private var currentBodyLimit = 0
    private var body: [UInt8] = []
    private var completed: HTTPRequest?
    private var failure: HTTPParseError?
    /// Between the first byte of a method and the end of the message.
    private var inMessage = false

    public init(maxHeaderBytes: Int = 16 * 1024, bodyLimit: @escaping BodyLimit) {
        self.maxHeaderBytes = maxHeaderBytes
        self.bodyLimit = bodyLimit
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
    }

    /// Whether a request has started arriving but is not complete.
    public var isMidRequest: Bool { inMessage }

    public func parse(_ bytes: [UInt8]) -> (consumed: Int, outcome: Outcome) {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Feeds bytes; returns how many were consumed and what they completed.
    public func parse(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, outcome: Outcome) {
        if let failure { return (0, .failed(failure)) }
        if bytes.isEmpty { return (0, .needMoreData) }
        http_parser_pause(parser, 0)
        let consumed = bytes.withMemoryRebound(to: CChar.self) { chars in
            http_parser_execute(parser, &RequestParser.settings, chars.baseAddress, chars.count)
        }
        if let request = completed {
            completed = nil
            return (consumed, .request(request))
        }
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if errno != HPE_OK {
            let error = failure ?? RequestParser.translate(errno)
            failure = error
            return (consumed, .failed(error))
        }
        return (consumed, .needMoreData)
    }

    /// The peer closed its side: a request cut short is malformed.
    public func finish() -> HTTPParseError? {
        isMidRequest ? .malformed("the connection closed in the middle of a request") : nil
    }

    private static func translate(_ errno: http_errno) -> HTTPParseError {
        switch errno {
        case HPE_HEADER_OVERFLOW: .headerSectionTooLarge(limit: 16 * 1024)
        case HPE_UNEXPECTED_CONTENT_LENGTH:
            .malformed("Content-Length is ambiguous (repeated, or sent with Transfer-Encoding)")
        case HPE_INVALID_TRANSFER_ENCODING: .malformed("unsupported Transfer-Encoding")
        default:
            .malformed(String(cString: http_errno_description(errno)))
        }
    }

    // MARK: - Callbacks (C function pointers reach the parser through `data`)

    private static func parser(_ pointer: UnsafeMutablePointer<http_parser>?) -> RequestParser {
        Unmanaged<RequestParser>.fromOpaque(pointer!.pointee.data).takeUnretainedValue()
    }

    private static func bytes(_ at: UnsafePointer<CChar>?, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: at, count: count)
    }

    nonisolated(unsafe) private static var settings: http_parser_settings = {
        var settings = http_parser_settings()
        settings.on_message_begin = { RequestParser.parser($0).messageBegin() }
        settings.on_url = { RequestParser.parser($0).url(RequestParser.bytes($1, $2)) }
        settings.on_header_field = { RequestParser.parser($0).headerField(RequestParser.bytes($1, $2)) }
        settings.on_header_value = { RequestParser.parser($0).headerValue(RequestParser.bytes($1, $2)) }
        settings.on_headers_complete = { RequestParser.parser($0).headersComplete() }
        settings.on_body = { RequestParser.parser($0).bodyChunk(RequestParser.bytes($1, $2)) }
        settings.on_message_complete = { RequestParser.parser($0).messageComplete() }
        return settings
    }()

    private func messageBegin() -> Int32 {
        inMessage = true
        url = []
        fieldName = []
        fieldValue = []
        lastCallbackWasValue = false
        headers = HTTPHeaders()
        headerBytes = 0
        head = nil
        body = []
        return 0
    }

    private func countHeaderBytes(_ count: Int) -> Int32 {
        headerBytes += count
        if headerBytes > maxHeaderBytes {
            failure = .headerSectionTooLarge(limit: maxHeaderBytes)
            return 1
        }
        return 0
    }

    private func url(_ chunk: UnsafeRawBufferPointer) -> Int32 {
        url.append(contentsOf: chunk)
        return countHeaderBytes(chunk.count)
    }

    private func headerField(_ chunk: UnsafeRawBufferPointer) -> Int32 {
        if lastCallbackWasValue {
            storeField()
        }
        lastCallbackWasValue = false
        // http-parser (non-strict) lets spaces into field names; "Content-Length : 5" must be
        // refused, not read one way here and another by a proxy (RFC 9112 §5.1).
        if chunk.contains(UInt8(ascii: " ")) {
            failure = .malformed("whitespace in a header field name")
            return 1
        }
        fieldName.append(contentsOf: chunk)
        // Each line also carries ": " and CRLF.
        return countHeaderBytes(chunk.count + (fieldName.count == chunk.count ? 4 : 0))
    }

    private func headerValue(_ chunk: UnsafeRawBufferPointer) -> Int32 {
        lastCallbackWasValue = true
        fieldValue.append(contentsOf: chunk)
        return countHeaderBytes(chunk.count)
    }

    private func storeField() {
        // http-parser drops leading whitespace but keeps trailing whitespace (RFC 9110 §5.5).
        while let last = fieldValue.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            fieldValue.removeLast()
        }
        headers.add(String(decoding: fieldName, as: UTF8.self), String(decoding: fieldValue, as: UTF8.self))
        fieldName = []
        fieldValue = []
    }

    private func headersComplete() -> Int32 {
        if !fieldName.isEmpty { storeField() }
        let method = String(cString: http_method_str(http_method(rawValue: parser.pointee.method)))
        let keepAlive = http_should_keep_alive(parser) != 0 && parser.pointee.upgrade == 0
        let head = HTTPRequestHead(
            method: method,
            target: String(decoding: url, as: UTF8.self),
            versionMajor: Int(parser.pointee.http_major),
            versionMinor: Int(parser.pointee.http_minor),
            headers: headers,
            keepAlive: keepAlive
        )
        self.head = head
        // http-parser accepts any single-digit version (HTTP/9.9); only HTTP/1.x is spoken here.
        guard head.versionMajor == 1 else {
            failure = .malformed("HTTP/\(head.versionMajor).\(head.versionMinor) is not supported; send HTTP/1.1")
            return -1
        }
        currentBodyLimit = bodyLimit(head)
        // http-parser sets content_length to ULLONG_MAX when there is none.
        let declared = parser.pointee.content_length
        if declared != UInt64.max && declared > UInt64(currentBodyLimit) {
            failure = .bodyTooLarge(limit: currentBodyLimit)
            return -1
        }
        if declared != UInt64.max && declared > 0 {
            body.reserveCapacity(Int(declared))
        }
        onHead?(head)
        return 0
    }

    private func bodyChunk(_ chunk: UnsafeRawBufferPointer) -> Int32 {
        if body.count + chunk.count > currentBodyLimit {
            failure = .bodyTooLarge(limit: currentBodyLimit)
            return 1
        }
        body.append(contentsOf: chunk)
        return 0
    }

    private func messageComplete() -> Int32 {
        guard let head else { return 1 }
        completed = HTTPRequest(head: head, body: body)
        inMessage = false
        self.head = nil
        url = []
        body = []
        http_parser_pause(parser, 1)
        return 0
    }
}
