import Testing
@testable import Quorix

@Suite struct ConfigurationTests {
    @Test func defaultsMatchTheDocumentation() throws {
        let configuration = try Configuration.fromEnvironment([:])
        #expect(configuration.listenHost == "127.0.0.1" && configuration.listenPort == 8080)
        #expect(configuration.databaseURL == nil)
        #expect(configuration.dataDirectory == ".quorix")
        #expect(configuration.poolSize == 8)
        #expect(configuration.effectiveHoldStatements == 2)
        #expect(configuration.liveSeatStatus && configuration.streamHeartbeatMilliseconds == 15_000)
    }

    @Test func environmentOverridesDefaults() throws {
        let configuration = try Configuration.fromEnvironment([
            "QUORIX_LISTEN": "0.0.0.0:9000", "QUORIX_DATABASE_URL": "postgresql://db/quorix",
            "QUORIX_DATA_DIR": "/var/lib/quorix", "QUORIX_ADMIN_KEY": "0123456789abcdef", "QUORIX_DB_POOL_SIZE": "16",
            "QUORIX_LIVE_SEATS": "off", "QUORIX_STREAM_HEARTBEAT_MS": "500",
        ])
        #expect(!configuration.liveSeatStatus && configuration.streamHeartbeatMilliseconds == 500)
        #expect(configuration.listenHost == "0.0.0.0" && configuration.listenPort == 9000)
        #expect(configuration.databaseURL == "postgresql://db/quorix")
        #expect(configuration.dataDirectory == "/var/lib/quorix")
        #expect(configuration.poolSize == 16)
        #expect(configuration.effectiveHoldStatements == 4)
        #expect(try Configuration.fromEnvironment(["QUORIX_DB_POOL_SIZE": "1"]).effectiveHoldStatements == 1)
        #expect(try Configuration.fromEnvironment(["QUORIX_HOLD_STATEMENTS": "3"]).effectiveHoldStatements == 3)
    }

    @Test func listenAcceptsIPv6AndLocalhost() throws {
        var configuration = Configuration()
        try configuration.setListen("[::1]:8081")
        #expect(configuration.listenHost == "::1" && configuration.listenPort == 8081)
        try configuration.setListen("localhost:0")
        #expect(configuration.listenHost == "127.0.0.1" && configuration.listenPort == 0)
    }

    @Test(arguments: [
        ["QUORIX_LISTEN": "8080"], ["QUORIX_LISTEN": "127.0.0.1:99999"], ["QUORIX_LISTEN": "example.com:80"],
        ["QUORIX_ADMIN_KEY": "short"], ["QUORIX_DB_POOL_SIZE": "0"], ["QUORIX_LOG_LEVEL": "loud"],
        ["QUORIX_HTTP_IDLE_TIMEOUT_MS": "soon"], ["QUORIX_LIVE_SEATS": "maybe"], ["QUORIX_STREAM_HEARTBEAT_MS": "0"],
        ["QUORIX_HOLD_STATEMENTS": "0"], ["QUORIX_HOLD_STATEMENTS": "9"],
    ])
    func badSettingsSayWhatToFix(_ environment: [String: String]) {
        #expect { try Configuration.fromEnvironment(environment) } throws: { error in
            let text = "\(error)"
            return environment.keys.allSatisfy { text.contains($0) } || text.contains("QUORIX_LISTEN")
        }
    }
}
