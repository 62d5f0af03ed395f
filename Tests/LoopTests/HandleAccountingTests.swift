@testable import Loop
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Each wrapper opens one libuv handle and closes it; the handle's owner stays alive until
/// libuv's close callback, then is released.
///
/// Two kinds of proof: counts read before and after synchronous code (nothing else can run on the
/// loop in between, so they are exact even with other tests running), and a weak reference
/// cleared only by the close callback. The process-wide count returning to its value before a
/// whole scenario is checked too, with a retry in case other test targets sharing the loop
/// opened or closed handles meanwhile.
extension LoopSuite {
    @Suite struct HandleAccountingTests {
        @Test func timerOpensOneHandleAndItsCloseCallbackReleasesIt() async throws {
            try await onLoop {
                let probe = WeakProbe<LoopTimer>()
                let before = OpenHandles.current
                do {
                    let timer = LoopTimer()
                    #expect(OpenHandles.current == before + 1)
                    probe.object = timer
                    timer.start(after: 60_000) {}
                    timer.close()
                    // Closing is asynchronous: the handle is counted until libuv is done with it.
                    #expect(OpenHandles.current == before + 1)
                }
                // libuv still holds the owner: the memory is not freed under it.
                #expect(probe.object != nil)
                #expect(await until { probe.object == nil })
            }
        }

        @Test func listenerOpensOneHandleAndItsCloseCallbackReleasesIt() async throws {
            try await onLoop {
                let probe = WeakProbe<TCPListener>()
                let before = OpenHandles.current
                do {
                    let listener = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                    #expect(OpenHandles.current == before + 1)
                    probe.object = listener
                    listener.close()
                }
                #expect(probe.object != nil)
                #expect(await until { probe.object == nil })
            }
        }

        @Test func failedListenClosesItsHandle() async throws {
            try await onLoop {
                let first = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                defer { first.close() }
                let before = OpenHandles.current
                let closingBefore = EventLoop.shared.openHandles().filter { $0 == "tcp (closing)" }.count
                #expect(throws: UVError.addressInUse) {
                    try TCPListener(host: "127.0.0.1", port: first.port) { $0.close() }
                }
                // Opened, and already closing: released by the close callback like any other.
                #expect(OpenHandles.current == before + 1)
                #expect(EventLoop.shared.openHandles().filter { $0 == "tcp (closing)" }.count == closingBefore + 1)
            }
        }

        @Test func failedConnectClosesItsStream() async throws {
            try await onLoop {
                @LoopActor func count(_ name: String) -> Int { EventLoop.shared.openHandles().filter { $0 == name }.count }
                let open = count("tcp")
                let closing = count("tcp (closing)")
                // An address that does not parse fails before any suspension: nothing else runs
                // on the loop between the counts. (Not `#expect(throws:)`: it would leave the loop.)
                do {
                    let stream = try await TCPStream.connect(host: "not-an-address", port: 1)
                    stream.close()
                    Issue.record("connected to not-an-address")
                } catch {}
                #expect(count("tcp") == open)
                #expect(count("tcp (closing)") == closing + 1)
            }
        }

