import Testing
@testable import Quorix

/// Webhook URLs, the address classifier and the retry schedule, without a server.
@Suite struct WebhookAddressTests {
    func parsed(_ text: String) -> WebhookURL? {
        if case .success(let url) = WebhookURL.parse(text) { return url }
        return nil
    }

    func problem(_ text: String) -> String? {
        if case .failure(let problem) = WebhookURL.parse(text) { return problem.message }
        return nil
    }

    @Test func readsHostPortAndTarget() {
        #expect(parsed("http://hooks.example.com/q") == WebhookURL(host: "hooks.example.com", port: 80, target: "/q"))
        #expect(parsed("HTTP://Hooks.Example.COM:8080") == WebhookURL(host: "hooks.example.com", port: 8080, target: "/"))
        #expect(parsed("http://example.com?x=1") == WebhookURL(host: "example.com", port: 80, target: "/?x=1"))
        #expect(parsed("http://[2001:db8::1]:81/a/b?c") == WebhookURL(host: "2001:db8::1", port: 81, target: "/a/b?c"))
        #expect(parsed("http://93.184.216.34/") == WebhookURL(host: "93.184.216.34", port: 80, target: "/"))
        #expect(parsed("http://example.com./") == WebhookURL(host: "example.com", port: 80, target: "/"))
    }

    @Test func refusesWhatCannotBeDelivered() {
        #expect(problem("https://example.com/")?.contains("https is not supported") == true)
        for bad in [
            "ftp://example.com/", "example.com", "http://", "http:///path", "http://exa mple.com/", "http://user@example.com/",
            "http://example.com:0/", "http://example.com:65536/", "http://example.com:8o/", "http://example.com/#frag",
            "http://[::1/", "http://[not:an:ip]/", "http://-bad-.com/", "http://under_score.com/", "http://ex%41mple.com/",
            // Numeric forms the system resolver would read as IPv4 addresses (127.0.0.1 in disguise).
            "http://2130706433/", "http://127.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://017700000001/",
            "http://127.000.000.001/",
            "http://é.example/",
        ] {
            #expect(problem(bad) != nil, "\(bad) was accepted")
        }
        #expect(problem("http://example.com/" + String(repeating: "a", count: 2_100)) != nil)
    }

    @Test func classifiesLoopbackPrivateAndLinkLocalAddresses() {
        let privateAddresses = [
            "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.0", "172.31.255.255", "192.168.0.1",
            "169.254.169.254", "0.0.0.0", "0.1.2.3", "::1", "::", "fc00::1", "fdff:ffff::1", "fe80::1", "febf::1",
            "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.1.1",
        ]
        for text in privateAddresses {
            #expect(IPAddress(text)?.isPrivate == true, "\(text)")
        }
        let publicAddresses = [
            "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.0", "192.169.0.1", "169.253.0.1", "11.0.0.1", "126.255.255.255",
            "128.0.0.1", "2001:db8::1", "2606:4700::1111", "fec0::1", "fbff::1", "::ffff:8.8.8.8", "::2",
        ]
        for text in publicAddresses {
            #expect(IPAddress(text)?.isPrivate == false, "\(text)")
        }
        #expect(IPAddress("1.2.3") == nil && IPAddress("1.2.3.256") == nil && IPAddress("1::2::3") == nil && IPAddress("fe80::1%eth0") == nil)
        #expect(IPAddress("1:2:3:4:5:6:7:8") == .v6([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]))
        #expect(IPAddress("1:2:3:4:5:6:7") == nil && IPAddress("1:2:3:4:5:6:7:8:9") == nil)
    }

    @Test func privateAddressesAreAllowedOnlyByOneInTheEnvironment() throws {
        #expect(try Configuration.fromEnvironment([:]).webhookAllowPrivate == false)
        #expect(try Configuration.fromEnvironment(["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"]).webhookAllowPrivate == true)
        #expect(try Configuration.fromEnvironment(["QUORIX_WEBHOOK_ALLOW_PRIVATE": "0"]).webhookAllowPrivate == false)
        #expect(throws: Configuration.Invalid.self) { try Configuration.fromEnvironment(["QUORIX_WEBHOOK_ALLOW_PRIVATE": "yes"]) }
    }

    @Test func privateHostsOfURLs() {
        for text in ["http://localhost/", "http://a.localhost:1/", "http://127.0.0.1/", "http://[::1]/", "http://[fe80::2]/", "http://10.9.8.7/"] {
            #expect(parsed(text)?.namesPrivateHost == true, "\(text)")
        }
        // A name is judged by its addresses when it is delivered to, not by how it looks.
        for text in ["http://example.com/", "http://8.8.8.8/", "http://[2001:db8::5]/", "http://localhost.example.com/"] {
            #expect(parsed(text)?.namesPrivateHost == false, "\(text)")
        }
    }

    @Test func deliveriesDialOnlyPublicAddressesOfANameUnlessAllowed() {
        let resolved = ["10.0.0.5", "93.184.216.34", "::1", "2606:4700::1111"]
        #expect(WebhookDeliverer.dialable(resolved, allowPrivate: false) == ["93.184.216.34", "2606:4700::1111"])
        #expect(WebhookDeliverer.dialable(resolved, allowPrivate: true) == resolved)
        #expect(WebhookDeliverer.dialable(["127.0.0.1", "fe80::1"], allowPrivate: false).isEmpty)
    }

    @Test func backoffDoublesFromOneSecondToTenMinutesWithJitterInTheUpperHalf() {
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 1, unit: 0) == 500)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 1, unit: 0.999_999) == 999)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 2, unit: 0) == 1_000)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 3, unit: 0.5) == 3_000)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 4, unit: 1) == 8_000)
        var previousLow: UInt64 = 0
        for attempts in 1...40 {
            let low = WebhookBackoff.delayMilliseconds(afterAttempts: attempts, unit: 0)
            let high = WebhookBackoff.delayMilliseconds(afterAttempts: attempts, unit: 1)
            #expect(low >= previousLow && high == 2 * low && high <= 600_000, "attempt \(attempts): \(low)...\(high)")
            previousLow = low
        }
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 40, unit: 1) == 600_000)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: 0, unit: 0) == 500)
        #expect(WebhookBackoff.delayMilliseconds(afterAttempts: Int.max, unit: 1) == 600_000)
    }

    @Test func signatureIsTheHexHMACOfTimeDotBody() {
        // HMAC-SHA256 of "1700000000.{}" with key "whsec_test", computed with openssl.
        let header = WebhookSignature.header(secret: "whsec_test", body: Array("{}".utf8), unixSeconds: 1_700_000_000)
        #expect(header == "t=1700000000,v1=\(Self.opensslVector)")
    }

    static let opensslVector = "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
}
