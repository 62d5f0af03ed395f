import Foundation
import PG
import Quorix
import QuorixTestSupport
import Synchronization
import Testing

/// Helpers for the seat-map and event suites: the sample maps, JSON accessors, semantic JSON
/// comparison, direct SQL on the server's database, and truly concurrent requests on threads.

// MARK: - Sample maps

enum SampleMaps {
    /// Seats, sections and seats per category of the files in `SeatMaps/` (their README).
    struct Facts: Sendable {
        let file: String
        let seats: Int
        let sections: Int
        let categories: [String: Int]
    }

    static let theatre = Facts(
        file: "theatre", seats: 1_339, sections: 4,
        categories: ["premium": 461, "standard": 842, "restricted": 20, "box": 16])
    static let arena = Facts(
        file: "arena", seats: 17_430, sections: 31,
        categories: ["premium": 600, "floor": 1_800, "lower": 5_166, "upper": 9_864])
    static let stadium = Facts(
        file: "stadium", seats: 60_000, sections: 76,
        categories: ["premium": 6_264, "standard": 26_562, "family": 4_350, "economy": 22_824])

    static let all = [theatre, arena, stadium]

    static func bytes(_ file: String) throws -> [UInt8] {
        let path = PackagePaths.root + "/SeatMaps/\(file).json"
        guard let data = FileManager.default.contents(atPath: path) else { throw SupportError("cannot read \(path)") }
        return Array(data)
    }

    /// A price for every category the sample uses, as a JSON object.
    static func pricesJSON(_ facts: Facts, cents: Int = 5_000) -> String {
        "{" + facts.categories.keys.sorted().map { "\"\($0)\": \(cents)" }.joined(separator: ", ") + "}"
    }
}

// MARK: - JSON accessors

extension JSONValue {
    var catalogInt: Int? {
        if case .number(let number) = self, let integer = number.integer { return Int(integer) }
        return nil
    }

    var catalogString: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var catalogArray: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    var catalogMembers: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var isCatalogNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension HTTPTestResponse {
    /// `error.details` as (path, message) pairs.
    var detailPairs: [(path: String, message: String)] {
        guard let value = try? json(), let details = value["error"]?["details"]?.catalogArray else { return [] }
        return details.compactMap { detail in
            guard let path = detail["path"]?.catalogString, let message = detail["message"]?.catalogString else { return nil }
            return (path, message)
        }
    }

    var detailPaths: [String] { detailPairs.map(\.path) }
}

/// Where two JSON values differ, comparing objects as unordered maps and numbers by value;
/// nil when they are the same document.
func jsonDifference(_ a: JSONValue, _ b: JSONValue, path: String = "$") -> String? {
    switch (a, b) {
    case (.null, .null): return nil
    case (.bool(let x), .bool(let y)): return x == y ? nil : "\(path): \(x) vs \(y)"
    case (.number(let x), .number(let y)): return x.value == y.value ? nil : "\(path): \(x.value) vs \(y.value)"
    case (.string(let x), .string(let y)): return x == y ? nil : "\(path): \(x.debugDescription) vs \(y.debugDescription)"
    case (.array(let x), .array(let y)):
        guard x.count == y.count else { return "\(path): \(x.count) elements vs \(y.count)" }
        for (index, (left, right)) in zip(x, y).enumerated() {
            if let difference = jsonDifference(left, right, path: "\(path)[\(index)]") { return difference }
        }
        return nil
    case (.object(let x), .object(let y)):
        let left = Dictionary(x, uniquingKeysWith: { first, _ in first })
        let right = Dictionary(y, uniquingKeysWith: { first, _ in first })
        guard Set(left.keys) == Set(right.keys) else {
            return "\(path): keys \(left.keys.sorted()) vs \(right.keys.sorted())"
        }
        for key in left.keys.sorted() {
            if let difference = jsonDifference(left[key]!, right[key]!, path: "\(path).\(key)") { return difference }
        }
        return nil
    default:
        return "\(path): \(a.typeName) vs \(b.typeName)"
    }
}

// MARK: - Requests

extension ServerProcess {
    /// One request on a connection of its own, with a generous deadline (large maps, busy CI).
    func slowRequest(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration = .seconds(60)
    ) throws -> HTTPTestResponse {
        try HTTPTestClient.request(port: port, method, path, headers: headers, body: body, timeout: timeout)
    }

