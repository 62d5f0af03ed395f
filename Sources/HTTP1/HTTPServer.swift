public import Loop
#if canImport(Glibc)
import Glibc
#endif

/// Limits and timeouts of the HTTP server.
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var maxHeaderBytes = 16 * 1024
    /// A keep-alive connection with no request for this long is closed.
    public var idleTimeoutMilliseconds: UInt64 = 60_000
    /// A request must arrive completely within this long of its first byte.
    public var requestTimeoutMilliseconds: UInt64 = 30_000
    /// On shutdown, connections still busy after this long are closed anyway.
    public var drainTimeoutMilliseconds: UInt64 = 10_000
    /// Requests started per turn of the loop before it polls again (see `TurnLimiter`).
    public var requestsPerLoopTurn = 32

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// What the server asks of the application.
@LoopActor
public protocol HTTPResponder: AnyObject {
    /// The largest body accepted for this request (decided from its head, before the body).
    func bodyLimit(for head: HTTPRequestHead) -> Int
    func respond(to request: HTTPRequest) async -> HTTPResponse
    /// The answer to a request that could not be read (400, 413, 431) or was too slow (408).
    func errorResponse(status: Int, message: String) -> HTTPResponse
}

/// Accepts connections and serves them until `shutdown`.
@LoopActor
public final class HTTPServer {
    public let configuration: HTTPServerConfiguration
    let responder: any HTTPResponder
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var drainCompletion: (() -> Void)?
    private var drainTimer: LoopTimer?
    private var dateCache = DateCache()
    /// Requests start through this, at most `requestsPerLoopTurn` a turn (see `TurnLimiter`).
    private(set) var admission: TurnLimiter?
    public private(set) var isDraining = false
    /// Called with the number of open connections whenever it changes (a metrics gauge).
    public var onConnectionCountChange: ((Int) -> Void)?
    public var onAcceptError: ((UVError) -> Void)?

    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder) {
        self.configuration = configuration
        self.responder = responder
    }

    public func start() throws(UVError) {
        listener = try TCPListener(
            // A deep backlog: when sales open, thousands connect at once (the kernel caps it at somaxconn).
            host: configuration.host, port: configuration.port, backlog: 4096,
            onAcceptError: { [weak self] error in self?.onAcceptError?(error) },
            onConnection: { [weak self] stream in self?.accept(stream) })
        admission = TurnLimiter(perTurn: configuration.requestsPerLoopTurn)
    }

    /// The bound port (after binding port 0, the one picked).
    public var port: Int { listener?.port ?? configuration.port }

    public var connectionCount: Int { connections.count }

    private func accept(_ stream: TCPStream) {
        guard !isDraining else {
            stream.close()
            return
        }
        let connection = HTTPConnection(stream: stream, server: self)
        connections[ObjectIdentifier(connection)] = connection
        onConnectionCountChange?(connections.count)
        connection.start()
    }

    func connectionClosed(_ connection: HTTPConnection) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
        onConnectionCountChange?(connections.count)
        if isDraining && connections.isEmpty { finishDrain() }
    }

    var date: String { dateCache.current() }

    /// Stops accepting, lets in-flight requests finish (idle connections close now), and calls
    /// `completion` once every connection is closed or the drain timeout passed.
    public func shutdown(_ completion: @escaping () -> Void) {
        guard !isDraining else { return }
        isDraining = true
        drainCompletion = completion
        listener?.close()
        listener = nil
        for connection in connections.values { connection.closeWhenIdle() }
        if connections.isEmpty {
            finishDrain()
            return
        }
        let timer = LoopTimer()
        drainTimer = timer
        timer.start(after: configuration.drainTimeoutMilliseconds) { [weak self] in
            guard let self else { return }
            for connection in self.connections.values { connection.close() }
        }
    }

    private func finishDrain() {
        drainTimer?.close()
        drainTimer = nil
        admission?.close()
        admission = nil
        let completion = drainCompletion
        drainCompletion = nil
        completion?()
    }
}

/// An IMF-fixdate for the `Date` header, recomputed at most once a second.
struct DateCache {
    private var second: Int = -1
    private var text = ""

    mutating func current() -> String {
        let now = time(nil)
        if now != second {
            second = now
            var parts = tm()
            var seconds = now
            gmtime_r(&seconds, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }
}
