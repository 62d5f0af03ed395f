import Foundation
public import Logging
public import Loop
import HTTP1
import PG

/// POSTs the outbox's due deliveries: a libuv timer polls every `pollMilliseconds` (and at
/// once on start), claims as many deliveries as there are free slots (`maxConcurrent`), and
/// posts each on a connection of its own with a timeout, signed anew for this try. A 2xx marks
/// it delivered; anything else schedules the next try with `WebhookBackoff`. Nothing is held in
/// the database during a POST: the claim's lease brings back a delivery whose process died.
///
/// Host names are looked up at each try, and unless private addresses are allowed, only public
/// addresses are dialled: a name that resolved to a public address when the webhook was made
/// and now points into the private network (DNS rebinding) is refused.
@LoopActor
public final class WebhookDeliverer {
    public static let pollMilliseconds: UInt64 = 250
    public static let maxConcurrent = 8
    public static let timeoutMilliseconds: UInt64 = 5_000

    private let store: WebhookStore
    private let logger: Logger
    private let allowPrivate: Bool
    /// Made by `start`: a server that fails to start must not leave a handle open.
    private var timer: LoopTimer?
    private var polling = false
    /// The last claim filled every free slot: more may be due, so a finished delivery polls again.
    private var backlog = false
    private var inFlight: [String: HTTPClientRequest] = [:]
    private var delivering = 0
    /// Statements running (a claim or a settlement): the pool must not close under them.
    private var statements = 0
    private var closed = false
    private var onStopped: (() -> Void)?
    /// Told of each try's outcome: `delivered` or `failed`.
    public var onOutcome: ((String) -> Void)?

    public init(store: WebhookStore, logger: Logger, allowPrivate: Bool) {
        self.store = store
        self.logger = logger
        self.allowPrivate = allowPrivate
    }

    public func start() {
        guard timer == nil, !closed else { return }
        timer = LoopTimer()
        arm(afterMilliseconds: 0)
    }

    private func arm(afterMilliseconds delay: UInt64) {
        guard !closed, let timer else { return }
        timer.start(after: delay) { [weak self] in
            guard let self else { return }
            EventLoop.spawn { await self.poll() }
        }
    }

    /// Claims what is due (up to the free slots) and starts a delivery for each.
    func poll() async {
        guard !polling, !closed else { return }
        polling = true
        var claimed: [ClaimedDelivery] = []
        let free = Self.maxConcurrent - delivering
        if free > 0 {
            statements += 1
            do {
                claimed = try await store.claim(limit: free)
            } catch let error as PGError where error.isUnavailable {
                // The database is away; the next poll tries again.
            } catch {
                logger.warning("claiming webhook deliveries failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            statements -= 1
        }
        polling = false
        backlog = free > 0 && claimed.count == free
        if closed {
            // Claimed just as the server stopped: the lease brings them back.
            stoppedIfIdle()
            return
        }
        for delivery in claimed {
            delivering += 1
            EventLoop.spawn { await self.deliver(delivery) }
        }
        arm(afterMilliseconds: Self.pollMilliseconds)
    }

    private func deliver(_ delivery: ClaimedDelivery) async {
        let failure = await post(delivery)
        delivering -= 1
        inFlight.removeValue(forKey: delivery.deliveryID)
        guard !closed else {
            // Abandoned by `stop`: not settled, so the lease makes it due again.
            stoppedIfIdle()
            return
        }
        let retry = WebhookBackoff.delayMilliseconds(afterAttempts: delivery.attempts, unit: Double.random(in: 0..<1))
        statements += 1
        do {
            try await store.settle(delivery, error: failure, retryInMilliseconds: retry)
        } catch {
            logger.warning("recording a webhook delivery failed; it will be tried again", metadata: [
                "delivery_id": "\(delivery.deliveryID)", "error": "\(String(reflecting: error))",
            ])
        }
        statements -= 1
        onOutcome?(failure == nil ? "delivered" : "failed")
        if let failure {
            logger.warning("webhook delivery failed", metadata: [
                "delivery_id": "\(delivery.deliveryID)", "webhook_id": "\(delivery.webhookID)", "event_id": "\(delivery.eventID)",
                "attempts": "\(delivery.attempts)",
                "error": "\(failure)", "retry_in_ms": "\(retry)",
            ])
        }
        if closed {
            stoppedIfIdle()
        } else if backlog {
            backlog = false
            arm(afterMilliseconds: 0)
        }
    }

    /// One try; nil when the receiver answered 2xx, else what went wrong.
    private func post(_ delivery: ClaimedDelivery) async -> String? {
        let url: WebhookURL
        switch WebhookURL.parse(delivery.url) {
        case .success(let parsed): url = parsed
        case .failure(let problem): return "the webhook's url is not valid: \(problem.message)"
        }
        if url.namesPrivateHost && !allowPrivate { return "the url names a private host" }
        var addresses: [String] = []
        do {
            addresses = try await AddressResolver.resolve(host: url.host)
        } catch {
            return "cannot resolve \(url.host): \(error)"
        }
        let resolved = addresses
        addresses = Self.dialable(addresses, allowPrivate: allowPrivate)
        guard !addresses.isEmpty else {
            return resolved.isEmpty ? "\(url.host) has no address"
                : "\(url.host) resolves only to loopback, private or link-local addresses (\(resolved.joined(separator: ", ")))"
        }
        let signature = WebhookSignature.header(secret: delivery.secret, body: delivery.body, unixSeconds: Int(Date().timeIntervalSince1970))
        var failure = ""
        // The next address only when this one cannot be reached (an IPv6 address without a route):
        // once connected, the receiver's answer is the outcome.
        for address in addresses {
            guard !closed else { return "stopped" }
            let request = HTTPClientRequest(
                method: "POST", host: url.host, port: url.port, path: url.target,
                headers: [
                    ("Content-Type", "application/json"), ("User-Agent", "Quorix-Webhooks/1"),
                    (WebhookSignature.headerName, signature), ("Quorix-Delivery", delivery.deliveryID),
                ],
                body: delivery.body, timeoutMilliseconds: Self.timeoutMilliseconds)
            inFlight[delivery.deliveryID] = request
            switch await request.send(toAddress: address) {
            case .success(let response) where (200..<300).contains(response.status): return nil
            case .success(let response): return "the receiver answered \(response.status)"
            case .failure(.connectFailed(let error)): failure = "connecting to \(address) failed: \(error)"
            case .failure(let error): return "\(error)"
            }
        }
        return failure
    }

    /// The addresses a delivery may connect to, in the resolver's order: only public ones
    /// unless private ones are allowed.
    nonisolated static func dialable(_ addresses: [String], allowPrivate: Bool) -> [String] {
        allowPrivate ? addresses : addresses.filter { IPAddress($0)?.isPrivate == false }
    }

    /// Stops polling and abandons the POSTs in flight (their leases make them due again);
    /// `stopped` runs once no statement is in flight, so the pool can close under it.
    public func stop(_ stopped: @escaping () -> Void) {
        closed = true
        timer?.close()
        onStopped = stopped
        for request in inFlight.values { request.cancel() }
        stoppedIfIdle()
    }

    private func stoppedIfIdle() {
        guard closed, statements == 0, !polling, let stopped = onStopped else { return }
        onStopped = nil
        stopped()
    }
}
