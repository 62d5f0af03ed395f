// quorix-load: the load generator of Benchmarks/. One libuv loop, loopback only, bounded by a
// request list and a time limit, progress on stderr once a second, a JSON summary on stdout.
//
//   quorix-load keepalive --port P --connections 64 --requests FILE [--confirm] [--seconds 30]
//   quorix-load crowd     --port P --connections 2000 --requests FILE [--seconds 60]
//
// FILE has one request per line: METHOD <tab> PATH [<tab> JSON BODY]; each line is sent once.
// `keepalive`: every connection sends the next unsent line as soon as its previous answer came
// back. `--confirm` follows each 201 hold with a confirm of its token on the same connection.
// `crowd`: every connection is opened first; then all requests are written in one loop turn
// (the "sales open" moment) and each latency is measured from that moment.
import Foundation
import HTTP1
import Loop

struct Options {
    var mode = ""
    var host = "127.0.0.1"
    var port = 8080
    var connections = 64
    var requestsFile = ""
    var headers: [String] = []
    var confirm = false
    var seconds = 30.0

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var rest = arguments.dropFirst()
        guard let mode = rest.popFirst(), ["keepalive", "crowd"].contains(mode) else { usage("the first argument is the mode: keepalive or crowd") }
        options.mode = mode
        while let flag = rest.popFirst() {
            func value() -> String {
                guard let next = rest.popFirst() else { usage("\(flag) needs a value") }
                return next
            }
            switch flag {
            case "--host": options.host = value()
            case "--port": options.port = Int(value()) ?? 0
            case "--connections": options.connections = Int(value()) ?? 0
            case "--requests": options.requestsFile = value()
            case "--header": options.headers.append(value())
            case "--confirm": options.confirm = true
            case "--seconds": options.seconds = Double(value()) ?? 0
            default: usage("unknown option \(flag)")
            }
        }
        guard options.host.hasPrefix("127.") || options.host == "::1" else { usage("--host must be a loopback address") }
        guard options.port > 0, options.connections > 0, options.seconds > 0, !options.requestsFile.isEmpty else {
            usage("--port, --connections, --seconds must be positive and --requests must name a file")
        }
        return options
    }
}

func usage(_ problem: String) -> Never {
    FileHandle.standardError.write(Data("quorix-load: \(problem)\nusage: quorix-load keepalive|crowd --port P --connections N --requests FILE [--header 'Name: value'] [--confirm] [--seconds S]\n".utf8))
    exit(2)
}

func progress(_ line: String) {
    FileHandle.standardError.write(Data("[load] \(line)\n".utf8))
}

/// Many connections need as many descriptors.
func raiseOpenFileLimit(needed: Int) {
    let limit = ProcessLimits.raiseOpenFileLimit()
    if limit < needed + 64 {
        usage("\(needed) connections need more open files than this process may have (\(limit)); raise the hard limit (ulimit -Hn)")
    }
}

func readRequests(_ path: String, headers: [String], host: String) -> [[UInt8]] {
    guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else { usage("cannot read \(path)") }
    let extra = headers.map { "\($0)\r\n" }.joined()
    return contents.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count >= 2 else { return nil }
        return HTTPRequestText.make(method: String(fields[0]), path: String(fields[1]), body: fields.count > 2 ? String(fields[2]) : "", headers: extra, host: host)
    }
}

enum HTTPRequestText {
    static func make(method: String, path: String, body: String, headers: String, host: String) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n\(headers)"
        if !body.isEmpty || method == "POST" {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        return Array((text + "\r\n" + body).utf8)
    }
}

/// Latencies in microseconds, by kind of request, and answers by status.
@LoopActor
final class Tally {
    var latencies: [String: [Int]] = [:]
    var statuses: [String: [Int: Int]] = [:]
    var failures: [String: Int] = [:]
    var completed = 0

    func record(_ kind: String, status: Int, microseconds: Int) {
        latencies[kind, default: []].append(microseconds)
        statuses[kind, default: [:]][status, default: 0] += 1
        completed += 1
    }

