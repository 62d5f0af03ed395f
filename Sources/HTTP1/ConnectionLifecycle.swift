/// When a connection must be closed for idling or for sending a request too slowly.
///
/// A plain value with no I/O: the connection reports what happened, with the loop's time, and
/// arms its one timer for `deadline`. When the timer fires, `timerFired(now:)` decides.
public struct ConnectionLifecycle: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Waiting for the first byte of the next request.
        case idle(since: UInt64)
        /// A request started arriving and is not complete.
        case receiving(since: UInt64)
        /// The server is producing or writing a response: its time, not the client's.
        case responding
        case closed
    }

    public enum Action: Sendable, Equatable {
        case none
        case arm(deadline: UInt64)
        /// Close; `requestTimedOut` says a partial request was cut (answer 408 first).
        case close(requestTimedOut: Bool)
    }

    public private(set) var state: State
    public let idleTimeout: UInt64
    public let requestTimeout: UInt64

    public init(now: UInt64, idleTimeout: UInt64, requestTimeout: UInt64) {
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        state = .idle(since: now)
    }

    public var deadline: UInt64? {
        switch state {
        case .idle(let since): since + idleTimeout
        case .receiving(let since): since + requestTimeout
        case .responding, .closed: nil
        }
    }

    /// Bytes of a request arrived.
    public mutating func bytesReceived(now: UInt64) -> Action {
        switch state {
        case .idle:
            state = .receiving(since: now)
            return .arm(deadline: now + requestTimeout)
        case .receiving, .responding, .closed:
            return .none
        }
    }

    /// A complete request was parsed and handed to the application.
    public mutating func requestReceived() -> Action {
        switch state {
        case .idle, .receiving, .responding:
            state = .responding
            return .none
        case .closed:
            return .none
        }
    }

    /// The response was written; `moreBuffered` says a pipelined request already started arriving.
    public mutating func responseSent(now: UInt64, moreBuffered: Bool) -> Action {
        switch state {
        case .responding:
            state = moreBuffered ? .receiving(since: now) : .idle(since: now)
            return .arm(deadline: deadline!)
        case .idle, .receiving, .closed:
            return .none
        }
    }

    public mutating func timerFired(now: UInt64) -> Action {
        switch state {
        case .idle(let since):
            if now >= since + idleTimeout {
                state = .closed
                return .close(requestTimedOut: false)
            }
            return .arm(deadline: since + idleTimeout)
        case .receiving(let since):
            if now >= since + requestTimeout {
                state = .closed
                return .close(requestTimedOut: true)
            }
            return .arm(deadline: since + requestTimeout)
        case .responding, .closed:
            return .none
        }
    }

    public mutating func closed() {
        state = .closed
    }
}
