import Testing
@testable import PG

@Suite struct PGQueryTests {
    @Test func interpolatedValuesBecomeNumberedBinds() {
        let name = "Riverside"
        let id = 42
        let query: PGQuery = "SELECT * FROM events WHERE id = \(id) AND name = \(name)"
        #expect(query.sql == "SELECT * FROM events WHERE id = $1 AND name = $2")
        #expect(query.binds == ["42", "Riverside"])
    }

    @Test func hostileTextStaysABindNeverSQL() {
        let hostile = "'; DROP TABLE events; --"
        let query: PGQuery = "SELECT \(hostile)"
        #expect(query.sql == "SELECT $1")
        #expect(query.binds == [hostile])
    }

    @Test func optionalNilIsSQLNull() {
        let missing: String? = nil
        let query: PGQuery = "UPDATE t SET note = \(missing)"
        #expect(query.binds == [nil])
    }

    @Test func unsafeFragmentsAreSplicedVerbatim() {
        let column = "created_at"
        let query: PGQuery = "SELECT \(unsafeSQL: column) FROM t WHERE id = \(7)"
        #expect(query.sql == "SELECT created_at FROM t WHERE id = $1")
        #expect(query.binds == ["7"])
    }

    @Test func arraysAreQuotedAndEscapedArrayLiterals() {
        #expect(["a", "b c"].pgText == #"{"a","b c"}"#)
        #expect([#"quo"te"#, #"back\slash"#].pgText == #"{"quo\"te","back\\slash"}"#)
        #expect([1, 2, 3].pgText == "{1,2,3}")
        #expect([-1, 0].pgText == "{-1,0}")
        #expect(["é", "\u{1F600}\"x"].pgText == #"{"é","\#u{1F600}\"x"}"#)
        #expect([String]().pgText == "{}")
    }

    @Test func scalarsUsePostgresTextForms() {
        #expect(true.pgText == "t")
        #expect(false.pgText == "f")
        #expect(Int64(-5).pgText == "-5")
        #expect(PGBytes([0x00, 0xab, 0xff]).pgText == "\\x00abff")
    }
}

@Suite struct PGErrorTests {
    @Test func connectionClassStatesAreUnavailable() {
        #expect(PGError(kind: .server, message: "x", sqlState: "08006").isUnavailable)
        #expect(PGError(kind: .server, message: "x", sqlState: "57P01").isUnavailable)
        #expect(PGError(kind: .poolTimeout, message: "x").isUnavailable)
        #expect(!PGError(kind: .server, message: "x", sqlState: "23505").isUnavailable)
        #expect(PGError(kind: .server, message: "x", sqlState: "23505").isUniqueViolation)
    }

    @Test func descriptionIsSafeAndDebugDescriptionIsComplete() {
        let error = PGError(kind: .server, message: "duplicate key value", sqlState: "23505", constraint: "api_keys_key_hash_unique", detail: "Key (key_hash)=(...) already exists.")
        #expect(!error.description.contains("duplicate key value"))
        #expect(error.debugDescription.contains("api_keys_key_hash_unique"))
        #expect(error.debugDescription.contains("23505"))
    }
}
