import Foundation
import QuorixTestSupport
import Testing

/// The quick start's path: `quorix serve` with no database URL runs its own PostgreSQL cluster
/// under the data dir, loads the sample seat maps on the first run, and stops the cluster on
/// SIGTERM.
@Suite struct EmbeddedDefaultTests {
    @Test func firstRunStartsAPrivateClusterWithTheSampleMapsAndStopsIt() async throws {
        // Under /tmp and world-searchable: the cluster runs as an unprivileged user when we are root.
        let dataDir = "/tmp/quorix-embedded-\(TestCluster.randomHex(bytes: 4))"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let server = try ServerProcess.launch(
            arguments: ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir],
            environment: ["QUORIX_MIGRATIONS_DIR": PackagePaths.migrationsDirectory])
        defer { server.killAndReap() }

        let deadline = ContinuousClock.now + .seconds(90)
        var port: Int?
        while port == nil, ContinuousClock.now < deadline, server.isRunning {
            if let line = server.outputLines.first(where: { $0.contains(#""msg":"listening""#) }),
               let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                port = object["port"] as? Int
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let listening = try #require(port, "the server did not start: \(server.standardOutput) \(server.standardError)")
        #expect(FileManager.default.fileExists(atPath: dataDir + "/pgdata/PG_VERSION"), "initdb ran under the data dir")
        #expect(server.standardOutput.contains("sample seat map loaded"))

        let client = try HTTPTestClient(port: listening)
        let response = try client.request("GET", "/v1/seatmaps")
        #expect(response.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        let counts = ((body["items"] as? [[String: Any]]) ?? []).compactMap { $0["seat_count"] as? Int }.sorted()
        #expect(counts == [1_339, 17_430, 60_000], "the three sample maps are loaded")

        server.signal(SIGTERM)
        let code = await server.waitForExit(timeout: .seconds(30))
        #expect(code == 0)
        #expect(server.standardOutput.contains(#""open_handles":0"#))
        // The cluster was stopped with the server: no postmaster.pid is left behind.
        #expect(!FileManager.default.fileExists(atPath: dataDir + "/pgdata/postmaster.pid"), "the embedded PostgreSQL is still running")
    }
}