    func fail(_ reason: String) {
        failures[reason, default: 0] += 1
    }

    static func percentile(_ sorted: [Int], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
        return Double(sorted[max(0, index)]) / 1000
    }

    func json(seconds: Double) -> String {
        var kinds: [String] = []
        for (kind, values) in latencies.sorted(by: { $0.key < $1.key }) {
            let sorted = values.sorted()
            let statusText = statuses[kind, default: [:]].sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
            kinds.append("""
                "\(kind)": {"count": \(sorted.count), "per_second": \(Double(sorted.count) / seconds), \
                "p50_ms": \(Self.percentile(sorted, 0.5)), "p90_ms": \(Self.percentile(sorted, 0.9)), \
                "p99_ms": \(Self.percentile(sorted, 0.99)), "max_ms": \(Double(sorted.last ?? 0) / 1000), "statuses": {\(statusText)}}
                """)
        }
        let failureText = failures.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        return "{\"seconds\": \(seconds), \"kinds\": {\(kinds.joined(separator: ", "))}, \"failures\": {\(failureText)}}"
    }
}

/// One keep-alive connection: send, wait for the whole answer (with the time it arrived).
@LoopActor
final class Connection {
    typealias Answer = (response: ResponseFramer.Response, arrived: UInt64)
    let stream: TCPStream
    private var framer = ResponseFramer()
    private var waiting: CheckedContinuation<Answer?, Never>?
    private var ready: [Answer] = []
    private var ended = false

    init(stream: TCPStream) {
        self.stream = stream
        stream.startReading(onRead: { [unowned self] bytes in
            let arrived = EventLoop.hrtime()
            do {
                self.ready += try self.framer.feed(bytes).map { ($0, arrived) }
            } catch {
                self.end()
                return
            }
            if !self.ready.isEmpty, let waiting = self.waiting {
                self.waiting = nil
                waiting.resume(returning: self.ready.removeFirst())
            }
        }, onReadEnd: { [unowned self] _ in self.end() })
    }

    private func end() {
        ended = true
        stream.close()
        waiting?.resume(returning: nil)
        waiting = nil
    }

    /// Writes the request (unless nil: its bytes were sent already) and waits for the answer; nil
    /// when the connection ended first.
    func exchange(_ request: [UInt8]?) async -> Answer? {
        if let request { stream.write(request) }
        if !ready.isEmpty { return ready.removeFirst() }
        if ended { return nil }
        return await withCheckedContinuation { waiting = $0 }
    }

    func close() {
        end()
    }
}

/// Waits for a number of loop tasks to finish (task groups of loop-isolated closures trip the
/// 6.3 compiler's region checker).
@LoopActor
final class Countdown {
    private var remaining: Int
    private var waiter: CheckedContinuation<Void, Never>?

    init(_ count: Int) { remaining = count }

    func done() {
        remaining -= 1
        if remaining == 0, let waiter {
            self.waiter = nil
            waiter.resume()
        }
    }

    func wait() async {
        guard remaining > 0 else { return }
        await withCheckedContinuation { waiter = $0 }
    }
}

/// `"token":"qh_..."` from a hold's JSON body, without a JSON parser.
func token(in body: [UInt8]) -> String? {
    let key = Array("\"token\":\"".utf8)
    guard body.count > key.count else { return nil }
    for start in 0...(body.count - key.count) where body[start..<(start + key.count)].elementsEqual(key) {
        let rest = body[(start + key.count)...]
        guard let end = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: rest[..<end], as: UTF8.self)
    }
    return nil
}

@LoopActor
func connectAll(_ options: Options, tally: Tally) async -> [Connection] {
    // A bounded number of connects in flight: the server's listen backlog is finite.
    var connections: [Connection] = []
    var next = 0
    let batch = 256
    while next < options.connections {
        let count = min(batch, options.connections - next)
        let countdown = Countdown(count)
        let box = Box<[Connection]>([])
        for _ in 0..<count {
            EventLoop.spawn {
                if let stream = try? await TCPStream.connect(host: options.host, port: options.port) {
                    box.value.append(Connection(stream: stream))
                } else {
                    tally.fail("connect")
                }
                countdown.done()
            }
        }
        await countdown.wait()
        connections += box.value
        next += count
        if options.connections >= 1000 { progress("connected \(connections.count) of \(options.connections)") }
    }
    return connections
}

