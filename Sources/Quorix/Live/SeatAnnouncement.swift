/// A seat's status as the live snapshot keeps it: one byte a seat.
public enum SeatState: UInt8, Sendable {
    case free, held, booked, blocked

    public var name: String {
        switch self {
        case .free: "free"
        case .held: "held"
        case .booked: "booked"
        case .blocked: "blocked"
        }
    }

    public init?(name: String) {
        switch name {
        case "free": self = .free
        case "held": self = .held
        case "booked": self = .booked
        case "blocked": self = .blocked
        default: return nil
        }
    }

    /// The one-letter code of announcements (Migrations/0005_seat_announcements.sql).
    init?(code: UInt8) {
        switch code {
        case UInt8(ascii: "f"): self = .free
        case UInt8(ascii: "h"): self = .held
        case UInt8(ascii: "b"): self = .booked
        case UInt8(ascii: "x"): self = .blocked
        default: return nil
        }
    }
}

/// One seat's new state: its version is the value the change gave it (the event's version is
/// the sum of its seats' versions).
public struct SeatChange: Sendable, Equatable {
    public let seatID: Int
    public let state: SeatState
    public let version: Int64
    /// For a held seat: when its hold expires, in Unix milliseconds.
    public let expiresAtMilliseconds: Int64?

    public init(seatID: Int, state: SeatState, version: Int64, expiresAtMilliseconds: Int64? = nil) {
        self.seatID = seatID
        self.state = state
        self.version = version
        self.expiresAtMilliseconds = expiresAtMilliseconds
    }
}

/// A notification on channel `quorix_seats`, as the database triggers write them.
public enum SeatAnnouncement: Sendable, Equatable {
    /// `<event>|<seat>,<s>,<version>[,<expires_ms>];...`
    case seats(eventID: Int, changes: [SeatChange])
    /// `<event>|offer|<entry>|<expires_at>`
    case offer(eventID: Int, entryID: Int, expiresAt: String)

    public var eventID: Int {
        switch self {
        case .seats(let eventID, _), .offer(let eventID, _, _): eventID
        }
    }

    /// The event id alone: a process skips announcements of events it does not follow without
    /// parsing the rest.
    public static func eventID(of payload: String) -> Int? {
        guard let bar = payload.utf8.firstIndex(of: UInt8(ascii: "|")) else { return nil }
        return number(payload.utf8[..<bar]).map(Int.init)
    }

    public static func parse(_ payload: String) -> SeatAnnouncement? {
        let bytes = Array(payload.utf8)
        let fields = bytes.split(separator: UInt8(ascii: "|"), maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count >= 2, let eventID = number(fields[0]) else { return nil }
        if fields[1].elementsEqual("offer".utf8) {
            guard fields.count == 4, let entryID = number(fields[2]) else { return nil }
            return .offer(eventID: Int(eventID), entryID: Int(entryID), expiresAt: String(decoding: fields[3], as: UTF8.self))
        }
        guard fields.count == 2 else { return nil }
        var changes: [SeatChange] = []
        for item in fields[1].split(separator: UInt8(ascii: ";")) {
            let parts = item.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard parts.count == 3 || parts.count == 4, let seat = number(parts[0]), parts[1].count == 1,
                  let state = SeatState(code: parts[1].first!), let version = number(parts[2]) else { return nil }
            var expires: Int64?
            if parts.count == 4 {
                guard let value = number(parts[3]) else { return nil }
                expires = value
            }
            changes.append(SeatChange(seatID: Int(seat), state: state, version: version, expiresAtMilliseconds: expires))
        }
        guard !changes.isEmpty else { return nil }
        return .seats(eventID: Int(eventID), changes: changes)
    }

    /// A non-negative decimal integer (the only numbers announcements carry).
    private static func number(_ digits: some Collection<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }
}
