@testable import HTTP1
import Testing

/// Every case goes through `parseEveryWay`: whole, byte by byte, 2 and 7 bytes at a time, with the
/// unconsumed rest re-fed after each request as HTTPConnection does.
@Suite struct RequestParserTests {
    // MARK: - Well-formed requests

    @Test func parsesGetWithHeaders() throws {
        let seen = try parseOne(
            "GET /v1/events/7/seats?status=free HTTP/1.1\r\nHost: example.com\r\nAccept: application/json\r\nX-Request-ID: abc-123\r\n\r\n")
        #expect(seen.method == "GET")
        #expect(seen.target == "/v1/events/7/seats?status=free")
        #expect(seen.head.path == "/v1/events/7/seats")
        #expect(seen.head.query == "status=free")
        #expect(seen.version == "1.1")
        #expect(seen.headers == ["Host: example.com", "Accept: application/json", "X-Request-ID: abc-123"])
        #expect(seen.body.isEmpty)
        #expect(seen.keepAlive)
    }

    @Test func parsesPostWithContentLengthBody() throws {
        let seen = try parseOne(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"name\":\"gala\"}")
        #expect(seen.method == "POST")
        #expect(seen.bodyText == "{\"name\":\"gala\"}")
        #expect(seen.head.headers["content-length"] == "15")
    }

    @Test func parsesPostWithEmptyBody() throws {
        let seen = try parseOne("POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        #expect(seen.body.isEmpty)
    }

    @Test func keepsBinaryBodyBytesIntact() throws {
        let body = (0..<256).map { UInt8($0) }
        var input = Array("PUT /blob HTTP/1.1\r\nHost: x\r\nContent-Length: 256\r\n\r\n".utf8)
        input += body
        let outcomes = parseEveryWay(input)
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.request?.body == body)
    }

    @Test func parsesChunkedBodyWithExtensionsAndTrailers() throws {
        let seen = try parseOne(
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n"
                + "1;name=value\r\n,\r\n"
                + "6;a=1;b=\"two\"\r\n world\r\n"
                + "A\r\n0123456789\r\n"
                + "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")
        #expect(seen.bodyText == "hello, world0123456789")
        #expect(seen.keepAlive)
        // Trailer fields are read and discarded: they never reach the head already handed out.
        #expect(seen.head.headers["X-Checksum"] == nil)
        #expect(seen.headers == ["Host: x", "Transfer-Encoding: chunked"])
    }

    @Test func parsesChunkedBodyWithUppercaseHexSizes() throws {
        let data = String(repeating: "z", count: 0x1F)
        let seen = try parseOne("POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1F\r\n\(data)\r\n0\r\n\r\n")
        #expect(seen.bodyText == data)
    }

