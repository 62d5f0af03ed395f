@testable import HTTP1
import Testing

@Suite struct ResponseFramerTests {
    private let date = "Sun, 06 Nov 1994 08:49:37 GMT"

    private func serialized(_ response: HTTPResponse) -> [UInt8] {
        response.serialize(keepAlive: true, date: date, isHeadRequest: false)
    }

    @Test func framesOurOwnResponsesFedByteByByte() throws {
        let first = serialized(HTTPResponse(status: 201, contentType: "application/json", body: "{\"token\":\"qh_1_x\"}"))
        let second = serialized(HTTPResponse(status: 409, contentType: "application/json", body: "{}"))
        var framer = ResponseFramer()
        var responses: [ResponseFramer.Response] = []
        for byte in first + second { responses += try framer.feed([byte]) }
        #expect(responses == [
            .init(status: 201, body: Array("{\"token\":\"qh_1_x\"}".utf8)),
            .init(status: 409, body: Array("{}".utf8)),
        ])
        #expect(framer.pendingBytes == 0)
    }

    @Test func waitsForTheWholeBody() throws {
        var framer = ResponseFramer()
        #expect(try framer.feed(Array("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab".utf8)).isEmpty)
        #expect(try framer.feed(Array("cde".utf8)) == [.init(status: 200, body: Array("abcde".utf8))])
    }

    @Test func bodylessStatusesNeedNoLength() throws {
        var framer = ResponseFramer()
        let responses = try framer.feed(Array("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"3\"\r\n\r\n".utf8))
        #expect(responses.map(\.status) == [204, 304])
    }

    @Test func refusesWhatItCannotFrame() {
        var chunked = ResponseFramer()
        #expect(throws: ResponseFramer.FramingError.unsupportedFraming) {
            try chunked.feed(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        }
        var garbage = ResponseFramer()
        #expect(throws: ResponseFramer.FramingError.malformedStatusLine) {
            try garbage.feed(Array("SMTP ready\r\n\r\n".utf8))
        }
        var badLength = ResponseFramer()
        #expect(throws: ResponseFramer.FramingError.malformedContentLength) {
            try badLength.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n".utf8))
        }
        var endless = ResponseFramer(maxHeaderBytes: 16)
        #expect(throws: ResponseFramer.FramingError.headerTooLarge) {
            try endless.feed(Array("HTTP/1.1 200 OK\r\nX-Filler: aaaaaaaaaaaaaaaa".utf8))
        }
    }
}
