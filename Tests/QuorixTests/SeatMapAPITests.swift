import Foundation
import Quorix
import QuorixTestSupport
import Testing

/// One server for the seat-map tests that do not count rows of the whole database.
private let seatMapServer = SharedServer()

/// `POST /v1/seatmaps`, `GET /v1/seatmaps`, `GET /v1/seatmaps/{id}` against a real server and database.
@Suite struct SeatMapAPITests {
    /// SEATMAPS.md's example, plus every optional field: origin, rotation, a row that is a range
    /// and listed seats, flags, fractions, an exponent, non-ASCII text.
    static let richDocument = #"""
        {
          "name": "Riverside Hall — Grand Salle ✓",
          "categories": [
            {"key": "premium", "label": "Premium", "color": "#b3261e"},
            {"key": "standard", "label": "Standard", "color": "#1d4ed8"}
          ],
          "sections": [
            {
              "key": "ORCH", "label": "Orchestra",
              "rows": [
                {"key": "A", "y": 40, "seats": [
                  {"key": "1", "x": 10, "category": "premium", "accessible": true},
                  {"key": "2", "x": 20, "category": "premium", "companion": true}
                ]},
                {"key": "B", "y": 50, "category": "standard",
                 "range": {"from": 1, "to": 30}, "x0": 10, "dx": 10}
              ]
            },
            {
              "key": "BAL.1", "label": "Balcony (Élévation)", "category": "standard",
              "origin": {"x": -120.5, "y": 300}, "rotation": 22.5,
              "rows": [
                {"key": "AA", "y": 1e1, "range": {"from": 5, "to": 8}, "x0": 0.25, "dx": 12.5,
                 "seats": [{"key": "8A", "x": 60, "restricted_view": true, "category": "premium"}]},
                {"key": "BB_2", "seats": [{"key": "1", "x": -3.75, "y": 22}]}
              ]
            }
          ]
        }
        """#

    func organizer(_ server: ServerProcess) throws -> String {
        try server.createKey(role: "organizer", name: "seat map organizer")
    }

    // MARK: - Upload, list, read back

    @Test func uploadListAndReadBackTheDocument() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let upload = try server.uploadSeatMap(Array(Self.richDocument.utf8), key: key)
        #expect(upload.status == 201, "\(upload)")
        let created = try upload.json()
        let id = try #require(created["id"]?.catalogInt, "\(upload)")
        #expect(id > 0)
        #expect(created["name"] == .string("Riverside Hall — Grand Salle ✓"))
        #expect(created["seat_count"]?.catalogInt == 38)
        let sections = try #require(created["sections"]?.catalogArray)
        #expect(sections.count == 2)
        #expect(sections.map { $0["key"]?.catalogString } == ["ORCH", "BAL.1"])
        #expect(sections.map { $0["label"]?.catalogString } == ["Orchestra", "Balcony (Élévation)"])
        #expect(sections.map { $0["seat_count"]?.catalogInt } == [32, 6])
        #expect(Set(created.catalogMembers?.map(\.0) ?? []) == ["id", "name", "seat_count", "sections"])

        // The database holds exactly those seats, labelled SECTION-ROW-SEAT.
        let labels = try await server.sql("SELECT label FROM seats WHERE seatmap_id = \(id) ORDER BY label").rows.map { try $0.string("label") }
        #expect(labels.count == 38)
        #expect(labels.contains("BAL.1-AA-8A") && labels.contains("BAL.1-AA-5") && labels.contains("ORCH-B-30") && labels.contains("BAL.1-BB_2-1"))

        // Listed without a key, with CORS.
        let list = try server.request("GET", "/v1/seatmaps?limit=500")
        #expect(list.status == 200, "\(list)")
        #expect(list.header("Access-Control-Allow-Origin") == "*")
        let items = try #require(try list.json()["items"]?.catalogArray)
        let item = try #require(items.first { $0["id"]?.catalogInt == id }, "seat map \(id) is not listed: \(list)")
        #expect(item["name"] == .string("Riverside Hall — Grand Salle ✓"))
        #expect(item["seat_count"]?.catalogInt == 38)

        // Read back without a key: the document as uploaded, plus id and seat_count.
        let read = try server.request("GET", "/v1/seatmaps/\(id)")
        #expect(read.status == 200, "\(read)")
        #expect(read.header("Access-Control-Allow-Origin") == "*")
        #expect(read.header("Content-Type")?.hasPrefix("application/json") == true)
        let document = try read.json()
        #expect(document["id"]?.catalogInt == id)
        #expect(document["seat_count"]?.catalogInt == 38)
        let members = try #require(document.catalogMembers)
        let stripped = JSONValue.object(members.filter { $0.0 != "id" && $0.0 != "seat_count" })
        let uploaded = try JSONParser.parse(Array(Self.richDocument.utf8))
        let difference = jsonDifference(uploaded, stripped)
        #expect(difference == nil, "the stored document differs from the upload: \(difference ?? "")")
    }

    @Test func sampleDocumentReadsBackUnchanged() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let bytes = try SampleMaps.bytes("theatre")
        let id = try server.uploadSample(SampleMaps.theatre, key: key)
        let read = try server.slowRequest("GET", "/v1/seatmaps/\(id)")
        #expect(read.status == 200, "\(read)")
        let members = try #require(try read.json().catalogMembers)
        #expect(members.first { $0.0 == "seat_count" }?.1.catalogInt == SampleMaps.theatre.seats)
        let stripped = JSONValue.object(members.filter { $0.0 != "id" && $0.0 != "seat_count" })
        let difference = jsonDifference(try JSONParser.parse(bytes), stripped)
        #expect(difference == nil, "theatre.json differs after the round trip: \(difference ?? "")")
    }

    // MARK: - Sample maps

    @Test(arguments: SampleMaps.all.map(\.file))
    func sampleMapUploadsOverHTTP(_ file: String) async throws {
        let facts = try #require(SampleMaps.all.first { $0.file == file })
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let response = try server.uploadSeatMap(try SampleMaps.bytes(file), key: key)
        #expect(response.status == 201, "\(response)")
        let json = try response.json()
        let id = try #require(json["id"]?.catalogInt, "\(response)")
        #expect(json["seat_count"]?.catalogInt == facts.seats)
        let sections = try #require(json["sections"]?.catalogArray)
        #expect(sections.count == facts.sections)
        #expect(sections.compactMap { $0["seat_count"]?.catalogInt }.reduce(0, +) == facts.seats)
        #expect(sections.allSatisfy { ($0["seat_count"]?.catalogInt ?? 0) > 0 && $0["label"]?.catalogString?.isEmpty == false })

        // Every seat is stored, with the README's categories.
        let byCategory = try await server.sql(
            "SELECT category, count(*) AS n FROM seats WHERE seatmap_id = \(id) GROUP BY category")
        var counts: [String: Int] = [:]
        for row in byCategory.rows { counts[try row.string("category")] = try row.int("n") }
        #expect(counts == facts.categories)
        let sectionRows = try await server.sqlInt("SELECT count(*) AS n FROM sections WHERE seatmap_id = \(id)")
        #expect(sectionRows == facts.sections)
        let stored = try await server.sqlInt("SELECT seat_count AS n FROM seatmaps WHERE id = \(id)")
        #expect(stored == facts.seats)
    }

    // MARK: - Refusals

    @Test func invalidDocumentIs422WithEveryProblemAndStoresNothing() async throws {
        // A database of its own, so that nothing else stores rows while this test counts them.
        let server = try await ServerProcess.start()
        let key = try organizer(server)
        _ = try server.uploadSample(SampleMaps.theatre, key: key)

        func counts() async throws -> [Int] {
            let row = try #require(try await server.sql("""
                SELECT (SELECT count(*) FROM seatmaps) AS maps, (SELECT count(*) FROM sections) AS sections,
                       (SELECT count(*) FROM seat_rows) AS rows, (SELECT count(*) FROM seats) AS seats
                """).first)
            return [try row.int("maps"), try row.int("sections"), try row.int("rows"), try row.int("seats")]
        }
        let before = try await counts()
        #expect(before == [1, 4, try await server.sqlInt("SELECT count(*) AS n FROM seat_rows"), SampleMaps.theatre.seats])

        // Mostly valid (10,000 range seats would be stored), with eight problems in it.
        let document = #"""
            {
              "name": "Broken Hall", "venue": "not a field",
              "categories": [{"key": "standard", "label": "Standard", "color": "#1d4ed8"}],
              "sections": [
                {"key": "MAIN", "label": "Main", "category": "standard", "rows": [
                  {"key": "A", "y": 0, "seats": [
                    {"key": "1", "x": 0, "accessible": "yes"},
                    {"key": "1-2", "x": 10}
                  ]},
                  {"key": "B", "y": 20, "colour": "red", "range": {"from": 1, "to": 10000}, "x0": 0, "dx": 10}
                ]},
                {"key": "SIDE", "label": "Side", "rows": [
                  {"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "category": "vip"}]},
                  {"key": "A", "y": 20, "category": "standard", "range": {"from": 1, "to": 5}, "x0": 0, "dx": 10}
                ]},
                {"key": "UPPER", "label": "Upper", "category": "standard", "rows": [
                  {"key": "A", "y": 0, "range": {"from": 9, "to": 2}, "x0": 0, "dx": 10},
                  {"key": "B", "y": 2000000, "seats": [{"key": "1", "x": 0}]}
                ]}
              ]
            }
            """#
        let response = try server.uploadSeatMap(Array(document.utf8), key: key)
        expectError(response, status: 422, code: "validation_failed")
        let paths = response.detailPaths
        #expect(Set(paths) == [
            "venue",
            "sections[0].rows[0].seats[0].accessible",
            "sections[0].rows[0].seats[1].key",
            "sections[0].rows[1].colour",
            "sections[1].rows[0].seats[0].category",
            "sections[1].rows[1].key",
            "sections[2].rows[0].range",
            "sections[2].rows[1].y",
        ], "\(response)")
        #expect(paths.count == 8, "\(response)")
        let messages = Dictionary(response.detailPairs.map { ($0.path, $0.message) }, uniquingKeysWith: { $0 + " | " + $1 })
        #expect(messages["sections[1].rows[0].seats[0].category"]?.contains("vip") == true)
        #expect(messages["sections[0].rows[0].seats[1].key"]?.contains("1-2") == true)
        #expect(response.detailPairs.allSatisfy { !$0.message.isEmpty })

        #expect(try await counts() == before, "a refused document left rows behind")
        let named = try await server.sqlInt("SELECT count(*) AS n FROM seatmaps WHERE name = 'Broken Hall'")
        #expect(named == 0)

        // Fixed, the same document is stored whole.
        let fixed = document
            .replacingOccurrences(of: #""venue": "not a field","#, with: "")
            .replacingOccurrences(of: #", "accessible": "yes""#, with: ", \"accessible\": true")
            .replacingOccurrences(of: #""1-2""#, with: #""2""#)
            .replacingOccurrences(of: #""colour": "red", "#, with: "")
            .replacingOccurrences(of: #""category": "vip""#, with: #""category": "standard""#)
            .replacingOccurrences(of: #"{"key": "A", "y": 20, "category""#, with: #"{"key": "B", "y": 20, "category""#)
            .replacingOccurrences(of: #""from": 9, "to": 2"#, with: #""from": 2, "to": 9"#)
            .replacingOccurrences(of: "2000000", with: "40")
        let stored = try server.uploadSeatMap(Array(fixed.utf8), key: key)
        #expect(stored.status == 201, "\(stored)")
        #expect(try stored.json()["seat_count"]?.catalogInt == 2 + 10_000 + 1 + 5 + 8 + 1)
        #expect(try await counts() == [2, 7, before[2] + 6, SampleMaps.theatre.seats + 10_017])
    }

    @Test func bodyThatIsNotJSONIs400() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        for body in [#"{"name": "x","#, "name: x", "{\"name\":\"x\"} {}"] {
            expectError(try server.uploadSeatMap(Array(body.utf8), key: key), status: 400, code: "invalid_json")
        }
        let empty = try server.request("POST", "/v1/seatmaps", headers: [bearer(key), ("Content-Type", "application/json")], body: [])
        expectError(empty, status: 400)
    }

    @Test func wrongContentTypeIs415() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let body = Array(Self.richDocument.utf8)
        for contentType in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"] {
            let response = try server.request("POST", "/v1/seatmaps", headers: [bearer(key), ("Content-Type", contentType)], body: body)
            expectError(response, status: 415, code: "unsupported_media_type")
        }
        let missing = try server.request("POST", "/v1/seatmaps", headers: [bearer(key)], body: body)
        expectError(missing, status: 415, code: "unsupported_media_type")
    }

    @Test func onlyOrganizersAndAdminsUpload() async throws {
        let server = try await seatMapServer.get()
        let body = Array(Self.richDocument.utf8)
        let client = try server.createKey(role: "client")
        expectError(try server.uploadSeatMap(body, key: client), status: 403, code: "forbidden")
        let none = try server.request("POST", "/v1/seatmaps", headers: [("Content-Type", "application/json")], body: body)
        expectError(none, status: 401, code: "unauthorized")
        expectError(try server.uploadSeatMap(body, key: "qx_not_a_key"), status: 401, code: "unauthorized")
        let admin = try server.uploadSeatMap(body, key: server.adminKey)
        #expect(admin.status == 201, "\(admin)")
    }

    @Test func declaredBodyOver16MiBIs413() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let client = try server.client()
        try client.sendRequest("POST", "/v1/seatmaps", headers: [
            bearer(key), ("Content-Type", "application/json"), ("Content-Length", "\((16 << 20) + 1)"),
        ])
        expectError(try client.readResponse(), status: 413, code: "payload_too_large")
    }

    @Test func bodyOf16MiBIsAccepted() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        let document = try SampleMaps.bytes("theatre")
        let padded = document + [UInt8](repeating: UInt8(ascii: " "), count: (16 << 20) - document.count)
        #expect(padded.count == 16 << 20)
        let response = try server.uploadSeatMap(padded, key: key)
        #expect(response.status == 201, "\(response)")
        #expect(try response.json()["seat_count"]?.catalogInt == SampleMaps.theatre.seats)
    }

    // MARK: - Pagination and lookups

    @Test func listPaginatesWithCursors() async throws {
        let server = try await seatMapServer.get()
        let key = try organizer(server)
        var mine: [Int] = []
        for _ in 0..<3 {
            let document = Self.richDocument.replacingOccurrences(of: "Riverside Hall — Grand Salle ✓", with: uniqueName("Paged"))
            let response = try server.uploadSeatMap(Array(document.utf8), key: key)
            mine.append(try #require(try response.json()["id"]?.catalogInt, "\(response)"))
        }
        let all = try server.request("GET", "/v1/seatmaps?limit=500")
        #expect(all.status == 200, "\(all)")
        #expect(try all.json()["next_cursor"]?.isCatalogNull == true)
        let snapshot = try #require(try all.json()["items"]?.catalogArray).compactMap { $0["id"]?.catalogInt }
        #expect(Set(mine).isSubset(of: Set(snapshot)))

        // One at a time: each page one item, in id order, ending with next_cursor null.
        var walked: [Int] = []
        var cursor: String?
        var pages = 0
        repeat {
            pages += 1
            let path = "/v1/seatmaps?limit=1" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try server.request("GET", path)
            #expect(page.status == 200, "\(page)")
            let json = try page.json()
            let items = try #require(json["items"]?.catalogArray, "\(page)")
            #expect(items.count <= 1)
            walked += items.compactMap { $0["id"]?.catalogInt }
            let next = try #require(json["next_cursor"], "no next_cursor in \(page)")
            if items.isEmpty { #expect(next.isCatalogNull, "an empty page points further: \(page)") }
            cursor = next.catalogString
            if !next.isCatalogNull { #expect(cursor?.isEmpty == false, "\(page)") }
        } while cursor != nil && pages <= snapshot.count + 50
        #expect(cursor == nil, "the walk did not end")
        // Maps stored meanwhile may appear too (also between older ones: a big map's id is taken
        // before its seats are written), but every listed one is met, once, in order.
        #expect(Set(snapshot).isSubset(of: Set(walked)), "\(walked) vs \(snapshot)")
        #expect(walked == walked.sorted() && Set(walked).count == walked.count)

        // Following the first page's cursor gives the second item.
        let first = try server.request("GET", "/v1/seatmaps?limit=1")
        let next = try #require(try first.json()["next_cursor"]?.catalogString, "\(first)")
        let second = try server.request("GET", "/v1/seatmaps?limit=1&cursor=\(next)")
        let firstID = try #require(try first.json()["items"]?.catalogArray?.first?["id"]?.catalogInt)
        let secondID = try #require(try second.json()["items"]?.catalogArray?.first?["id"]?.catalogInt, "\(second)")
        #expect(firstID <= snapshot[0] && secondID > firstID && secondID <= snapshot[1], "\(firstID), \(secondID) vs \(snapshot)")
        let two = try server.request("GET", "/v1/seatmaps?limit=2")
        let twoIDs = try two.json()["items"]?.catalogArray?.compactMap { $0["id"]?.catalogInt } ?? []
        #expect(twoIDs.count == 2 && twoIDs[0] == firstID && twoIDs[1] > firstID, "\(two)")
    }

    @Test(arguments: ["cursor=garbage", "cursor=Zm9vYmFy", "cursor=%FF", "cursor=", "limit=0", "limit=501", "limit=x", "limit=-1", "limit=1.5", "limit="])
    func badPaginationIs400(_ query: String) async throws {
        let server = try await seatMapServer.get()
        let response = try server.request("GET", "/v1/seatmaps?\(query)")
        expectError(response, status: 400)
    }

    @Test func pageSizeBoundsAreAccepted() async throws {
        let server = try await seatMapServer.get()
        for limit in [1, 500] {
            let response = try server.request("GET", "/v1/seatmaps?limit=\(limit)")
            #expect(response.status == 200, "\(response)")
        }
    }

    @Test(arguments: ["/v1/seatmaps/999999", "/v1/seatmaps/abc", "/v1/seatmaps/0", "/v1/seatmaps/-1", "/v1/seatmaps/01", "/v1/seatmaps/99999999999999999999999"])
    func unknownSeatMapIs404(_ path: String) async throws {
        let server = try await seatMapServer.get()
        expectError(try server.request("GET", path), status: 404, code: "not_found")
    }
}
