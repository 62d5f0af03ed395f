public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// swift-log handler writing one JSON object per line:
/// `{"ts":"2026-11-24T07:00:00.000Z","level":"info","msg":"request","route":"/healthz",...}`.
///
/// Each line goes out in one `write(2)` to standard output (atomic on a pipe for lines under
/// PIPE_BUF), so lines from the loop and from start-up code never interleave.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let fileDescriptor: Int32

    public init(label: String, level: Logger.Level = .info, fileDescriptor: Int32 = 1) {
        self.label = label
        self.logLevel = level
        self.fileDescriptor = fileDescriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var members: [(String, JSONValue)] = [
            ("ts", .string(Timestamp.now().rfc3339)),
            ("level", .string(event.level.rawValue)),
            ("msg", .string(event.message.description)),
        ]
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            members.append((key, JSONLogHandler.json(merged[key]!)))
        }
        if event.level >= .warning {
            members.append(("source", .string("\(event.file.split(separator: "/").last ?? ""):\(event.line)")))
        }
        var line = JSONWriter.bytes(.object(members))
        line.append(0x0A)
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text):
            // Numbers logged as strings stay numbers in the JSON line.
            if let integer = Int(text) { return .int(integer) }
            if let double = Double(text), text.contains(".") { return .double(double) }
            return .string(text)
        case .stringConvertible(let convertible):
            if let integer = convertible as? Int { return .int(integer) }
            if let double = convertible as? Double { return .double(double) }
            if let flag = convertible as? Bool { return .bool(flag) }
            return .string(convertible.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let dictionary):
            return .object(dictionary.keys.sorted().map { ($0, json(dictionary[$0]!)) })
        }
    }
}

/// Wall-clock time with millisecond precision, formatted as the API's RFC 3339 UTC strings.
public struct Timestamp: Sendable, Equatable, Comparable {
    public let millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(millisecondsSinceEpoch: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// `2026-11-23T10:15:00.000Z`
    public var rfc3339: String {
        var seconds = time_t(millisecondsSinceEpoch.floorDivided(by: 1000))
        let milliseconds = Int(millisecondsSinceEpoch - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}

extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