        @Test func failedWatcherInitFreesItsHandleAtOnce() async throws {
            try await onLoop {
                let before = OpenHandles.current
                #expect(throws: UVError.self) {
                    try FDWatcher(fileDescriptor: -1) { _ in }
                }
                // libuv never saw it: nothing to close, the count is back at once.
                #expect(OpenHandles.current == before)
            }
        }

        @Test func streamsOnBothSidesAreReleasedAfterClose() async throws {
            try await onLoop {
                let server = try TestServer(echo: false)
                defer { server.close() }
                let clientProbe = WeakProbe<TCPStream>()
                let acceptedProbe = WeakProbe<TCPStream>()
                do {
                    let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                    clientProbe.object = client
                    client.write(Array("x".utf8))
                    #expect(await until { server.accepted.count == 1 })
                    acceptedProbe.object = server.accepted.items[0]
                    server.accepted.items.removeAll()
                    server.sinks.items.removeAll()
                    client.close()
                }
                // The accepted side closes itself on EOF (TestServer).
                #expect(await until { clientProbe.object == nil && acceptedProbe.object == nil })
            }
        }

        @Test func watcherOpensOneHandleAndItsCloseCallbackReleasesIt() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let probe = WeakProbe<FDWatcher>()
                let before = OpenHandles.current
                do {
                    let watcher = try FDWatcher(fileDescriptor: pair.watched) { _ in }
                    #expect(OpenHandles.current == before + 1)
                    probe.object = watcher
                    watcher.watch(readable: true, writable: true)
                    watcher.close()
                }
                #expect(probe.object != nil)
                #expect(await until { probe.object == nil })
            }
        }

        @Test func openHandlesListsTypeNames() async throws {
            try await onLoop {
                let names = EventLoop.shared.openHandles()
                // The executor's own wake-up, after-I/O and keep-spinning handles.
                #expect(names.contains("async"))
                #expect(names.contains("check"))
                let timers = names.filter { $0 == "timer" }.count
                let closingTimers = names.filter { $0 == "timer (closing)" }.count
                let timer = LoopTimer()
                #expect(EventLoop.shared.openHandles().filter { $0 == "timer" }.count == timers + 1)
                timer.close()
                let afterClose = EventLoop.shared.openHandles()
                #expect(afterClose.filter { $0 == "timer" }.count == timers)
                #expect(afterClose.filter { $0 == "timer (closing)" }.count == closingTimers + 1)

                let pair = try SocketPair()
                defer { pair.close() }
                let watcher = try FDWatcher(fileDescriptor: pair.watched) { _ in }
                #expect(EventLoop.shared.openHandles().contains("poll"))
                watcher.close()
                let listener = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                #expect(EventLoop.shared.openHandles().contains("tcp"))
                listener.close()
            }
        }

        /// Opens one of everything, uses it, closes it all, and expects the count where it was.
        @Test func openHandlesReturnsToItsValueAfterEveryWrapperIsClosed() async throws {
            try await onLoop(timeoutMilliseconds: 15_000) {
                var lastReport = ""
                for _ in 1...3 {
                    // Handles other tests are still closing would leave before the count is read.
                    _ = await until(milliseconds: 500) {
                        !EventLoop.shared.openHandles().contains { $0.hasSuffix("(closing)") }
                    }
                    let before = OpenHandles.current
                    try await HandleAccountingTests.useOneOfEverything()
                    if await until(milliseconds: 2_000, { OpenHandles.current == before }) { return }
                    lastReport = "\(OpenHandles.current) open, \(before) before: \(EventLoop.shared.openHandles())"
                }
                Issue.record("OpenHandles.current did not return to its value before the test: \(lastReport)")
            }
        }

        @LoopActor
        private static func useOneOfEverything() async throws {
            // Timer, fired; a sleep.
            let timer = LoopTimer()
            let fired = Collected<Void>()
            timer.start(after: 1) { fired.append(()) }
            #expect(await until { fired.count == 1 })
            timer.close()
            await EventLoop.sleep(milliseconds: 1)

            // Listener, client, accepted stream, an exchange, and closes from both sides.
            let server = try TestServer(echo: true)
            let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
            let received = ByteSink()
            received.reading(client)
            client.write(Array("echo".utf8))
            #expect(await until { received.bytes.count == 4 })
            let second = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
            #expect(await until { server.accepted.count == 2 })
            server.accepted.items[1].close()

            // Failures that open a handle and must close it.
            #expect(throws: UVError.addressInUse) {
                try TCPListener(host: "127.0.0.1", port: server.port) { $0.close() }
            }
            let closed = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
            let closedPort = closed.port
            closed.close()
            await Task.yield()
            await #expect(throws: UVError.self) {
                try await TCPStream.connect(host: "127.0.0.1", port: closedPort)
            }
            await #expect(throws: UVError.self) {
                try await TCPStream.connect(host: "not-an-address", port: 1)
            }
            #expect(throws: UVError.self) {
                try FDWatcher(fileDescriptor: -1) { _ in }
            }

            // A watcher on a socket pair.
            let pair = try SocketPair()
            let events = Collected<Void>()
            let watcher = try FDWatcher(fileDescriptor: pair.watched) { _ in events.append(()) }
            watcher.watch(readable: false, writable: true)
            #expect(await until { events.count > 0 })
            watcher.close()
            pair.close()

            client.close()
            second.close()
            server.close()
        }
    }
}

/// A wrapper outlives its handle: libuv frees the handle's memory in the close callback while
/// the Swift object may still be referenced (and closed again, or asked `isClosed`). Such calls
/// must not touch the freed memory, which the next handle of the same size usually reuses.
extension LoopSuite {
    @Suite struct ClosedWrapperTests {
        @Test func closingAClosedTimerAgainLeavesANewTimerAlone() async throws {
            try await onLoop {
                let old = LoopTimer()
                old.close()
                // Let the close callback run and free the handle.
                await spin(milliseconds: 10)
                let fresh = LoopTimer()
                defer { fresh.close() }
                let fired = Collected<Void>()
                fresh.start(after: 5) { fired.append(()) }
                #expect(old.isClosed)
                old.stop()
                old.start(after: 1) {}
                old.close()
                #expect(!fresh.isClosed)
                #expect(await until(milliseconds: 500) { fired.count == 1 })
            }
        }

        @Test func closingAClosedStreamAgainLeavesANewStreamAlone() async throws {
            try await onLoop {
                let server = try TestServer(echo: true)
                defer { server.close() }
                let old = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                old.close()
                await spin(milliseconds: 10)
                let fresh = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
                defer { fresh.close() }
                #expect(old.isClosed)
                #expect(old.pendingWriteBytes == 0)
                let result = Collected<UVError?>()
                old.write(Array("x".utf8)) { result.append($0) }
                #expect(result.items.first.flatMap { $0 } == UVError.cancelled)
                old.pauseReading()
                old.close()
                #expect(!fresh.isClosed)
                let received = ByteSink()
                received.reading(fresh)
                fresh.write(Array("still open".utf8))
                #expect(await until(milliseconds: 1_000) { received.bytes.count == 10 })
            }
        }

        @Test func closingAClosedListenerAgainLeavesANewListenerAlone() async throws {
            try await onLoop {
                let old = try TCPListener(host: "127.0.0.1", port: 0) { $0.close() }
                old.close()
                await spin(milliseconds: 10)
                let accepted = Collected<TCPStream>()
                let fresh = try TCPListener(host: "127.0.0.1", port: 0) { accepted.append($0) }
                defer {
                    fresh.close()
                    for stream in accepted.items { stream.close() }
                }
                old.close()
                let client = try await TCPStream.connect(host: "127.0.0.1", port: fresh.port)
                defer { client.close() }
                #expect(await until(milliseconds: 1_000) { accepted.count == 1 })
            }
        }

        @Test func closingAClosedWatcherAgainLeavesANewWatcherAlone() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let old = try FDWatcher(fileDescriptor: pair.watched) { _ in }
                old.close()
                await spin(milliseconds: 10)
                let events = Collected<Void>()
                let fresh = try FDWatcher(fileDescriptor: pair.watched) { _ in events.append(()) }
                defer { fresh.close() }
                fresh.watch(readable: false, writable: true)
                old.watch(readable: false, writable: false)
                old.close()
                events.items.removeAll()
                #expect(await until(milliseconds: 1_000) { events.count > 0 })
            }
        }
    }
}
