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

    private struct Entry: Sendable {
        let method: String
        let template: String
        let segments: [Segment]
        let route: Route
    }

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private var entries: [Entry] = []

    public init() {}

    public mutating func add(_ method: String, _ template: String, _ route: Route) {
        let segments = Router.split(template).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        precondition(
            !entries.contains { $0.method == method && $0.segments == segments },
            "route \(method) \(template) registered twice")
        entries.append(Entry(method: method, template: template, segments: segments, route: route))
    }

    /// `path` is the raw request path; parameters come back percent-decoded. A parameter that is
    /// not valid percent-encoded UTF-8 does not match.
    public func match(method: String, path: Substring) -> Match {
        let parts = Router.split(path)
        var best: (entry: Entry, parameters: [String: String], score: Int)?
        var allowed: [String] = []
        for entry in entries {
            guard let (parameters, score) = Router.bind(entry.segments, to: parts) else { continue }
            if entry.method == method || (method == "HEAD" && entry.method == "GET") {
                if best == nil || score > best!.score {
                    best = (entry, parameters, score)
                }
            } else if !allowed.contains(entry.method) {
                allowed.append(entry.method)
            }
        }
        if let best {
            return .found(best.entry.route, template: best.entry.template, parameters: best.parameters)
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains("GET") && !allowed.contains("HEAD") { allowed.append("HEAD") }
        return .methodNotAllowed(allowed: allowed.sorted())
    }

    /// Every template registered, with its methods (for documentation and metrics labels).
    public var templates: [(method: String, template: String)] {
        entries.map { ($0.method, $0.template) }
    }

    private static func split(_ path: some StringProtocol) -> [Substring] {
        Substring(path).split(separator: "/", omittingEmptySubsequences: true)
    }

    /// Parameters bound and a score: more literal segments (earlier ones weighing more) win.
    private static func bind(_ segments: [Segment], to parts: [Substring]) -> ([String: String], Int)? {
        guard segments.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        var score = 0
        for (index, (segment, part)) in zip(segments, parts).enumerated() {
            switch segment {
            case .literal(let literal):
                guard literal == part else { return nil }
                score += 1 << (segments.count - index)
            case .parameter(let name):
                guard let decoded = PercentDecoding.decode(part), !decoded.isEmpty else { return nil }
                parameters[name] = decoded
            }
        }
        return (parameters, score)
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
