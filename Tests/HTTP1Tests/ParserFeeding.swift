@testable import HTTP1
import Testing

/// A parsed request reduced to comparable values.
struct Seen: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var version: String
    var keepAlive: Bool
    var headers: [String]
    var body: [UInt8]
    /// The head as the parser built it (not compared).
    var head: HTTPRequestHead

    init(_ request: HTTPRequest) {
        method = request.head.method
        target = request.head.target
        version = "\(request.head.versionMajor).\(request.head.versionMinor)"
        keepAlive = request.head.keepAlive
        headers = request.head.headers.fields.map { "\($0.name): \($0.value)" }
        body = request.body
        head = request.head
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    static func == (lhs: Seen, rhs: Seen) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.version == rhs.version
            && lhs.keepAlive == rhs.keepAlive && lhs.headers == rhs.headers && lhs.body == rhs.body
    }

    var description: String {
        "\(method) \(target) HTTP/\(version) keepAlive=\(keepAlive) headers=\(headers) body=\(bodyText.debugDescription)"
    }
}

/// One outcome other than `.needMoreData`.
enum Parsed: Equatable, CustomStringConvertible {
    case request(Seen)
    case failed(HTTPParseError)

    var request: Seen? {
        if case .request(let seen) = self { return seen }
        return nil
    }

    var failure: HTTPParseError? {
        if case .failed(let error) = self { return error }
        return nil
    }

    var description: String {
        switch self {
        case .request(let seen): "request(\(seen))"
        case .failed(let error): "failed(\(error))"
        }
    }
}

/// What feeding a parser produced, and when (in bytes fed so far) each event happened.
struct FeedRun {
    var chunkSize: Int
    var parser: RequestParser
    var outcomes: [Parsed] = []
    /// Bytes fed before each outcome was reported.
    var outcomeOffsets: [Int] = []
    /// Bytes fed (including the current chunk) when each `onHead` call happened.
    var headOffsets: [Int] = []
    /// Interleaving of `onHead` calls and outcomes: "head", "request", "failed".
    var log: [String] = []
}

/// Feeds input the way HTTPConnection does: in chunks as they arrive; after `.request`, the
/// unconsumed rest of the chunk is fed again; after `.failed`, nothing more.
func feed(
    _ input: [UInt8], chunkSize: Int,
    maxHeaderBytes: Int = 16 * 1024,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) -> FeedRun {
    let parser = RequestParser(maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit)
    let box = RunBox(FeedRun(chunkSize: chunkSize, parser: parser))
    var fed = 0
    parser.onHead = { _ in
        box.run.headOffsets.append(fed)
        box.run.log.append("head")
    }
    var index = 0
    outer: while index < input.count {
        let end = input.count - index > chunkSize ? index + chunkSize : input.count
        var chunk = Array(input[index..<end])
        index = end
        fed = end
        while !chunk.isEmpty {
            let (consumed, outcome) = parser.parse(chunk)
            switch outcome {
            case .needMoreData:
                #expect(consumed == chunk.count, "needMoreData must consume everything", sourceLocation: sourceLocation)
                chunk = []
            case .request(let request):
                #expect(consumed > 0 && consumed <= chunk.count, sourceLocation: sourceLocation)
                box.run.outcomes.append(.request(Seen(request)))
                box.run.outcomeOffsets.append(fed - (chunk.count - consumed))
                box.run.log.append("request")
                chunk = Array(chunk[consumed...])
            case .failed(let error):
                box.run.outcomes.append(.failed(error))
                box.run.outcomeOffsets.append(fed)
                box.run.log.append("failed")
                break outer
            }
        }
    }
    parser.onHead = nil
    return box.run
}

private final class RunBox {
    var run: FeedRun
    init(_ run: FeedRun) { self.run = run }
}

/// Chunk sizes every parser case is fed with: whole, byte by byte, and two awkward sizes.
let chunkSizes = [Int.max, 1, 2, 7]

/// Parses `text` whole and in small chunks (byte by byte included), expects every way to agree,
/// and returns the outcomes of the whole-buffer run.
func parseEveryWay(
    _ text: String,
    maxHeaderBytes: Int = 16 * 1024,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) -> [Parsed] {
    parseEveryWay(Array(text.utf8), maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
}

func parseEveryWay(
    _ bytes: [UInt8],
    maxHeaderBytes: Int = 16 * 1024,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) -> [Parsed] {
    let whole = feed(bytes, chunkSize: Int.max, maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
    for size in chunkSizes.dropFirst() {
        let split = feed(bytes, chunkSize: size, maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
        #expect(
            split.outcomes == whole.outcomes,
            "fed \(size) byte(s) at a time, the parser disagrees with the whole-buffer parse",
            sourceLocation: sourceLocation)
    }
    return whole.outcomes
}

/// The single request `text` must parse to, whichever way it is fed.
func parseOne(
    _ text: String,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> Seen {
    let outcomes = parseEveryWay(text, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
    try #require(outcomes.count == 1, "expected one request, got \(outcomes)", sourceLocation: sourceLocation)
    return try #require(outcomes[0].request, "expected a request, got \(outcomes[0])", sourceLocation: sourceLocation)
}

/// The failure `text` must produce, whichever way it is fed (and nothing before it).
func parseFailure(
    _ text: String,
    maxHeaderBytes: Int = 16 * 1024,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPParseError? {
    parseFailure(Array(text.utf8), maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
}

func parseFailure(
    _ bytes: [UInt8],
    maxHeaderBytes: Int = 16 * 1024,
    bodyLimit: @escaping RequestParser.BodyLimit = { _ in 1 << 20 },
    sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPParseError? {
    let outcomes = parseEveryWay(bytes, maxHeaderBytes: maxHeaderBytes, bodyLimit: bodyLimit, sourceLocation: sourceLocation)
    #expect(outcomes.count == 1, "expected exactly one outcome (a failure), got \(outcomes)", sourceLocation: sourceLocation)
    return outcomes.last?.failure
}

extension HTTPParseError {
    var isMalformed: Bool {
        if case .malformed = self { return true }
        return false
    }
}

extension Optional where Wrapped == HTTPParseError {
    var isMalformed: Bool { self?.isMalformed ?? false }
}
