public import CoreMetrics
import Metrics
import struct Prometheus.PrometheusMetricsFactory
import class Prometheus.PrometheusCollectorRegistry
public import Loop

/// The server's metrics (swift-metrics API, Prometheus registry), rendered by `GET /metrics`.
/// Names are listed in the README.
@LoopActor
public final class ServerMetrics {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private var requestCounters: [String: CoreMetrics.Counter] = [:]
    private var durationTimers: [String: Metrics.Timer] = [:]
    private let openConnections: CoreMetrics.Gauge
    private let poolInUse: CoreMetrics.Gauge
    private let poolOpen: CoreMetrics.Gauge
    private let poolWaiting: CoreMetrics.Gauge
    private let poolSize: CoreMetrics.Gauge
    private let holdsWaiting: CoreMetrics.Gauge
    private let statements: CoreMetrics.Counter
    private let holdsExpired: CoreMetrics.Counter
    private let sweeperLag: Metrics.Timer
    private let streamClients: CoreMetrics.Gauge
    private var statementsReported = 0
    private let listenerStatements: CoreMetrics.Counter
    private var listenerStatementsReported = 0

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        openConnections = CoreMetrics.Gauge(label: "quorix_http_open_connections", factory: factory)
        poolInUse = CoreMetrics.Gauge(label: "quorix_db_pool_in_use", factory: factory)
        poolOpen = CoreMetrics.Gauge(label: "quorix_db_pool_open", factory: factory)
        poolWaiting = CoreMetrics.Gauge(label: "quorix_db_pool_waiting", factory: factory)
        poolSize = CoreMetrics.Gauge(label: "quorix_db_pool_size", factory: factory)
        holdsWaiting = CoreMetrics.Gauge(label: "quorix_holds_waiting", factory: factory)
        statements = CoreMetrics.Counter(label: "quorix_db_statements_total", factory: factory)
        holdsExpired = CoreMetrics.Counter(label: "quorix_holds_expired_total", factory: factory)
        sweeperLag = Metrics.Timer(label: "quorix_sweeper_lag_seconds", factory: factory)
        streamClients = CoreMetrics.Gauge(label: "quorix_stream_clients", factory: factory)
        listenerStatements = CoreMetrics.Counter(label: "quorix_seat_listener_statements_total", factory: factory)
    }

    public func recordRequest(route: String, method: String, status: Int, nanoseconds: UInt64) {
        let key = "\(route) \(method) \(status)"
        let counter = requestCounters[key] ?? {
            let counter = CoreMetrics.Counter(
                label: "quorix_http_requests_total",
                dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            requestCounters[key] = counter
            return counter
        }()
        counter.increment()
        let timer = durationTimers[route] ?? {
            let timer = Metrics.Timer(label: "quorix_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            durationTimers[route] = timer
            return timer
        }()
        timer.recordNanoseconds(Int64(nanoseconds))
    }

    public func setOpenConnections(_ count: Int) {
        openConnections.record(count)
    }

    public func setPool(inUse: Int, open: Int, waiting: Int, size: Int) {
        poolInUse.record(inUse)
        poolOpen.record(open)
        poolWaiting.record(waiting)
        poolSize.record(size)
    }

    /// Holds queued for a statement (see `HoldBatcher`).
    public func setHoldsWaiting(_ count: Int) {
        holdsWaiting.record(count)
    }

    public func setStreamClients(_ count: Int) {
        streamClients.record(count)
    }

    /// Holds this process's sweeper released, with each one's lag (seconds from `expires_at`).
    public func recordExpired(lags: [Double]) {
        holdsExpired.increment(by: lags.count)
        for lag in lags { sweeperLag.recordNanoseconds(Int64(max(0, lag) * 1e9)) }
    }

    /// Statements sent to PostgreSQL since the start (the counter grows by what is new).
    public func setStatementsSent(_ total: Int) {
        if total > statementsReported { statements.increment(by: total - statementsReported) }
        statementsReported = total
    }

    /// Statements of the seat listener's connection since the start (its pauses and loads).
    public func setListenerStatements(_ total: Int) {
        if total > listenerStatementsReported { listenerStatements.increment(by: total - listenerStatementsReported) }
        listenerStatementsReported = total
    }

    /// A counter by name and labels, created once (for domain counters such as holds created).
    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
        if let counter = requestCounters[key] { return counter }
        let counter = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        requestCounters[key] = counter
        return counter
    }

    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
