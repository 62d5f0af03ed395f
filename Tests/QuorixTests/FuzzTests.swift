import Foundation
import QuorixTestSupport
import Testing

/// Random and broken requests against a server of its own: every answer is a client error in the
/// contract's shape (or the connection is closed), and the server keeps serving.
@Suite struct FuzzTests {
    /// SplitMix64: small, seeded, reproducible (the seed is printed with any failure).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func templates(adminKey: String) -> [[UInt8]] {
        [
            HTTPTestClient.requestBytes("GET", "/healthz"),
            HTTPTestClient.requestBytes("GET", "/v1/events?limit=5&cursor=abc", headers: [("Accept", "application/json")]),
            HTTPTestClient.requestBytes(
                "POST", "/v1/keys", headers: [("Authorization", "Bearer \(adminKey)"), ("Content-Type", "application/json")],
                body: Array(#"{"role": "client", "name": "fuzz"}"#.utf8)),
            HTTPTestClient.requestBytes(
                "POST", "/v1/keys", headers: [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                body: Array("5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n".utf8)),
        ]
    }

    static func mutate(_ input: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
            case 3: bytes.remove(at: index)
            case 4: bytes.insert(contentsOf: [13, 10], at: index)
            default:
                let end = min(bytes.count, index + Int.random(in: 1...16, using: &random))
                bytes.insert(contentsOf: bytes[index..<end], at: index)
            }
        }
        return bytes
    }

    /// Sends `input` on a fresh connection, half-closes, and checks whatever comes back.
    static func check(_ input: [UInt8], port: Int, label: String) -> String? {
        let client: HTTPTestClient
        do {
            client = try HTTPTestClient(port: port, timeout: .seconds(5))
        } catch {
            return "\(label): cannot connect: \(error)"
        }
        defer { client.close() }
        do {
            try client.send(input)
        } catch let error as HTTPTestClientError where error.isClosed {
        } catch {
            return "\(label): send failed: \(error)"
        }
        client.shutdownWrite()
        var answered = 0
        while answered < 4 {
            do {
                let response = try client.readResponse(timeout: .seconds(5))
                answered += 1
                if response.status >= 500 { return "\(label): \(response)" }
                if response.status >= 400 && !response.errorShapeProblems.isEmpty {
                    return "\(label): \(response.errorShapeProblems) in \(response)"
                }
            } catch let error as HTTPTestClientError {
                switch error {
                case .closed: return nil
                case .timedOut: return "\(label): no answer and no close within 5 s (sent \(input.count) bytes)"
                default: return "\(label): \(error)"
                }
            } catch {
                return "\(label): \(error)"
            }
        }
        return nil
    }

    @Test(.timeLimit(.minutes(2)))
    func randomAndBrokenRequestsNeverCrashTheServer() async throws {
        let server = try await ServerProcess.start()
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = Generator(state: seed)
        let templates = Self.templates(adminKey: server.adminKey)
        let started = ContinuousClock.now
        var failures: [String] = []
        var cases = 0
        for round in 0..<400 where ContinuousClock.now - started < .seconds(60) && failures.count < 5 {
            let input: [UInt8]
            let kind: String
            switch round % 4 {
            case 0:
                kind = "random bytes"
                input = (0..<Int.random(in: 1...600, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1, 2:
                kind = "mutated request"
                input = Self.mutate(templates.randomElement(using: &random)!, &random)
            default:
                kind = "truncated request"
                let template = templates.randomElement(using: &random)!
                input = Array(template.prefix(Int.random(in: 1..<template.count, using: &random)))
            }
            cases += 1
            if let failure = Self.check(input, port: server.port, label: "case \(round) (\(kind), seed \(seed))") {
                failures.append(failure + "\n  input: \(String(decoding: input.prefix(300), as: UTF8.self).debugDescription)")
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(cases >= 100, "only \(cases) cases ran in time")

        // Random JSON bodies on a valid request.
        var bodyFailures: [String] = []
        let valid = Array(#"{"role": "client", "name": "fuzz body"}"#.utf8)
        for round in 0..<150 where ContinuousClock.now - started < .seconds(80) {
            let body = round % 3 == 0
                ? (0..<Int.random(in: 0...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                : Self.mutate(valid, &random)
            do {
                let response = try HTTPTestClient.request(
                    port: server.port, "POST", "/v1/keys",
                    headers: [("Authorization", "Bearer \(server.adminKey)"), ("Content-Type", "application/json")], body: body)
                if ![201, 400, 422].contains(response.status) || (response.status != 201 && !response.errorShapeProblems.isEmpty) {
                    bodyFailures.append("body \(String(decoding: body, as: UTF8.self).debugDescription) (seed \(seed)): \(response)")
                }
            } catch {
                bodyFailures.append("body \(String(decoding: body, as: UTF8.self).debugDescription) (seed \(seed)): \(error)")
            }
            if bodyFailures.count >= 5 { break }
        }
        #expect(bodyFailures.isEmpty, "\(bodyFailures.joined(separator: "\n"))")

        // Still alive and well.
        #expect(server.isRunning)
        #expect(try HTTPTestClient.request(port: server.port, "GET", "/healthz").status == 200)
        let errors = server.logLines.filter { $0.contains(#""level":"error""#) || $0.contains(#""level":"critical""#) }
        #expect(errors.isEmpty, "\(errors.prefix(5).joined(separator: "\n"))")
    }
}
