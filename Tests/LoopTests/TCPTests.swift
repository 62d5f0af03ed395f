@testable import Loop
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A listener on 127.0.0.1 that keeps every accepted stream, optionally echoing what it reads.
@LoopActor
final class TestServer {
    let listener: TCPListener
    let accepted = Collected<TCPStream>()
    let sinks = Collected<ByteSink>()

    init(echo: Bool) throws(UVError) {
        let accepted = self.accepted
        let sinks = self.sinks
        listener = try TCPListener(host: "127.0.0.1", port: 0) { stream in
            accepted.append(stream)
            let sink = ByteSink()
            sinks.append(sink)
            stream.startReading(
                onRead: { bytes in
                    sink.bytes.append(contentsOf: bytes)
                    if echo { stream.write(Array(bytes)) }
                },
                onReadEnd: { error in
                    sink.end = error
                    stream.close()
                })
        }
    }

    var port: Int { listener.port }

    func close() {
        listener.close()
        for stream in accepted.items { stream.close() }
    }
}

extension LoopSuite {
    @Suite struct TCPTests {
        @Test func listenerOnPortZeroGetsAPort() async throws {
            try await onLoop {
                let listener = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                defer { listener.close() }
                #expect(listener.port > 0)
                #expect(listener.port <= 65_535)
            }
        }

        @Test func clientWritesServerReadsAndEchoes() async throws {
            try await onLoop {
                let server = try TestServer(echo: true)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                defer { client.close() }
                #expect(client.peerAddress == "127.0.0.1:\(server.port)")
                let received = ByteSink()
                received.reading(client)
                #expect(client.isReading)

                let written = Collected<UVError?>()
                client.write(Array("hello, loop".utf8)) { written.append($0) }
                #expect(await until { received.bytes.count == 11 })
                #expect(String(decoding: received.bytes, as: UTF8.self) == "hello, loop")
                #expect(server.sinks.items.first?.bytes == Array("hello, loop".utf8))
                #expect(written.count == 1)
                #expect(written.items.first.flatMap { $0 } == nil)
                // The accepted side sees the client's address.
                #expect(server.accepted.items.first?.peerAddress.hasPrefix("127.0.0.1:") == true)

                // A second exchange on the same connection.
                client.write(Array(" again".utf8))
                #expect(await until { received.bytes.count == 17 })
                #expect(String(decoding: received.bytes, as: UTF8.self) == "hello, loop again")
            }
        }