    @Test func parsesTwoPipelinedRequestsInOrder() {
        let outcomes = parseEveryWay(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(outcomes.map { $0.request?.target } == ["/a", "/b"])
        #expect(outcomes.map { $0.request?.bodyText } == ["abc", ""])
    }

    @Test func parsesThreePipelinedRequestsInOrderWithTheirOwnBodies() {
        let outcomes = parseEveryWay(
            "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                + "POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n"
                + "PUT /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthird")
        #expect(outcomes.map { $0.request?.method } == ["POST", "POST", "PUT"])
        #expect(outcomes.map { $0.request?.target } == ["/1", "/2", "/3"])
        #expect(outcomes.map { $0.request?.bodyText } == ["first", "second", "third"])
        #expect(outcomes.map { $0.request?.keepAlive } == [true, true, false])
        // Headers of one request never leak into the next.
        #expect(outcomes[1].request?.head.headers["Content-Length"] == nil)
        #expect(outcomes[2].request?.head.headers["Transfer-Encoding"] == nil)
    }

    @Test func reportsEachPipelinedRequestAtItsLastByte() {
        let first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        let second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        let run = feed(Array((first + second).utf8), chunkSize: 1)
        #expect(run.outcomeOffsets == [first.utf8.count, first.utf8.count + second.utf8.count])
        let whole = feed(Array((first + second).utf8), chunkSize: Int.max)
        // Whole: the first request is reported consuming exactly its own bytes.
        #expect(whole.outcomeOffsets == [first.utf8.count, first.utf8.count + second.utf8.count])
    }

    @Test func ignoresEmptyLinesBeforeTheRequestLine() throws {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
        let seen = try parseOne("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(seen.target == "/")
        let run = feed(Array("\r\n".utf8), chunkSize: Int.max)
        #expect(run.outcomes.isEmpty)
        #expect(run.parser.finish() == nil)
    }

    @Test func keepsEmptyHeaderValuesAsTheirOwnFields() throws {
        let seen = try parseOne("GET / HTTP/1.1\r\nX-Empty:\r\nX-Next: 1\r\nX-Blank:   \r\nHost: x\r\n\r\n")
        #expect(seen.head.headers["X-Empty"] == "")
        #expect(seen.head.headers["X-Next"] == "1")
        #expect(seen.head.headers["Host"] == "x")
        #expect(seen.head.headers.fields.count == 4)
    }

    @Test func stripsWhitespaceAroundHeaderValues() throws {
        // RFC 9110 §5.5: leading and trailing whitespace is not part of a field value.
        let seen = try parseOne("GET / HTTP/1.1\r\nHost:    x.example  \r\nX-Tab:\tv \t\r\nX-Inner: a  b\r\n\r\n")
        #expect(seen.head.headers["Host"] == "x.example")
        #expect(seen.head.headers["X-Tab"] == "v")
        #expect(seen.head.headers["X-Inner"] == "a  b")
        let expecting = try parseOne("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue  \r\nContent-Length: 1\r\n\r\nz")
        #expect(expecting.head.expectsContinue)
    }

    // MARK: - Keep-alive

    @Test func http11KeepsAliveByDefault() throws {
        #expect(try parseOne("GET / HTTP/1.1\r\nHost: x\r\n\r\n").keepAlive)
    }

    @Test(arguments: ["close", "Close", "CLOSE"])
    func http11WithConnectionCloseDoesNotKeepAlive(value: String) throws {
        #expect(try !parseOne("GET / HTTP/1.1\r\nHost: x\r\nConnection: \(value)\r\n\r\n").keepAlive)
    }

    @Test func http10DoesNotKeepAliveByDefault() throws {
        let seen = try parseOne("GET / HTTP/1.0\r\n\r\n")
        #expect(seen.version == "1.0")
        #expect(!seen.keepAlive)
    }

    @Test func http10KeepsAliveWithConnectionKeepAlive() throws {
        #expect(try parseOne("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        #expect(try parseOne("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n").keepAlive)
    }

    // MARK: - Header names

    @Test func headerNamesAreCaseInsensitive() throws {
        let seen = try parseOne("POST / HTTP/1.1\r\nhost: x\r\ncontent-TYPE: text/plain\r\ncontent-length: 2\r\n\r\nhi")
        #expect(seen.head.headers["Content-Type"] == "text/plain")
        #expect(seen.head.headers["CONTENT-TYPE"] == "text/plain")
        #expect(seen.head.headers.contains("HOST"))
        // The spelling sent is kept.
        #expect(seen.headers.first == "host: x")
        // Framing headers are recognised in any case too.
        #expect(seen.bodyText == "hi")
        #expect(try parseOne("POST / HTTP/1.1\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n").bodyText == "ok")
    }

    @Test func repeatedHeaderFieldsAreAllKeptInOrder() throws {
        let seen = try parseOne("GET / HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\nX-Tag: one\r\naccept: c/d\r\nAccept: e/f\r\n\r\n")
        #expect(seen.head.headers.values("Accept") == ["a/b", "c/d", "e/f"])
        #expect(seen.head.headers["ACCEPT"] == "a/b")
        #expect(seen.head.headers.values("Missing").isEmpty)
    }

    // MARK: - Expect: 100-continue

    @Test func expectContinueReportsTheHeadBeforeTheBody() throws {
        let head = "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        let input = Array((head + "data").utf8)
        for size in chunkSizes {
            let run = feed(input, chunkSize: size)
            #expect(run.log == ["head", "request"], "chunk size \(size)")
            #expect(run.outcomes.first?.request?.bodyText == "data")
            #expect(run.outcomes.first?.request?.head.expectsContinue == true)
        }
        // Byte by byte, the head is reported on the head's last byte, before any body byte.
        #expect(feed(input, chunkSize: 1).headOffsets == [head.utf8.count])

        // With only the head sent (a client waiting for 100 Continue), the head is out already.
        let waiting = feed(Array(head.utf8), chunkSize: Int.max)
        #expect(waiting.log == ["head"])
        #expect(waiting.outcomes.isEmpty)
        #expect(waiting.parser.isMidRequest)
    }

    @Test func onHeadIsCalledOncePerPipelinedRequest() {
        let input = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz"
        for size in chunkSizes {
            #expect(feed(Array(input.utf8), chunkSize: size).log == ["head", "request", "head", "request"])
        }
    }

    @Test func expectContinueWithATooLargeBodyFailsWithoutReportingTheHead() {
        let input = Array("POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n".utf8)
        for size in chunkSizes {
            let run = feed(input, chunkSize: size, bodyLimit: { _ in 10 })
            // No "100 Continue" may be sent for a body that will be refused.
            #expect(run.log == ["failed"])
            #expect(run.outcomes == [.failed(.bodyTooLarge(limit: 10))])
        }
    }

    // MARK: - Request smuggling and ambiguous framing

    @Test func rejectsBothContentLengthAndTransferEncoding() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").isMalformed)
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n").isMalformed)
    }

    @Test func rejectsContentLengthWithAnyTransferEncoding() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc").isMalformed)
    }

