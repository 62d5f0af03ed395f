/// A seat map that passed validation (`SeatMapValidator`), with every seat expanded: ranges are
/// turned into seats, categories are inherited (seat → row → section) and seats are sorted by `x`.
/// The format is described in `SEATMAPS.md`.
public struct SeatMapDocument: Sendable {
    public let name: String
    /// In document order.
    public let categories: [Category]
    /// In document order.
    public let sections: [Section]
    public var seatCount: Int

    public struct Category: Sendable, Equatable {
        public let key: String
        /// The document's label, or the key when it gives none.
        public let label: String
        /// `#rrggbb`, as written.
        public let color: String?
    }

    public struct Section: Sendable {
        public let key: String
        /// The document's label, or the key when it gives none.
        public let label: String
        /// 0-based position in the document.
        public let position: Int
        public let origin: (x: Double, y: Double)?
        /// Degrees, -360...360.
        public let rotation: Double?
        /// In document order.
        public let rows: [Row]

        public var seatCount: Int { rows.reduce(0) { $0 + $1.seats.count } }
    }

    public struct Row: Sendable {
        public let key: String
        /// 0-based position of the row in its section, in document order.
        public let rank: Int
        /// Sorted by `x`; seats with equal `x` keep the order they appear in (a row's `range` and
        /// `seats` in the order the two fields are written, range seats counting up).
        public let seats: [Seat]
    }

    public struct Seat: Sendable {
        public let key: String
        /// `SECTION-ROW-SEAT`.
        public let label: String
        /// A key of one of the document's categories.
        public let category: String
        public let x: Double
        public let y: Double
        /// 0-based position of the seat in its row's order by `x`; neighbours differ by one.
        public let ordinal: Int
        public let accessible: Bool
        public let restrictedView: Bool
        public let companion: Bool
    }
}

/// Seat labels are `SECTION-ROW-SEAT`, made of the keys of a seat map. Keys never contain `-`, so
/// a label splits back unambiguously.
public enum SeatLabel {
    public static let maxKeyLength = 16

    public static func make(section: String, row: String, seat: String) -> String {
        section + "-" + row + "-" + seat
    }

    /// The three keys of a label, or nil unless it is exactly three valid keys joined by `-`.
    public static func split(_ label: String) -> (section: String, row: String, seat: String)? {
        let utf8 = label.utf8
        // Three keys of at most 16 bytes and two dashes.
        guard utf8.count <= 3 * maxKeyLength + 2 else { return nil }
        var parts: [Substring.UTF8View] = []
        parts.reserveCapacity(3)
        var start = utf8.startIndex
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "-") {
                guard parts.count < 2 else { return nil }
                parts.append(label[start..<index].utf8)
                start = utf8.index(after: index)
            } else if !isKeyByte(byte) {
                return nil
            }
            index = utf8.index(after: index)
        }
        parts.append(label[start..<utf8.endIndex].utf8)
        guard parts.count == 3, parts.allSatisfy({ (1...maxKeyLength).contains($0.count) }) else { return nil }
        return (String(Substring(parts[0])), String(Substring(parts[1])), String(Substring(parts[2])))
    }

    /// 1-16 characters of `A-Z a-z 0-9 _ .`.
    public static func isValidKey(_ key: String) -> Bool {
        let utf8 = key.utf8
        guard (1...maxKeyLength).contains(utf8.count) else { return false }
        return utf8.allSatisfy(isKeyByte)
    }

    @inline(__always)
    static func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }
}
