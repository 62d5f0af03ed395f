@testable import HTTP1
import Testing

@Suite struct RouterTests {
    private static func makeRouter() -> Router<String> {
        var router = Router<String>()
        router.add("GET", "/v1/events", "listEvents")
        router.add("POST", "/v1/events", "createEvent")
        router.add("GET", "/v1/events/{id}", "getEvent")
        router.add("DELETE", "/v1/events/{id}", "deleteEvent")
        router.add("PATCH", "/v1/events/{id}", "patchEvent")
        router.add("GET", "/v1/events/upcoming", "upcoming")
        router.add("GET", "/v1/events/{eventID}/seats/{seatID}", "getSeat")
        router.add("PUT", "/v1/events/{eventID}/seats/{seatID}", "putSeat")
        router.add("POST", "/v1/events/{id}/holds", "createHold")
        router.add("GET", "/", "root")
        return router
    }

    private let router = RouterTests.makeRouter()

    private struct Found: Equatable {
        var route: String
        var template: String
        var parameters: [String: String]
    }

    private func found(_ method: String, _ path: String) -> Found? {
        if case .found(let route, let template, let parameters) = router.match(method: method, path: path[...]) {
            return Found(route: route, template: template, parameters: parameters)
        }
        return nil
    }

    private func isNotFound(_ method: String, _ path: String) -> Bool {
        if case .notFound = router.match(method: method, path: path[...]) { return true }
        return false
    }

    private func allowed(_ method: String, _ path: String) -> [String]? {
        if case .methodNotAllowed(let allowed) = router.match(method: method, path: path[...]) { return allowed }
        return nil
    }

    @Test func matchesLiteralTemplates() {
        #expect(found("GET", "/v1/events") == Found(route: "listEvents", template: "/v1/events", parameters: [:]))
        #expect(found("POST", "/v1/events")?.route == "createEvent")
        #expect(found("GET", "/")?.route == "root")
    }

    @Test func extractsTemplateParameters() {
        #expect(found("GET", "/v1/events/42") == Found(route: "getEvent", template: "/v1/events/{id}", parameters: ["id": "42"]))
        #expect(
            found("PUT", "/v1/events/7/seats/A-12")
                == Found(
                    route: "putSeat", template: "/v1/events/{eventID}/seats/{seatID}",
                    parameters: ["eventID": "7", "seatID": "A-12"]))
        #expect(found("POST", "/v1/events/9/holds")?.parameters == ["id": "9"])
    }

    @Test func literalSegmentBeatsParameterAtTheSamePosition() {
        #expect(found("GET", "/v1/events/upcoming")?.route == "upcoming")
        #expect(found("GET", "/v1/events/upcomingx")?.route == "getEvent")
    }

    @Test func literalBeatsParameterWhateverTheRegistrationOrder() {
        var router = Router<String>()
        router.add("GET", "/a/{x}/c", "param-middle")
        router.add("GET", "/a/b/{y}", "param-last")
        router.add("GET", "/{p}/b/c", "param-first")
        if case .found(let route, _, let parameters) = router.match(method: "GET", path: "/a/b/c") {
            // The earlier literal segment weighs more.
            #expect(route == "param-last")
            #expect(parameters == ["y": "c"])
        } else {
            Issue.record("no match")
        }
        if case .found(let route, _, _) = router.match(method: "GET", path: "/a/z/c") {
            #expect(route == "param-middle")
        } else {
            Issue.record("no match")
        }
        if case .found(let route, _, _) = router.match(method: "GET", path: "/z/b/c") {
            #expect(route == "param-first")
        } else {
            Issue.record("no match")
        }
    }

    @Test func unknownPathsAreNotFound() {
        #expect(isNotFound("GET", "/v2/events"))
        #expect(isNotFound("GET", "/v1/events/1/seats"))
        #expect(isNotFound("GET", "/v1/events/1/seats/2/extra"))
        #expect(isNotFound("GET", "/v1"))
        #expect(isNotFound("DELETE", "/nothing/here"))
        #expect(isNotFound("GET", "/V1/EVENTS"))
    }

    @Test func knownPathWithAnotherMethodIsMethodNotAllowedWithSortedAllowList() {
        #expect(allowed("DELETE", "/v1/events") == ["GET", "HEAD", "POST"])
        #expect(allowed("POST", "/v1/events/42") == ["DELETE", "GET", "HEAD", "PATCH"])
        #expect(allowed("DELETE", "/v1/events/7/seats/1") == ["GET", "HEAD", "PUT"])
        #expect(allowed("GET", "/v1/events/7/holds") == ["POST"])
    }

    @Test func methodNotAllowedListsMethodsOfEveryMatchingTemplate() {
        // "/v1/events/upcoming" fits both the literal and the {id} template.
        #expect(allowed("PUT", "/v1/events/upcoming") == ["DELETE", "GET", "HEAD", "PATCH"])
    }

    @Test func methodsAreCaseSensitive() {
        #expect(allowed("get", "/v1/events") != nil)
    }

    @Test func headMatchesAGetRoute() {
        #expect(found("HEAD", "/v1/events/5") == Found(route: "getEvent", template: "/v1/events/{id}", parameters: ["id": "5"]))
        #expect(found("HEAD", "/v1/events")?.route == "listEvents")
        // HEAD does not fall back to anything but GET.
        #expect(allowed("HEAD", "/v1/events/5/holds") == ["POST"])
    }

    @Test func explicitHeadAllowedIsNotDuplicated() {
        var router = Router<String>()
        router.add("GET", "/x", "get")
        router.add("HEAD", "/x", "head")
        if case .methodNotAllowed(let allowed) = router.match(method: "POST", path: "/x") {
            #expect(allowed == ["GET", "HEAD"])
        } else {
            Issue.record("expected 405")
        }
    }

    @Test func parametersArePercentDecoded() {
        #expect(found("GET", "/v1/events/hello%20world")?.parameters == ["id": "hello world"])
        #expect(found("GET", "/v1/events/caf%C3%A9")?.parameters == ["id": "café"])
        #expect(found("GET", "/v1/events/%E2%82%AC")?.parameters == ["id": "€"])
        #expect(found("GET", "/v1/events/a%2Fb")?.parameters == ["id": "a/b"])
        // A path segment is not a form: `+` stays `+`.
        #expect(found("GET", "/v1/events/a+b")?.parameters == ["id": "a+b"])
    }

    @Test(arguments: ["%", "%2", "%ZZ", "%G0", "abc%", "%C3", "%FF", "%C3%28", "%ED%A0%80"])
    func invalidPercentEncodingDoesNotMatch(segment: String) {
        #expect(isNotFound("GET", "/v1/events/\(segment)"))
        #expect(isNotFound("PUT", "/v1/events/\(segment)/seats/1"))
    }

    @Test func emptySegmentCannotStandForAParameter() {
        // `//` collapses (see below): "/v1/events//seats/1" has four segments, not five with an
        // empty {eventID}.
        #expect(found("GET", "/v1/events//seats/1") == nil)
        #expect(isNotFound("GET", "/v1/events//seats/1"))
    }

    @Test func literalSegmentsAreComparedUndecoded() {
        #expect(found("GET", "/v1/%65vents")?.route == nil)
    }

    /// Documented behaviour: empty segments are ignored, so a trailing slash and repeated
    /// slashes reach the same route as the canonical path.
    @Test func trailingAndRepeatedSlashesAreIgnored() {
        #expect(found("GET", "/v1/events/")?.route == "listEvents")
        #expect(found("GET", "//v1//events")?.route == "listEvents")
        #expect(found("GET", "/v1/events/42/")?.parameters == ["id": "42"])
        #expect(found("GET", "")?.route == "root")
        #expect(found("GET", "//")?.route == "root")
    }

    @Test func templatesListsEveryRegisteredRoute() {
        let templates = router.templates
        #expect(templates.count == 10)
        #expect(templates.contains { $0.method == "PUT" && $0.template == "/v1/events/{eventID}/seats/{seatID}" })
        #expect(templates.first?.method == "GET")
        #expect(templates.first?.template == "/v1/events")
    }

    @Test func sameTemplateMayBeRegisteredForDifferentMethods() {
        var router = Router<Int>()
        router.add("GET", "/a/{id}", 1)
        router.add("PUT", "/a/{id}", 2)
        // Same shape, other parameter name, other method.
        router.add("DELETE", "/a/{key}", 3)
        if case .found(let route, _, let parameters) = router.match(method: "DELETE", path: "/a/z") {
            #expect(route == 3)
            #expect(parameters == ["key": "z"])
        } else {
            Issue.record("no match")
        }
    }

    @Test func emptyRouterFindsNothing() {
        let router = Router<String>()
        if case .notFound = router.match(method: "GET", path: "/") {} else { Issue.record("expected 404") }
    }
}

