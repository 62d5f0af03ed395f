import Testing
@testable import PG

@Suite struct MigrationPlanTests {
    let first = MigrationFile(version: 1, name: "init", sql: "CREATE TABLE a (id int);")
    let second = MigrationFile(version: 2, name: "more", sql: "CREATE TABLE b (id int);")

    @Test func fileNamesParseToVersionAndName() {
        #expect(MigrationFile.parseFileName("0001_init.sql")! == (1, "init"))
        #expect(MigrationFile.parseFileName("0012_add_waitlist.sql")! == (12, "add_waitlist"))
        #expect(MigrationFile.parseFileName("README.md") == nil)
        #expect(MigrationFile.parseFileName("init.sql") == nil)
        #expect(MigrationFile.parseFileName("0001_.sql") == nil)
        #expect(MigrationFile.parseFileName("x001_init.sql") == nil)
    }

    @Test func checksumIsSHA256OfTheText() {
        #expect(MigrationFile.checksum(of: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(first.checksum != MigrationFile(version: 1, name: "init", sql: "CREATE TABLE a (id bigint);").checksum)
    }

    @Test func pendingAreTheUnappliedInVersionOrder() throws {
        #expect(try MigrationPlan.pending(files: [second, first], applied: [:]) == [first, second])
        #expect(try MigrationPlan.pending(files: [first, second], applied: [1: first.checksum]) == [second])
        #expect(try MigrationPlan.pending(files: [first, second], applied: [1: first.checksum, 2: second.checksum]).isEmpty)
    }

    @Test func aChangedAppliedFileIsAnErrorNamingIt() {
        #expect {
            try MigrationPlan.pending(files: [first], applied: [1: String(repeating: "0", count: 64)])
        } throws: { error in
            let text = (error as? MigrationError)?.description ?? ""
            return text.contains("0001_init.sql") && text.contains("changed after it was applied")
        }
    }

    @Test func duplicateVersionsAreAnError() {
        let clash = MigrationFile(version: 1, name: "other", sql: "SELECT 1;")
        #expect(throws: MigrationError.self) { try MigrationPlan.pending(files: [first, clash], applied: [:]) }
    }

    @Test func aDatabaseAheadOfTheCodeIsAnError() {
        #expect(throws: MigrationError.self) {
            try MigrationPlan.pending(files: [first], applied: [1: first.checksum, 9: "abc"])
        }
    }
}
