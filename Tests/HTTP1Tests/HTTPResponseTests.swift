@testable import HTTP1
import Testing

@Suite struct HTTPResponseTests {
    private let date = "Sun, 06 Nov 1994 08:49:37 GMT"

    private func wire(
        _ response: HTTPResponse, keepAlive: Bool = true, isHeadRequest: Bool = false
    ) -> (head: [String], body: String) {
        let bytes = response.serialize(keepAlive: keepAlive, date: date, isHeadRequest: isHeadRequest)
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...max(0, bytes.count - 4)).first(where: { Array(bytes[$0..<min($0 + 4, bytes.count)]) == terminator }) else {
            Issue.record("no end of header section in \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            return ([], "")
        }
        // "\r\n" is one Character.
        let head = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        return (head, String(decoding: bytes[(end + 4)...], as: UTF8.self))
    }

    private func field(_ name: String, in head: [String]) -> [String] {
        head.dropFirst().filter { $0.lowercased().hasPrefix(name.lowercased() + ":") }
    }

    @Test func serializesStatusLineHeadersLengthDateAndBody() {
        let response = HTTPResponse(status: 200, contentType: "application/json", body: "{\"ok\":true}")
        let bytes = response.serialize(keepAlive: true, date: date, isHeadRequest: false)
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nDate: \(date)\r\n\r\n{\"ok\":true}")
    }

    @Test func contentLengthCountsBytesNotCharacters() {
        let (head, body) = wire(HTTPResponse(status: 201, contentType: "text/plain", body: "café €"))
        #expect(head.first == "HTTP/1.1 201 Created")
        #expect(field("Content-Length", in: head) == ["Content-Length: 9"])
        #expect(body == "café €")
    }

    @Test func emptyBodyHasContentLengthZero() {
        let (head, body) = wire(HTTPResponse(status: 200))
        #expect(field("Content-Length", in: head) == ["Content-Length: 0"])
        #expect(body.isEmpty)
    }

    @Test(arguments: [204, 304])
    func noContentAndNotModifiedHaveNoBodyAndNoContentLength(status: Int) {
        var response = HTTPResponse(status: status, contentType: "text/plain", body: "ignored")
        response.headers.add("ETag", "\"v1\"")
        let (head, body) = wire(response)
        #expect(head.first?.hasPrefix("HTTP/1.1 \(status) ") == true)
        #expect(field("Content-Length", in: head).isEmpty)
        #expect(field("ETag", in: head) == ["ETag: \"v1\""])
        #expect(body.isEmpty)
    }

    @Test func informationalResponsesHaveNoBody() {
        let (head, body) = wire(HTTPResponse(status: 100, contentType: "text/plain", body: "x"))
        #expect(head.first == "HTTP/1.1 100 Continue")
        #expect(field("Content-Length", in: head).isEmpty)
        #expect(body.isEmpty)
    }

    @Test func headResponseKeepsContentLengthButHasNoBody() {
        let (head, body) = wire(HTTPResponse(status: 200, contentType: "text/plain", body: "hello"), isHeadRequest: true)
        #expect(field("Content-Length", in: head) == ["Content-Length: 5"])
        #expect(body.isEmpty)
    }

    @Test func connectionCloseWhenNotKeepingAlive() {
        let (closing, _) = wire(HTTPResponse(status: 400, contentType: "text/plain", body: "bad"), keepAlive: false)
        #expect(field("Connection", in: closing) == ["Connection: close"])
        let (open, _) = wire(HTTPResponse(status: 200), keepAlive: true)
        #expect(field("Connection", in: open).isEmpty)
    }

    @Test func dateHeaderIsAlwaysPresent() {
        for status in [200, 204, 304, 404, 500] {
            let (head, _) = wire(HTTPResponse(status: status), keepAlive: status == 200)
            #expect(field("Date", in: head) == ["Date: \(date)"], "status \(status)")
        }
    }

    @Test func handlerHeadersAreWrittenInOrder() {
        var headers = HTTPHeaders()
        headers.add("X-A", "1")
        headers.add("Set-Cookie", "a=1")
        headers.add("Set-Cookie", "b=2")
        headers.set("X-A", "3")
        let (head, _) = wire(HTTPResponse(status: 200, headers: headers))
        #expect(Array(head.dropFirst().prefix(3)) == ["Set-Cookie: a=1", "Set-Cookie: b=2", "X-A: 3"])
    }

    @Test func reasonPhrases() {
        #expect(HTTPResponse.reasonPhrase(413) == "Content Too Large")
        #expect(HTTPResponse.reasonPhrase(431) == "Request Header Fields Too Large")
        #expect(HTTPResponse.reasonPhrase(408) == "Request Timeout")
        #expect(HTTPResponse.reasonPhrase(299) == "Status 299")
        let (head, _) = wire(HTTPResponse(status: 299))
        #expect(head.first == "HTTP/1.1 299 Status 299")
    }
}