@LoopActor
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

@LoopActor
func runKeepAlive(_ options: Options, requests: [[UInt8]], tally: Tally, confirmHeaders: String) async -> Double {
    let connections = await connectAll(options, tally: tally)
    let cursor = Box(0)
    let started = EventLoop.hrtime()
    let deadline = started + UInt64(options.seconds * 1e9)
    let countdown = Countdown(connections.count)
    for connection in connections {
        EventLoop.spawn {
            defer { countdown.done() }
            while cursor.value < requests.count, EventLoop.hrtime() < deadline {
                let request = requests[cursor.value]
                cursor.value += 1
                let sent = EventLoop.hrtime()
                guard let (response, answered) = await connection.exchange(request) else { tally.fail("connection closed"); return }
                tally.record("request", status: response.status, microseconds: Int((answered - sent) / 1000))
                if options.confirm, response.status == 201, let token = token(in: response.body) {
                    let confirm = HTTPRequestText.make(method: "POST", path: "/v1/holds/\(token)/confirm", body: "", headers: confirmHeaders, host: options.host)
                    let confirmSent = EventLoop.hrtime()
                    guard let (confirmed, done) = await connection.exchange(confirm) else { tally.fail("connection closed"); return }
                    tally.record("confirm", status: confirmed.status, microseconds: Int((done - confirmSent) / 1000))
                    tally.record("hold+confirm", status: confirmed.status, microseconds: Int((done - sent) / 1000))
                }
            }
        }
    }
    await countdown.wait()
    let seconds = Double(EventLoop.hrtime() - started) / 1e9
    for connection in connections { connection.close() }
    return seconds
}

@LoopActor
func runCrowd(_ options: Options, requests: [[UInt8]], tally: Tally) async -> Double {
    let connections = await connectAll(options, tally: tally)
    guard requests.count >= connections.count else { usage("crowd mode needs a request line per connection (\(connections.count))") }
    progress("all \(connections.count) connected; releasing the crowd")
    // Sales open: every request is written before any answer is read; each latency counts from here.
    let released = EventLoop.hrtime()
    for (index, connection) in connections.enumerated() { connection.stream.write(requests[index]) }
    let watchdog = LoopTimer()
    watchdog.start(after: UInt64(options.seconds * 1000)) {
        for connection in connections { connection.close() }
    }
    let countdown = Countdown(connections.count)
    for connection in connections {
        EventLoop.spawn {
            defer { countdown.done() }
            guard let (response, arrived) = await connection.exchange(nil) else { tally.fail("no answer within \(options.seconds)s"); return }
            tally.record("request", status: response.status, microseconds: Int((arrived - released) / 1000))
        }
    }
    await countdown.wait()
    watchdog.close()
    let seconds = Double(EventLoop.hrtime() - released) / 1e9
    for connection in connections { connection.close() }
    return seconds
}

let options = Options.parse(CommandLine.arguments)
raiseOpenFileLimit(needed: options.connections)
let extraHeaders = options.headers.map { "\($0)\r\n" }.joined()
let requests = readRequests(options.requestsFile, headers: options.headers, host: options.host)
guard !requests.isEmpty else { usage("\(options.requestsFile) has no request lines") }

EventLoop.spawn {
    let tally = Tally()
    let reporter = LoopTimer()
    let reported = Box(0)
    reporter.start(after: 1000, repeat: 1000) {
        progress("\(tally.completed) answers, \(tally.completed - reported.value)/s")
        reported.value = tally.completed
    }
    let seconds = options.mode == "crowd"
        ? await runCrowd(options, requests: requests, tally: tally)
        : await runKeepAlive(options, requests: requests, tally: tally, confirmHeaders: extraHeaders)
    reporter.close()
    print(tally.json(seconds: seconds))
    EventLoop.shared.finish()
}
EventLoop.shared.run()