@Suite struct PercentDecodingTests {
    private func pairs(_ query: String) -> [String]? {
        PercentDecoding.queryItems(query)?.map { "\($0.name)=\($0.value)" }
    }

    @Test func decodesFormEncodedQueryItemsInOrder() {
        #expect(pairs("a=1&b=two+words&c=%C3%A9") == ["a=1", "b=two words", "c=é"])
    }

    @Test func keepsEmptyValues() {
        #expect(pairs("a=&b=2") == ["a=", "b=2"])
        #expect(PercentDecoding.queryItems("a=")?.first?.value == "")
    }

    @Test func nameWithoutEqualsSignHasEmptyValue() {
        #expect(pairs("flag&x=1") == ["flag=", "x=1"])
    }

    @Test func repeatedNamesAreAllKept() {
        #expect(pairs("status=free&status=held") == ["status=free", "status=held"])
    }

    @Test func valueMayContainEqualsSigns() {
        #expect(pairs("expr=a%3Db=c") == ["expr=a=b=c"])
        #expect(PercentDecoding.queryItems("k=a=b")?.first?.value == "a=b")
    }

    @Test func emptyPiecesAreSkipped() {
        #expect(pairs("") == [])
        #expect(pairs("&&a=1&&") == ["a=1"])
    }

    @Test func decodesEscapedSpecialCharacters() {
        #expect(pairs("q=%2B%26%3D%25") == ["q=+&=%"])
        #expect(pairs("na%20me=v") == ["na me=v"])
    }

    @Test(arguments: ["a=%", "a=%2", "a=%ZZ", "a=1&b=%G1", "%4=x", "a=%%41"])
    func badEscapesMakeTheWholeQueryNil(query: String) {
        #expect(PercentDecoding.queryItems(query) == nil)
    }

    @Test(arguments: ["a=%FF", "a=%C3", "%C3%28=1", "a=%ED%A0%80", "a=%F8%88%80%80%80"])
    func invalidUTF8MakesTheWholeQueryNil(query: String) {
        #expect(PercentDecoding.queryItems(query) == nil)
    }

    @Test func decodeTreatsPlusAsSpaceOnlyWhenAsked() {
        #expect(PercentDecoding.decode("a+b") == "a+b")
        #expect(PercentDecoding.decode("a+b", plusIsSpace: true) == "a b")
        #expect(PercentDecoding.decode("%41%62c") == "Abc")
        #expect(PercentDecoding.decode("%e2%82%ac") == "€")
        #expect(PercentDecoding.decode("") == "")
    }
}
