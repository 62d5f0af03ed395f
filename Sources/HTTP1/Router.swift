/// Maps a method and path to a route registered with a template such as `/v1/events/{id}/holds`.
///
/// Literal segments win over `{parameters}` at the same position. A path that matches some
/// template but not with this method yields `.methodNotAllowed` with the allowed methods.
public struct Router<Route: Sendable>: Sendable {
    public enum Match: Sendable {
        case found(Route, template: String, parameters: [String: String])
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    // Matching runs on every request; it lives in a non-generic table so it is compiled once,
    // specialized, instead of through generic metadata at run time.
    private var table = RouteTable()
    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: String, _ template: String, _ route: Route) {
        table.add(method: method, template: template, index: routes.count)
        routes.append(route)
    }

    /// `path` is the raw request path; parameters come back percent-decoded. A parameter that is
    /// not valid percent-encoded UTF-8 does not match.
    public func match(method: String, path: Substring) -> Match {
        switch table.match(method: method, path: path) {
        case .found(let index, let template, let parameters):
            return .found(routes[index], template: template, parameters: parameters)
        case .methodNotAllowed(let allowed):
            return .methodNotAllowed(allowed: allowed)
        case .notFound:
            return .notFound
        }
    }

    /// Every template registered, with its methods (for documentation and metrics labels).
    public var templates: [(method: String, template: String)] {
        table.entries.map { ($0.method, $0.template) }
    }
}

struct RouteTable: Sendable {
    enum Match {
        case found(index: Int, template: String, parameters: [String: String])
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    struct Entry: Sendable {
        let method: String
        let template: String
        let segments: [Segment]
        let index: Int
    }

    private(set) var entries: [Entry] = []

    mutating func add(method: String, template: String, index: Int) {
        let segments = RouteTable.split(template).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        precondition(
            !entries.contains { $0.method == method && $0.segments == segments },
            "route \(method) \(template) registered twice")
        entries.append(Entry(method: method, template: template, segments: segments, index: index))
    }

    func match(method: String, path: Substring) -> Match {
        let parts = RouteTable.split(path)
        var best: Entry?
        var bestScore = -1
        var allowed: [String] = []
        for entry in entries {
            guard let score = RouteTable.score(entry.segments, parts) else { continue }
            if entry.method == method || (method == "HEAD" && entry.method == "GET") {
                if score > bestScore {
                    best = entry
                    bestScore = score
                }
            } else if !allowed.contains(entry.method) {
                allowed.append(entry.method)
            }
        }
        if let best {
            guard let parameters = RouteTable.parameters(best.segments, parts) else { return .notFound }
            return .found(index: best.index, template: best.template, parameters: parameters)
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains("GET") && !allowed.contains("HEAD") { allowed.append("HEAD") }
        return .methodNotAllowed(allowed: allowed.sorted())
    }

    private static func split(_ path: some StringProtocol) -> [Substring] {
        Substring(path).split(separator: "/", omittingEmptySubsequences: true)
    }

    /// nil when the path does not fit; otherwise more literal segments (earlier ones weighing
    /// more) score higher. Parameters must decode to non-empty UTF-8.
    private static func score(_ segments: [Segment], _ parts: [Substring]) -> Int? {
        guard segments.count == parts.count else { return nil }
        var score = 0
        var position = 0
        while position < segments.count {
            if case .literal(let literal) = segments[position] {
                guard literal == parts[position] else { return nil }
                score += 1 << (segments.count - position)
            }
            position += 1
        }
        // Parameters must decode to something non-empty; decoding allocates, so it is done only
        // for templates whose literals all match (profiling found the router at 8 % of a hold's
        // CPU when every template decoded its parameters).
        position = 0
        while position < segments.count {
            if case .parameter = segments[position] {
                guard let decoded = PercentDecoding.decode(parts[position]), !decoded.isEmpty else { return nil }
            }
            position += 1
        }
        return score
    }

    private static func parameters(_ segments: [Segment], _ parts: [Substring]) -> [String: String]? {
        var parameters: [String: String] = [:]
        var position = 0
        while position < segments.count {
            if case .parameter(let name) = segments[position] {
                guard let decoded = PercentDecoding.decode(parts[position]) else { return nil }
                parameters[name] = decoded
            }
            position += 1
        }
        return parameters
    }
}

/// Percent-decoding of path segments and `application/x-www-form-urlencoded` queries.
public enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as space when `plusIsSpace`); nil when an escape or the
    /// resulting UTF-8 is invalid.
    public static func decode(_ text: some StringProtocol, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Splits a query string into name/value pairs, in order; nil when any part is badly encoded.
    public static func queryItems(_ query: some StringProtocol) -> [(name: String, value: String)]? {
        var items: [(name: String, value: String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0], plusIsSpace: true) else { return nil }
            let value = parts.count > 1 ? decode(parts[1], plusIsSpace: true) : ""
            guard let value else { return nil }
            items.append((name, value))
        }
        return items
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
