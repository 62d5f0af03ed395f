/// A webhook's target: `http://host[:port][/path][?query]`, checked when the webhook is made.
///
/// Only plain HTTP: this server has no TLS library, so an `https://` URL is refused with a
/// message saying so rather than delivered in clear. The host is an IPv4 dotted quad, an IPv6
/// literal in brackets, or a DNS name (looked up, and its addresses checked, at each delivery).
public struct WebhookURL: Sendable, Equatable {
    /// As written in the URL, without IPv6 brackets.
    public let host: String
    public let port: Int
    /// Path and query, at least `/`.
    public let target: String

    public static let maxLength = 2_048

    /// The URL, or why it cannot be a webhook's (a message for `details`).
    public static func parse(_ text: String) -> Result<WebhookURL, WebhookURLProblem> {
        guard text.utf8.count <= maxLength else { return .failure(.init("must be at most \(maxLength) bytes")) }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            return .failure(.init("must be printable ASCII without spaces (percent-encode the rest)"))
        }
        let lowered = text.lowercased()
        if lowered.hasPrefix("https://") {
            return .failure(.init("https is not supported: this server has no TLS library to deliver with; use an http:// URL (behind a TLS-terminating proxy if the receiver needs one)"))
        }
        guard lowered.hasPrefix("http://") else { return .failure(.init("must be an http:// URL")) }
        let rest = text.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.contains("#") { return .failure(.init("must not have a fragment (#...)")) }
        if target.hasPrefix("?") || target.isEmpty { target = "/" + target }
        if authority.contains("@") { return .failure(.init("must not carry a user name or password")) }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.init("has an unclosed [ in its host")) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.init("has something after its IPv6 address that is not a port")) }
                portText = after.dropFirst()
            }
            guard IPAddress.parseIPv6(String(host)) != nil else { return .failure(.init("has an invalid IPv6 address")) }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { return .failure(.init("must name a host")) }
            if IPAddress.parseIPv4(String(host)) == nil {
                guard isHostName(host) else {
                    return .failure(.init("has an invalid host; use a DNS name, a dotted-quad IPv4 address or [IPv6]"))
                }
            }
        }
        var port = 80
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed), portText.allSatisfy(\.isASCII) else {
                return .failure(.init("has an invalid port; use 1 to 65535"))
            }
            port = parsed
        }
        if host.hasSuffix(".") && host.count > 1 { host = host.dropLast() }
        return .success(WebhookURL(host: host.lowercased(), port: port, target: target))
    }

    /// Letters, digits, `-` and `.` in labels of 1-63; a name that looks numeric is refused,
    /// because the system resolver reads `127.1` or `2130706433` as an IPv4 address.
    static func isHostName(_ host: Substring) -> Bool {
        let name = host.hasSuffix(".") ? host.dropLast() : host
        guard !name.isEmpty, name.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard (1...63).contains(label.count), label.first != "-", label.last != "-",
                label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            else { return false }
        }
        // The last label of a real name is never all digits (nor a hex number such as 0x7f).
        let last = labels.last!.lowercased()
        if last.allSatisfy(\.isNumber) || (last.hasPrefix("0x") && last.dropFirst(2).allSatisfy(\.isHexDigit)) { return false }
        return true
    }

    /// Whether the URL's own host is one a webhook may not name without
    /// `QUORIX_WEBHOOK_ALLOW_PRIVATE`: a loopback, private or link-local literal, or localhost.
    public var namesPrivateHost: Bool {
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if let address = IPAddress(host) { return address.isPrivate }
        return false
    }
}

public struct WebhookURLProblem: Error, Sendable, Equatable {
    public let message: String
    init(_ message: String) { self.message = message }
}

/// An IPv4 or IPv6 address, for telling public addresses from loopback, private and link-local
/// ones (a webhook must not reach into the server's own network unless the operator allows it).
public enum IPAddress: Sendable, Equatable {
    case v4(UInt32)
    case v6([UInt8])

    public init?(_ text: String) {
        if let v4 = IPAddress.parseIPv4(text) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseIPv6(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// Loopback, private, link-local, unspecified (0.0.0.0/8, ::), unique-local and
    /// IPv4-mapped forms of those.
    public var isPrivate: Bool {
        switch self {
        case .v4(let address):
            let a = address >> 24, b = (address >> 16) & 0xff
            return a == 0 || a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
                || (a == 169 && b == 254)
        case .v6(let bytes):
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && (bytes[15] == 0 || bytes[15] == 1) { return true }  // :: and ::1
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {  // ::ffff:a.b.c.d
                let v4 = bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return IPAddress.v4(v4).isPrivate
            }
            if bytes[0] & 0xfe == 0xfc { return true }  // fc00::/7
            if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return true }  // fe80::/10
            return false
        }
    }

    /// Dotted quad only: four decimal numbers 0-255 without leading zeros.
    static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let number = UInt32(part), number <= 255
            else { return nil }
            value = value << 8 | number
        }
        return value
    }

    /// RFC 4291 text forms: eight groups, `::` once, an optional dotted quad at the end; no zone.
    static func parseIPv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), !text.contains("%") else { return nil }
        var groups: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func parse(_ part: String, into output: inout [UInt16], allowV4: Bool) -> Bool {
            guard !part.isEmpty else { return true }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowV4 && index == pieces.count - 1 && piece.contains(".") {
                    guard let v4 = parseIPv4(String(piece)) else { return false }
                    output.append(UInt16(v4 >> 16))
                    output.append(UInt16(v4 & 0xffff))
                    continue
                }
                guard (1...4).contains(piece.count), let group = UInt16(piece, radix: 16) else { return false }
                output.append(group)
            }
            return true
        }
        if halves.count == 2 {
            sawGap = true
            guard parse(halves[0], into: &groups, allowV4: false), parse(halves[1], into: &tail, allowV4: true) else { return nil }
        } else {
            guard parse(halves[0], into: &groups, allowV4: true) else { return nil }
        }
        let count = groups.count + tail.count
        if sawGap {
            guard count <= 7 else { return nil }
            groups += Array(repeating: 0, count: 8 - count) + tail
        } else {
            guard count == 8 else { return nil }
        }
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}
