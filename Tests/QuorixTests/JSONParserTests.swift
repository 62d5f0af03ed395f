import Testing
@testable import Quorix

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2.5, 3e2, true, false, null, "x\n\u00e9\ud83c\udfab"], "b": {}} "#)
        #expect(value["a"] == .array([.int(1), .double(-2.5), .double(300), .bool(true), .bool(false), .null, .string("x\né🎫")]))
        #expect(value["b"] == .object([]))
    }

    @Test func integersAreToldFromFractions() throws {
        guard case .number(let integer) = try parse("1500") else { Issue.record("not a number"); return }
        #expect(integer.integer == 1500)
        guard case .number(let fraction) = try parse("15.00") else { Issue.record("not a number"); return }
        #expect(fraction.integer == nil)
        guard case .number(let huge) = try parse("123456789012345678901234567890") else { Issue.record("not a number"); return }
        #expect(huge.integer == nil)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "nul", "\"unterminated", "{\"a\" 1}",
        "[1 2]", "\"\\x\"", "\"\\ud800\"", "\"tab\there\"", "{} {}", "NaN", "Infinity", "'single'",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func rejectsInvalidUTF8InStrings() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func rejectsDuplicateKeys() {
        #expect(throws: JSONParseError.self) { try parse(#"{"a": 1, "a": 2}"#) }
    }

    /// Small objects are checked member by member, large ones through a set from the 17th key
    /// on: a duplicate is found on either side of that switch, and distinct keys all pass.
    @Test(arguments: [2, 16, 17, 18, 40])
    func rejectsADuplicateKeyAtAnyPosition(_ position: Int) {
        let keys = (1...40).map { "k\($0)" }
        func object(_ keys: [String]) -> String { "{" + keys.map { #""\#($0)": 1"# }.joined(separator: ", ") + "}" }
        var withDuplicate = Array(keys.prefix(position))
        withDuplicate.append(keys[position / 2])
        #expect(throws: JSONParseError.self) { try parse(object(withDuplicate)) }
        #expect(throws: Never.self) { try parse(object(keys)) }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        #expect(throws: Never.self) { try parse(fine) }
    }

    @Test func writerRoundTripsAndEscapes() throws {
        let value: JSONValue = .object([("name", "Quote \" and \\ and \n and \u{01}"), ("n", 5), ("list", [true, nil])])
        let text = JSONWriter.string(value)
        #expect(text == #"{"name":"Quote \" and \\ and \n and \u0001","n":5,"list":[true,null]}"#)
        #expect(try parse(text) == value)
    }
}

@Suite struct JSONObjectReaderTests {
    func reader(_ text: String) throws -> JSONObjectReader {
        try JSONObjectReader(JSONParser.parse(Array(text.utf8)), path: "")
    }

    @Test func wrongTypesAre400AndNameTheField() throws {
        let body = try reader(#"{"role": 5}"#)
        #expect { try body.string("role") } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == 400 && error.message.contains("role") && error.message.contains("string")
        }
    }

    @Test func fractionalIntegersAre400() throws {
        let body = try reader(#"{"quantity": 2.5}"#)
        #expect(throws: APIError.self) { try body.int("quantity") }
    }

    @Test func missingAndUnknownFieldsAreCollectedAs422() throws {
        var body = try reader(#"{"nmae": "typo"}"#)
        _ = try body.required("name") { reader throws(APIError) in try reader.string("name") }
        body.rejectUnknown(["name"])
        #expect { try body.throwIfProblems() } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == 422 && error.details.map(\.path) == ["name", "nmae"]
        }
    }

    @Test func aNonObjectBodyIs400() {
        #expect(throws: APIError.self) { try reader("[1,2]") }
    }

    @Test func newKeyValidationReportsEveryProblem() throws {
        #expect { try APIKeyStore.validateNewKey(try reader(#"{"role": "boss", "name": "", "extra": 1}"#)) } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == 422 && Set(error.details.map(\.path)) == ["role", "name", "extra"]
        }
        let (role, name) = try APIKeyStore.validateNewKey(try reader(#"{"role": "client", "name": "web shop"}"#))
        #expect(role == .client && name == "web shop")
    }
}

@Suite struct APIErrorShapeTests {
    @Test func everyErrorHasCodeAndMessageUnderError() throws {
        let error = APIError.validation([ValidationProblem("sections[2].rows[5].seats[3].key", "must be 1-16 characters")])
        let body = try JSONParser.parse(error.response.body)
        #expect(body["error"]?["code"] == "validation_failed")
        #expect(body["error"]?["details"] == [.object([("path", "sections[2].rows[5].seats[3].key"), ("message", "must be 1-16 characters")])])
        #expect(error.response.status == 422)
    }

    @Test func unavailableCarriesRetryAfter() {
        let response = APIError.databaseUnavailable.response
        #expect(response.status == 503)
        #expect(response.headers["Retry-After"] == "1")
    }

    @Test func methodNotAllowedCarriesAllow() {
        let response = APIError.methodNotAllowed(allowed: ["GET", "HEAD"]).response
        #expect(response.headers["Allow"] == "GET, HEAD")
    }
}

@Suite struct TimestampTests {
    @Test func formatsRFC3339WithMilliseconds() {
        #expect(Timestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 1_795_428_900_123).rfc3339 == "2026-11-23T10:15:00.123Z")
        #expect(Timestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }

    @Test func keysAreURLSafeAndUnique() {
        let keys = (0..<100).map { _ in APIKeyStore.generateKey() }
        #expect(Set(keys).count == 100)
        #expect(keys.allSatisfy { $0.hasPrefix("qx_") && $0.count == 46 })
        #expect(Base64URL.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
    }
}