    @Test func rejectsTwoDifferentContentLengths() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde").isMalformed)
    }

    @Test func rejectsRepeatedContentLengthEvenWhenEqual() {
        // RFC 9112 §6.3 allows accepting identical values; rejecting them is the stricter choice.
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc").isMalformed)
    }

    @Test(arguments: ["-1", "1e3", "0x10", "+5", "5 5", "abc", "99999999999999999999999"])
    func rejectsInvalidContentLength(value: String) {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\n").isMalformed)
    }

    @Test func rejectsTransferEncodingGzipAloneOnARequest() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc").isMalformed)
    }

    @Test func rejectsTransferEncodingWhereChunkedIsNotLast() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n").isMalformed)
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n").isMalformed)
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n").isMalformed)
    }

    @Test func foldedFramingHeadersAreStillRecognised() throws {
        // Obsolete line folding (RFC 9112 §5.2) is read as a space: the framing cannot be
        // misread as "no body".
        #expect(try parseOne("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 3\r\n\r\nabc").bodyText == "abc")
        #expect(try parseOne("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").bodyText == "abc")
    }

    @Test func rejectsWhitespaceBetweenFieldNameAndColon() {
        // RFC 9112 §5.1: a server MUST reject such a message with 400 (http-parser alone accepts it).
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc").isMalformed)
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n").isMalformed)
        #expect(parseFailure("GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n").isMalformed)
        #expect(parseFailure("GET / HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n").isMalformed)
    }

    @Test func rejectsInvalidCharactersInFieldNames() {
        #expect(parseFailure("GET / HTTP/1.1\r\nHost: x\r\nBad\u{01}Name: 1\r\n\r\n").isMalformed)
        #expect(parseFailure("GET / HTTP/1.1\r\nHost: x\r\n(Bad): 1\r\n\r\n").isMalformed)
    }

    @Test(arguments: ["zz", "-1", "1 2", "g"])
    func rejectsInvalidChunkSize(size: String) {
        let failure = parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nabc\r\n0\r\n\r\n")
        #expect(failure.isMalformed)
    }

    @Test func rejectsChunkSizeThatOverflows() {
        let failure = parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nabc\r\n")
        #expect(failure.isMalformed)
    }

    @Test func rejectsChunkDataLongerThanItsSize() {
        #expect(parseFailure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n").isMalformed)
    }

    // MARK: - Limits

    /// `GET / HTTP/1.1` with one `X-Fill` field whose value makes the counted size exactly `size`
    /// (the target, each name plus ": " and CRLF, each value).
    private func requestWithHeaderSection(ofSize size: Int) -> String {
        let counted = "/".utf8.count + "X-Fill".utf8.count + 4
        return "GET / HTTP/1.1\r\nX-Fill: \(String(repeating: "a", count: size - counted))\r\n\r\n"
    }

    @Test func acceptsHeaderSectionAtTheDefaultLimit() throws {
        let seen = try parseOne(requestWithHeaderSection(ofSize: 16 * 1024))
        #expect(seen.head.headers["X-Fill"]?.utf8.count == 16 * 1024 - 11)
        #expect(try parseOne(requestWithHeaderSection(ofSize: 16 * 1024 - 1)).method == "GET")
    }

    @Test func rejectsHeaderSectionOverTheDefaultLimit() {
        #expect(parseFailure(requestWithHeaderSection(ofSize: 16 * 1024 + 1)) == .headerSectionTooLarge(limit: 16 * 1024))
    }

    @Test func rejectsManyHeadersAddingUpOverTheLimit() {
        var text = "GET / HTTP/1.1\r\n"
        for index in 0..<40 { text += "X-Field-\(index): \(String(repeating: "v", count: 20))\r\n" }
        text += "\r\n"
        #expect(parseFailure(text, maxHeaderBytes: 1000) == .headerSectionTooLarge(limit: 1000))
        #expect(parseEveryWay(text, maxHeaderBytes: 4000).first?.request != nil)
    }

    @Test func rejectsATargetLongerThanTheHeaderLimit() {
        let text = "GET /\(String(repeating: "p", count: 20_000)) HTTP/1.1\r\nHost: x\r\n\r\n"
        #expect(parseFailure(text) == .headerSectionTooLarge(limit: 16 * 1024))
    }

    @Test func rejectsDeclaredContentLengthOverTheLimitBeforeAnyBodyByte() {
        let head = "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"
        for size in chunkSizes {
            // Only the head is sent: the failure does not wait for the body.
            let run = feed(Array(head.utf8), chunkSize: size, bodyLimit: { _ in 100 })
            #expect(run.outcomes == [.failed(.bodyTooLarge(limit: 100))])
            #expect(run.outcomeOffsets == [head.utf8.count])
        }
        #expect(parseFailure(head + String(repeating: "b", count: 101), bodyLimit: { _ in 100 }) == .bodyTooLarge(limit: 100))
    }

    @Test func acceptsBodyExactlyAtTheLimit() throws {
        let body = String(repeating: "b", count: 100)
        #expect(try parseOne("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n\(body)", bodyLimit: { _ in 100 }).bodyText == body)
        #expect(
            try parseOne("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n\(body)\r\n0\r\n\r\n", bodyLimit: { _ in 100 })
                .bodyText == body)
    }

    @Test func rejectsChunkedBodyGrowingPastTheLimit() {
        let chunk = "20\r\n\(String(repeating: "c", count: 32))\r\n"
        let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + chunk + chunk + "0\r\n\r\n"
        #expect(parseFailure(text, bodyLimit: { _ in 100 }) == .bodyTooLarge(limit: 100))
    }

    @Test func rejectsChunkedBodyOverTheLimitWithoutWaitingForTheChunk() {
        // A single chunk declared larger than the limit fails on its first byte past the limit.
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFF\r\n"
        let text = head + String(repeating: "c", count: 11)
        #expect(parseFailure(text, bodyLimit: { _ in 10 }) == .bodyTooLarge(limit: 10))
    }

    @Test func bodyLimitIsAskedPerRequestWithItsHead() {
        let text = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n" + String(repeating: "a", count: 50)
            + "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n" + String(repeating: "a", count: 50)
        let outcomes = parseEveryWay(text, bodyLimit: { head in head.path == "/big" ? 1000 : 10 })
        #expect(outcomes.count == 2)
        #expect(outcomes.first?.request?.target == "/big")
        #expect(outcomes.last == .failed(.bodyTooLarge(limit: 10)))
    }

    // MARK: - Garbage

    @Test(arguments: [
        "HELLO WORLD\r\n\r\n",
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET / FTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET / HTTP/0.9\r\n\r\n",
        "Host: x\r\n\r\n",
        "\r\nHost: x\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "get / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n: no-name\r\n\r\n",
    ])
    func rejectsMalformedRequestLines(text: String) {
        #expect(parseFailure(text).isMalformed, "\(text.debugDescription)")
    }

    @Test func rejectsTLSHandshakeBytes() {
        // A TLS ClientHello sent to the plain-HTTP port.
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0x7A, 0x00, 0xFF]
        #expect(parseFailure(hello).isMalformed)
    }

    @Test func rejectsBinaryJunk() {
        var generator = SplitMix(seed: 42)
        for _ in 0..<20 {
            var junk = (0..<64).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Not a letter first (a method), and not CR/LF (ignored before a request line).
            junk[0] = 0x80 | junk[0]
            #expect(parseFailure(junk).isMalformed)
        }
    }

    @Test func rejectsNULInTheRequestLine() {
        #expect(parseFailure(Array("GET /\u{0}a HTTP/1.1\r\n\r\n".utf8)).isMalformed)
    }

    // MARK: - After a failure; end of stream

    @Test func everyParseAfterAFailureReturnsTheSameFailure() {
        for (text, expected) in [
            ("BAD\u{1} / HTTP/1.1\r\n\r\n", nil),
            ("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", HTTPParseError.bodyTooLarge(limit: 5)),
        ] as [(String, HTTPParseError?)] {
            let parser = RequestParser(bodyLimit: { _ in 5 })
            let (_, first) = parser.parse(Array(text.utf8))
            guard case .failed(let error) = first else {
                Issue.record("expected a failure, got \(first)")
                continue
            }
            if let expected { #expect(error == expected) }
            for next in ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "x", "\r\n"] {
                let (consumed, outcome) = parser.parse(Array(next.utf8))
                #expect(consumed == 0)
                guard case .failed(let again) = outcome else {
                    Issue.record("after a failure, got \(outcome)")
                    continue
                }
                #expect(again == error)
            }
        }
    }

    @Test func emptyInputNeedsMoreData() {
        let parser = RequestParser(bodyLimit: { _ in 0 })
        let (consumed, outcome) = parser.parse([])
        #expect(consumed == 0)
        guard case .needMoreData = outcome else {
            Issue.record("got \(outcome)")
            return
        }
    }

    @Test(arguments: [
        "G",
        "GET",
        "GET ",
        "GET /pa",
        "GET /path HTTP/1.",
        "GET /path HTTP/1.1\r\n",
        "GET /path HTTP/1.1\r\nHost: x\r\n",
        "GET /path HTTP/1.1\r\nHost: x\r\n\r",
        "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ])
    func finishInTheMiddleOfARequestIsMalformed(prefix: String) {
        for size in chunkSizes {
            let run = feed(Array(prefix.utf8), chunkSize: size)
            #expect(run.outcomes.isEmpty, "\(prefix.debugDescription)")
            #expect(run.parser.isMidRequest, "\(prefix.debugDescription), chunk size \(size)")
            #expect(run.parser.finish().isMalformed, "\(prefix.debugDescription), chunk size \(size)")
        }
    }

    @Test func finishBetweenRequestsIsClean() {
        let parser = RequestParser(bodyLimit: { _ in 100 })
        #expect(parser.finish() == nil)
        #expect(!parser.isMidRequest)
        let (_, outcome) = parser.parse(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok".utf8))
        guard case .request = outcome else {
            Issue.record("got \(outcome)")
            return
        }
        #expect(!parser.isMidRequest)
        #expect(parser.finish() == nil)
        // Empty lines between requests do not start one.
        _ = parser.parse(Array("\r\n".utf8))
        #expect(parser.finish() == nil)
    }

    @Test func parseErrorStatusesMapToHTTPStatusCodes() {
        #expect(HTTPParseError.malformed("x").status == 400)
        #expect(HTTPParseError.headerSectionTooLarge(limit: 1).status == 431)
        #expect(HTTPParseError.bodyTooLarge(limit: 1).status == 413)
    }
}

/// A small deterministic generator for junk bytes.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

