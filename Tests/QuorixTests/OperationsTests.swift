import Quorix
import QuorixTestSupport
import Testing

/// `/healthz` and `/metrics`.
@Suite struct OperationsTests {
    @Test func healthzAnswers200WhenTheDatabaseAnswers() async throws {
        let server = try await sharedServer.get()
        let response = try server.request("GET", "/healthz")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
        #expect(try response.json()["status"] == .string("ok"))
    }

    @Test func metricsArePrometheusTextWithTheDocumentedNames() async throws {
        let server = try await sharedServer.get()
        #expect(try server.request("GET", "/healthz").status == 200)
        let response = try server.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
        let lines = response.text.split(separator: "\n").map(String.init)
        let samples = lines.filter { !$0.hasPrefix("#") && !$0.isEmpty }

        // Every sample line is `name{labels} value`.
        for line in samples {
            let value = line.split(separator: " ").last.map(String.init) ?? ""
            #expect(Double(value) != nil || ["+Inf", "-Inf", "NaN"].contains(value), "not a sample: \(line)")
        }
        let healthz = samples.filter {
            $0.hasPrefix("quorix_http_requests_total{") && $0.contains(#"route="/healthz""#) && $0.contains(#"status="200""#)
        }
        #expect(!healthz.isEmpty, "no quorix_http_requests_total sample for /healthz with a status label")
        #expect(samples.contains { $0.hasPrefix("quorix_http_request_duration_seconds") })
        #expect(samples.contains { $0.hasPrefix("quorix_db_pool_in_use") })
        #expect(samples.contains { $0.hasPrefix("quorix_http_open_connections") })
        #expect(lines.contains { $0.hasPrefix("# TYPE quorix_http_requests_total counter") })
    }

    @Test func openConnectionsGaugeCountsConnections() async throws {
        let server = try await sharedServer.get()
        let held = try (0..<3).map { _ in try server.client() }
        for client in held { #expect(try client.request("GET", "/healthz").status == 200) }
        let metrics = try server.request("GET", "/metrics")
        let gauge = metrics.text.split(separator: "\n").first { $0.hasPrefix("quorix_http_open_connections") }
        let value = gauge.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? -1
        // The three held connections and the one asking (other tests may add more).
        #expect(value >= 4, "\(gauge ?? "no gauge")")
        for client in held { client.close() }
    }
}
