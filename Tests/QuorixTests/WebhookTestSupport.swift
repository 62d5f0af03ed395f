import Crypto
import Foundation
import PG
import Quorix
import QuorixTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the webhook suites: a receiver (a small HTTP listener on 127.0.0.1 run by a
/// thread of this process), a server that allows private webhook addresses, and an organizer of
/// each test's own, so that no test receives another's deliveries.

/// One POST as the receiver got it.
struct ReceivedDelivery: Sendable {
    let path: String
    /// Header names lowercased.
    let headers: [String: String]
    let body: [UInt8]
    let receivedAt: Date

    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    var id: String? { json["id"]?.catalogString }
    var type: String? { json["type"]?.catalogString }
    var data: JSONValue? { json["data"] }
}

/// An HTTP/1.1 listener that records every request and answers each with `status` (no body).
/// `stop()` closes the port (connections are then refused); `start(port:)` opens it again.
final class WebhookReceiver: Sendable {
    private struct State {
        var listening: Int32 = -1
        var deliveries: [ReceivedDelivery] = []
        var status = 200
    }

    private let state = Mutex(State())
    let port: Int

    /// Listens on `port` (0: one the kernel picks).
    init(port: Int = 0) throws {
        let socket = try WebhookReceiver.listen(port: port)
        self.port = try WebhookReceiver.boundPort(socket)
        state.withLock { $0.listening = socket }
        run(socket)
    }

    var url: String { "http://127.0.0.1:\(port)/hooks/quorix" }

    var deliveries: [ReceivedDelivery] { state.withLock { $0.deliveries } }

    /// The status the next requests are answered with; 0: none, the connection is kept open.
    func answer(_ status: Int) { state.withLock { $0.status = status } }

    func stop() {
        let socket = state.withLock { state -> Int32 in
            defer { state.listening = -1 }
            return state.listening
        }
        if socket >= 0 {
            Glibc.shutdown(socket, Int32(SHUT_RDWR))
            Glibc.close(socket)
        }
    }

    /// Listens again on the same port.
    func restart() throws {
        let socket = try WebhookReceiver.listen(port: port)
        state.withLock { $0.listening = socket }
        run(socket)
    }

    deinit { stop() }

    /// Deliveries of `type`, once at least `count` have arrived (waiting up to `seconds`).
    func waitFor(_ type: String, count: Int = 1, seconds: Double = 10) async throws -> [ReceivedDelivery] {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while true {
            let found = deliveries.filter { $0.type == type }
            if found.count >= count { return found }
            if Date() > deadline {
                throw SupportError("\(found.count) \(type) deliveries within \(seconds) s, wanted \(count); got \(deliveries.map { $0.type ?? "?" })")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private static func listen(port: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw SupportError("socket failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(socket, 64) == 0 else {
            Glibc.close(socket)
            throw SupportError("cannot listen on 127.0.0.1:\(port): errno \(errno)")
        }
        return socket
    }

    private static func boundPort(_ socket: Int32) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard status == 0 else { throw SupportError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts until the socket is closed; each connection on a thread of its own.
    private func run(_ socket: Int32) {
        let thread = Thread { [self] in
            while true {
                let connection = accept(socket, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let worker = Thread { [self] in serve(connection) }
                worker.start()
            }
        }
        thread.start()
    }

    private func serve(_ connection: Int32) {
        defer { Glibc.close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let request = Self.parse(buffer) {
                let status = state.withLock { state -> Int in
                    state.deliveries.append(request)
                    return state.status
                }
                if status == 0 {
                    // Never answers: waits for the client to give up and close.
                    while recv(connection, &chunk, chunk.count, 0) > 0 {}
                    return
                }
                let answer = Array("HTTP/1.1 \(status) Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return
            }
            let count = recv(connection, &chunk, chunk.count, 0)
            if count <= 0 { return }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// A whole request (head and `Content-Length` body) at the start of `bytes`, or nil.
    static func parse(_ bytes: [UInt8]) -> ReceivedDelivery? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        let path = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        return ReceivedDelivery(path: path, headers: headers, body: Array(bytes[end + 4 ..< end + 4 + length]), receivedAt: Date())
    }
}

/// The webhook suites' server: private webhook addresses allowed (receivers are on loopback),
/// the theatre uploaded.
final class WebhookServer: Sendable {
    private let task = Mutex<Task<ServerProcess, any Error>?>(nil)
    private let theatre = Mutex<Int?>(nil)

    func get() async throws -> ServerProcess {
        let task = task.withLock { task -> Task<ServerProcess, any Error> in
            if let task { return task }
            let started = Task { try await ServerProcess.start(environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"]) }
            task = started
            return started
        }
        return try await task.value
    }

    /// A fixture with an organizer and a client of this test's own, on the shared server.
    func fixture() async throws -> CatalogServer.Fixture {
        let fixture = try await WebhookServer.fixture(on: try await get(), theatreID: theatre.withLock { $0 })
        theatre.withLock { $0 = fixture.theatreID }
        return fixture
    }

    /// New organizer and client keys; the theatre is uploaded unless `theatreID` names it.
    static func fixture(on server: ServerProcess, theatreID known: Int? = nil) async throws -> CatalogServer.Fixture {
        let organizer = try server.createKey(role: "organizer", name: uniqueName("webhook organizer"))
        let client = try server.createKey(role: "client", name: uniqueName("webhook client"))
        let theatreID = try known ?? server.uploadSample(SampleMaps.theatre, key: organizer)
        return CatalogServer.Fixture(
            server: server, organizer: organizer, otherOrganizer: organizer, client: client, otherClient: client,
            theatreID: theatreID, stadiumID: theatreID)
    }
}

let webhookServer = WebhookServer()

extension CatalogServer.Fixture {
    /// Creates a webhook of the organizer; the 201 answer's JSON.
    func createWebhook(url: String, events: [String], key: String? = nil) throws -> JSONValue {
        let response = try send("POST", "/v1/webhooks", key: key ?? organizer, json: #"{"url": "\#(url)", "events": \#(jsonList(events))}"#)
        guard response.status == 201 else { throw SupportError("creating a webhook failed: \(response)") }
        return try response.json()
    }

    /// A webhook for every event type to `receiver`; its secret.
    func subscribeAll(_ receiver: WebhookReceiver) throws -> String {
        let created = try createWebhook(url: receiver.url, events: WebhookStore.eventTypes)
        guard let secret = created["secret"]?.catalogString else { throw SupportError("no secret in \(created)") }
        return secret
    }
}

/// Checks `Quorix-Signature` of a delivery: its `t` is recent and its `v1` is the HMAC-SHA256 of
/// `"<t>.<body>"` keyed with `secret`, computed here independently of the server's code.
func expectSigned(_ delivery: ReceivedDelivery, secret: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let header = delivery.headers["quorix-signature"] else {
        Issue.record("no Quorix-Signature in \(delivery.headers)", sourceLocation: sourceLocation)
        return
    }
    var fields: [String: String] = [:]
    for part in header.split(separator: ",") {
        let pair = part.split(separator: "=", maxSplits: 1)
        if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
    }
    guard let t = fields["t"], let seconds = Int(t), let v1 = fields["v1"] else {
        Issue.record("malformed Quorix-Signature: \(header)", sourceLocation: sourceLocation)
        return
    }
    let age = Date().timeIntervalSince1970 - Double(seconds)
    #expect(age > -5 && age < 60, "t is \(age) s old", sourceLocation: sourceLocation)
    let mac = HMAC<SHA256>.authenticationCode(for: Array("\(t).".utf8) + delivery.body, using: SymmetricKey(data: Array(secret.utf8)))
    let expected = mac.map { String(format: "%02x", $0) }.joined()
    #expect(v1 == expected, "signature \(v1), expected \(expected)", sourceLocation: sourceLocation)
}