    func uploadSeatMap(_ body: [UInt8], key: String) throws -> HTTPTestResponse {
        try slowRequest(
            "POST", "/v1/seatmaps",
            headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")], body: body)
    }

    /// Uploads a sample map and returns its id (failing the test if it is refused).
    func uploadSample(_ facts: SampleMaps.Facts, key: String) throws -> Int {
        let response = try uploadSeatMap(try SampleMaps.bytes(facts.file), key: key)
        guard response.status == 201, let id = try response.json()["id"]?.catalogInt else {
            throw SupportError("uploading \(facts.file) failed: \(response)")
        }
        return id
    }

    /// Runs one statement on the server's database.
    func sql(_ query: PGQuery) async throws -> PGResult {
        try await TestDatabase.query(databaseConninfo, query)
    }

    /// One integer from a one-row, one-column query (column `n`).
    func sqlInt(_ query: PGQuery) async throws -> Int {
        let result = try await sql(query)
        guard let row = result.first else { throw SupportError("no row from \(query)") }
        return try row.int("n")
    }
}

func bearer(_ key: String) -> (String, String) { ("Authorization", "Bearer \(key)") }

/// A name no other test uses.
func uniqueName(_ prefix: String) -> String { "\(prefix) \(TestCluster.randomHex(bytes: 6))" }

// MARK: - Concurrency

/// Runs `body(0..<count)` on `count` threads of their own, released together once all are
/// ready, and returns the results in index order. Each body must bound its own waiting.
func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) async -> [T] {
    guard count > 0 else { return [] }
    return await withCheckedContinuation { (continuation: CheckedContinuation<[T], Never>) in
        let results = Mutex<[Int: T]>([:])
        let gate = NSCondition()
        let ready = Mutex(0)
        for index in 0..<count {
            let thread = Thread {
                gate.lock()
                let arrived = ready.withLock { value -> Int in
                    value += 1
                    return value
                }
                if arrived == count {
                    gate.broadcast()
                } else {
                    // Bounded: a thread that never arrives must not hold the others for ever.
                    let until = Date(timeIntervalSinceNow: 10)
                    while ready.withLock({ $0 }) < count, gate.wait(until: until) {}
                }
                gate.unlock()
                let value = body(index)
                let finished = results.withLock { results -> [T]? in
                    results[index] = value
                    return results.count == count ? (0..<count).map { results[$0]! } : nil
                }
                if let finished { continuation.resume(returning: finished) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}

// MARK: - A catalog server

/// A server with an admin, two organizers, two clients and sample maps uploaded, started on first use.
final class CatalogServer: Sendable {
    struct Fixture: Sendable {
        let server: ServerProcess
        let organizer: String
        let otherOrganizer: String
        let client: String
        /// A second client (another ticketing front end).
        let otherClient: String
        let theatreID: Int
        let stadiumID: Int
    }

    private let task = Mutex<Task<Fixture, any Error>?>(nil)

    func get() async throws -> Fixture {
        let task = task.withLock { task -> Task<Fixture, any Error> in
            if let task { return task }
            let started = Task { try await CatalogServer.make() }
            task = started
            return started
        }
        return try await task.value
    }

    @concurrent
    private static func make() async throws -> Fixture {
        let server = try await ServerProcess.start()
        let organizer = try server.createKey(role: "organizer", name: "catalog organizer")
        let other = try server.createKey(role: "organizer", name: "other organizer")
        let client = try server.createKey(role: "client", name: "catalog client")
        let otherClient = try server.createKey(role: "client", name: "other catalog client")
        let theatre = try server.uploadSample(SampleMaps.theatre, key: organizer)
        let stadium = try server.uploadSample(SampleMaps.stadium, key: organizer)
        return Fixture(
            server: server, organizer: organizer, otherOrganizer: other, client: client, otherClient: otherClient,
            theatreID: theatre, stadiumID: stadium)
    }
}