        @Test func largeWritesArriveIntactAndInOrder() async throws {
            try await onLoop(timeoutMilliseconds: 15_000) {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                defer { client.close() }
                // Three writes of 1.5 MB with different patterns, queued back to back.
                let parts: [[UInt8]] = (0..<3).map { part in
                    (0..<1_572_864).map { UInt8(truncatingIfNeeded: $0 &* (part + 1) &+ $0 >> 11) }
                }
                let completions = Collected<UVError?>()
                for part in parts {
                    client.write(part) { completions.append($0) }
                }
                let total = parts.reduce(0) { $0 + $1.count }
                #expect(await until(milliseconds: 10_000) {
                    completions.count == 3 && server.sinks.items.first?.bytes.count == total
                })
                #expect(completions.items.count == 3)
                #expect(completions.items.allSatisfy { $0 == nil })
                #expect(client.pendingWriteBytes == 0)
                let received = try #require(server.sinks.items.first).bytes
                #expect(received.count == total)
                #expect(sameBytes(received, parts[0] + parts[1] + parts[2]))
            }
        }

        @Test func peerCloseDeliversEndOfFile() async throws {
            try await onLoop {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                client.write(Array("bye".utf8))
                #expect(await until { server.sinks.items.first?.bytes.count == 3 })
                let sink = try #require(server.sinks.items.first)
                #expect(sink.end == nil)
                client.close()
                #expect(client.isClosed)
                #expect(await until { sink.end != nil })
                #expect(sink.end?.isEndOfFile == true)
                #expect(sink.end?.name == "EOF")
            }
        }

        @Test func serverCloseDeliversEndOfFileToTheClient() async throws {
            try await onLoop {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                defer { client.close() }
                let received = ByteSink()
                received.reading(client)
                #expect(await until { server.accepted.count == 1 })
                let accepted = server.accepted.items[0]
                // Close from the completion of the last write: the bytes go out first.
                accepted.write(Array("last words".utf8)) { _ in accepted.close() }
                #expect(await until { received.end != nil })
                #expect(String(decoding: received.bytes, as: UTF8.self) == "last words")
                #expect(received.end?.isEndOfFile == true)
            }
        }

        @Test func closeRunsOnCloseCallbacksOnceAndCancelsLaterWrites() async throws {
            try await onLoop {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                let closed = Collected<String>()
                client.onClose { closed.append("first") }
                client.onClose { closed.append("second") }
                client.close()
                client.close()
                #expect(closed.items == ["first", "second"])
                let result = Collected<UVError?>()
                client.write(Array("late".utf8)) { result.append($0) }
                #expect(result.items.count == 1)
                #expect(result.items.first.flatMap { $0 } == UVError.cancelled)
                #expect(client.pendingWriteBytes == 0)
            }
        }

        @Test func pausedStreamDeliversNothingUntilResumed() async throws {
            try await onLoop {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                defer { client.close() }
                #expect(await until { server.accepted.count == 1 })
                let accepted = server.accepted.items[0]
                let sink = server.sinks.items[0]
                accepted.pauseReading()
                #expect(!accepted.isReading)
                client.write(Array("held".utf8))
                await spin(milliseconds: 30)
                #expect(sink.bytes.isEmpty)
                accepted.resumeReading()
                #expect(accepted.isReading)
                #expect(await until { sink.bytes.count == 4 })
            }
        }

        @Test func connectingToAClosedPortFailsWithConnectionRefused() async throws {
            try await onLoop {
                // A port that was just free: bind one, note it, close it.
                let listener = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                let port = listener.port
                listener.close()
                await spin(milliseconds: 5)
                do {
                    let stream = try await TCPStream.connect(host: "127.0.0.1", port: port)
                    stream.close()
                    Issue.record("connected to a closed port \(port)")
                } catch {
                    #expect((error as? UVError)?.code == -ECONNREFUSED)
                    #expect((error as? UVError)?.name == "ECONNREFUSED")
                }
            }
        }

        @Test func connectingToAnInvalidAddressFailsWithEINVAL() async throws {
            try await onLoop {
                for (host, port) in [("not-an-address", 80), ("127.0.0.1", 70_000), ("127.0.0.1", -1)] {
                    do {
                        let stream = try await TCPStream.connect(host: host, port: port)
                        stream.close()
                        Issue.record("connected to \(host):\(port)")
                    } catch {
                        #expect((error as? UVError)?.name == "EINVAL", "\(host):\(port)")
                    }
                }
            }
        }

        @Test func listeningTwiceOnTheSamePortFailsWithAddressInUse() async throws {
            try await onLoop {
                let first = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                defer { first.close() }
                do {
                    let second = try TCPListener(host: "127.0.0.1", port: first.port) { $0.close() }
                    second.close()
                    Issue.record("bound port \(first.port) twice")
                } catch {
                    #expect(error as? UVError == .addressInUse)
                }
            }
        }

        @Test func listeningOnAnInvalidHostFails() async throws {
            try await onLoop {
                do {
                    let listener = try TCPListener(host: "localhost", port: 0) { $0.close() }
                    listener.close()
                    Issue.record("listened on a host name (only IP addresses are accepted)")
                } catch {
                    #expect((error as? UVError)?.name == "EINVAL")
                }
            }
        }

        @Test func listenerAcceptsManyConnections() async throws {
            try await onLoop {
                let server = try TestServer(echo: true)
                defer { server.close() }
                var clients: [TCPStream] = []
                defer { for client in clients { client.close() } }
                var sinks: [ByteSink] = []
                for index in 0..<20 {
                    let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                    clients.append(client)
                    let sink = ByteSink()
                    sink.reading(client)
                    sinks.append(sink)
                    client.write(Array("client \(index)".utf8))
                }
                let allEchoed = await until { sinks.enumerated().allSatisfy { $0.element.bytes == Array("client \($0.offset)".utf8) } }
                #expect(allEchoed)
                #expect(server.accepted.count == 20)
            }
        }

        @Test func listensOnIPv6Loopback() async throws {
            try await onLoop {
                let server: TCPListener
                do {
                    server = try TCPListener(host: "::1", port: 0) { $0.close() }
                } catch {
                    // No IPv6 in this environment: nothing to test.
                    return
                }
                defer { server.close() }
                #expect(server.port > 0)
                let client = try await TCPStream.connect(host: "::1", port: server.port)
                defer { client.close() }
                #expect(client.peerAddress == "[::1]:\(server.port)")
            }
        }
    }
}
