/// A statement and its parameters. Interpolated values become `$n` binds, never SQL text:
///
///     let query: PGQuery = "SELECT * FROM events WHERE id = \(id) AND name = \(name)"
///
/// SQL text built at run time must be spelled out as `PGQuery(unsafeSQL:)` or
/// `\(unsafeSQL: fragment)`, so every injection risk is visible at the call site.
public struct PGQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var sql: String
    public private(set) var binds: [String?]

    public init(unsafeSQL sql: String, binds: [String?] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation(_ value: some PGEncodable) {
            binds.append(value.pgText)
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: (some PGEncodable)?) {
            binds.append(value?.pgText)
            sql += "$\(binds.count)"
        }

        /// Splices SQL text (an identifier list, a fragment chosen from constants). Never user input.
        public mutating func appendInterpolation(unsafeSQL fragment: String) {
            sql += fragment
        }
    }
}

/// A value sent as a text-format parameter.
public protocol PGEncodable: Sendable {
    var pgText: String { get }
    /// Whether the text can stand in an array literal unquoted (numbers, booleans).
    static var pgTextIsBareArrayElement: Bool { get }
}

extension PGEncodable {
    public static var pgTextIsBareArrayElement: Bool { false }
}

extension String: PGEncodable { public var pgText: String { self } }
extension Substring: PGEncodable { public var pgText: String { String(self) } }
/// Whole numbers: their decimal text, which stands bare in an array literal.
public protocol PGInteger: PGEncodable, BinaryInteger {}

extension PGInteger {
    public var pgText: String { String(self) }
    public static var pgTextIsBareArrayElement: Bool { true }
}

extension Int: PGInteger {}
extension Int32: PGInteger {}
extension Int64: PGInteger {}
extension UInt64: PGInteger {}
extension Double: PGEncodable { public var pgText: String { "\(self)" } }
extension Bool: PGEncodable {
    public var pgText: String { self ? "t" : "f" }
    public static var pgTextIsBareArrayElement: Bool { true }
}

/// Bytes as a `bytea` hex literal.
public struct PGBytes: PGEncodable, Equatable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var pgText: String { "\\x" + PGBytes.hex(bytes) }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Arrays as PostgreSQL array literals (`{"a","b"}`, `{1,2}`), elements quoted and escaped
/// unless they are numbers or booleans. Built as UTF-8 bytes: a hold statement carries several
/// arrays, and appending scalar by scalar was 3 % of a hold's CPU. (`"` and `\` never occur
/// inside a multi-byte UTF-8 sequence, so escaping bytes is escaping characters.)
extension Array: PGEncodable where Element: PGEncodable {
    public var pgText: String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        let bare = Element.pgTextIsBareArrayElement
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(2 + count * 8)
        for (index, element) in enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            let text = element.pgText
            if bare {
                bytes.append(contentsOf: text.utf8)
                continue
            }
            bytes.append(quote)
            for byte in text.utf8 {
                if byte == quote || byte == backslash { bytes.append(backslash) }
                bytes.append(byte)
            }
            bytes.append(quote)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
