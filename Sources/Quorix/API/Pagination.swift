/// `?limit=` and `?cursor=` for lists: limit 1-500 (default 50); the cursor is opaque (the last
/// id seen, base64url-encoded) and a malformed one is 400.
public struct Pagination: Sendable {
    public let limit: Int
    public let afterID: Int

    public static let defaultLimit = 50
    public static let maxLimit = 500

    public init(limit: Int = Pagination.defaultLimit, afterID: Int = 0) {
        self.limit = limit
        self.afterID = afterID
    }

    /// Reads `limit` and `cursor` from the query; other names are left to the caller.
    public static func from(_ items: [(name: String, value: String)]) throws(APIError) -> Pagination {
        var limit = defaultLimit
        var afterID = 0
        for (name, value) in items {
            switch name {
            case "limit":
                guard let parsed = Int(value), (1...maxLimit).contains(parsed) else {
                    throw APIError.badRequest("limit must be a whole number from 1 to \(maxLimit) (got \"\(value)\").")
                }
                limit = parsed
            case "cursor":
                guard let id = decodeCursor(value) else {
                    throw APIError.badRequest("cursor is not one this server issued; pass next_cursor from a previous page.")
                }
                afterID = id
            default:
                continue
            }
        }
        return Pagination(limit: limit, afterID: afterID)
    }

    public static func encodeCursor(lastID: Int) -> String {
        Base64URL.encode(Array("q1:\(lastID)".utf8))
    }

    static func decodeCursor(_ cursor: String) -> Int? {
        guard let bytes = Base64URL.decode(cursor), let text = String(validating: bytes, as: UTF8.self),
            text.hasPrefix("q1:"), let id = Int(text.dropFirst(3)), id > 0
        else { return nil }
        return id
    }

    /// `{"items": [...], "next_cursor": ...}`; there is a next page when the page is full.
    public func page(_ items: [JSONValue], lastID: Int?) -> JSONValue {
        let next: JSONValue = items.count == limit && lastID != nil ? .string(Pagination.encodeCursor(lastID: lastID!)) : .null
        return .object([("items", .array(items)), ("next_cursor", next)])
    }
}

extension Base64URL {
    /// Decodes unpadded (or padded) base64url; nil for anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - 97 + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - 48 + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            case UInt8(ascii: "="): continue
            default: return nil
            }
        }
        if values.count % 4 == 1 { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var accumulator: UInt32 = 0
            for value in chunk { accumulator = accumulator << 6 | UInt32(value) }
            accumulator <<= UInt32(6 * (4 - chunk.count))
            let bytes = [UInt8(accumulator >> 16 & 0xff), UInt8(accumulator >> 8 & 0xff), UInt8(accumulator & 0xff)]
            output.append(contentsOf: bytes.prefix(chunk.count - 1))
            index += 4
        }
        return output
    }
}
