@testable import Loop
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Both ends of a Unix socket pair, closed by `close()`.
struct SocketPair {
    let watched: Int32
    let other: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        watched = fds[0]
        other = fds[1]
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(other, $0.baseAddress, $0.count) }
        #expect(written == bytes.count)
    }

    /// Reads what is waiting on the watched end (non-blocking).
    func drain() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.recv(watched, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count > 0 ? Array(buffer[..<count]) : []
    }

    func close() {
        _ = Glibc.close(watched)
        _ = Glibc.close(other)
    }
}

extension LoopSuite {
    @Suite struct FDWatcherTests {
        @Test func reportsReadableAfterTheOtherEndWrites() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let events = Collected<Result<FDWatcher.Events, UVError>>()
                let watcher = try FDWatcher(fileDescriptor: pair.watched) { events.append($0) }
                // The watcher stops before the descriptors close (deferred in reverse order).
                defer { watcher.close() }
                #expect(watcher.fileDescriptor == pair.watched)
                watcher.watch(readable: true, writable: false)
                await spin(milliseconds: 20)
                #expect(events.count == 0, "nothing to read yet")

                pair.write("ping")
                #expect(await until { events.count > 0 })
                let first = try #require(events.items.first).get()
                #expect(first.contains(.readable))
                #expect(!first.contains(.writable))
                #expect(pair.drain() == Array("ping".utf8))
            }
        }

        @Test func reportsWritableWhenAskedForWritable() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let events = Collected<FDWatcher.Events>()
                let watcher = try FDWatcher(fileDescriptor: pair.watched) { result in
                    if case .success(let ready) = result { events.append(ready) }
                }
                defer { watcher.close() }
                watcher.watch(readable: false, writable: true)
                #expect(await until { events.count > 0 })
                #expect(events.items.first?.contains(.writable) == true)
                #expect(events.items.first?.contains(.readable) == false)
            }
        }

        @Test func changingInterestReplacesIt() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let events = Collected<FDWatcher.Events>()
                let watcher = try FDWatcher(fileDescriptor: pair.watched) { result in
                    if case .success(let ready) = result { events.append(ready) }
                }
                defer { watcher.close() }
                watcher.watch(readable: true, writable: true)
                #expect(await until { events.count > 0 })
                #expect(events.items.last?.contains(.writable) == true)

                // Back to reading only: writable is no longer reported.
                watcher.watch(readable: true, writable: false)
                await spin(milliseconds: 10)
                events.items.removeAll()
                await spin(milliseconds: 20)
                #expect(events.count == 0)
                pair.write("x")
                #expect(await until { events.count > 0 })
                #expect(events.items.allSatisfy { $0.contains(.readable) && !$0.contains(.writable) })

                // No interest at all: silence, even with bytes waiting.
                watcher.watch(readable: false, writable: false)
                await spin(milliseconds: 10)
                events.items.removeAll()
                await spin(milliseconds: 20)
                #expect(events.count == 0)
            }
        }

        @Test func closedWatcherReportsNothingMore() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let events = Collected<Result<FDWatcher.Events, UVError>>()
                let watcher = try FDWatcher(fileDescriptor: pair.watched) { events.append($0) }
                watcher.watch(readable: true, writable: false)
                watcher.close()
                // Interest changes after close are ignored.
                watcher.watch(readable: true, writable: true)
                pair.write("late")
                await spin(milliseconds: 30)
                #expect(events.count == 0)
            }
        }

        @Test func watchingAnInvalidDescriptorThrows() async throws {
            try await onLoop {
                // Not a closed descriptor of our own: its number could be reused meanwhile.
                do {
                    let watcher = try FDWatcher(fileDescriptor: -1) { _ in }
                    watcher.close()
                    Issue.record("watched descriptor -1")
                } catch {
                    #expect((error as? UVError)?.name == "EBADF")
                }
            }
        }

        @Test func watchingADescriptorTwiceThrows() async throws {
            try await onLoop {
                let pair = try SocketPair()
                defer { pair.close() }
                let first = try FDWatcher(fileDescriptor: pair.watched) { _ in }
                defer { first.close() }
                first.watch(readable: true, writable: false)
                do {
                    let second = try FDWatcher(fileDescriptor: pair.watched) { _ in }
                    second.close()
                    Issue.record("one descriptor watched twice")
                } catch {
                    #expect((error as? UVError)?.name == "EEXIST")
                }
            }
        }
    }
}
