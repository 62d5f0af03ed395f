public import HTTP1

/// Who sent a request: the API key's id (nil for the configured admin key), role and name.
public struct Principal: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        case admin, organizer, client
    }

    public let keyID: String?
    public let role: Role
    public let name: String
}

/// A request on its way through a route: the parsed request, path parameters, the caller.
public struct RequestContext: Sendable {
    public let request: HTTPRequest
    public let parameters: [String: String]
    /// The route template (`/v1/events/{id}`), also the metrics label.
    public let route: String
    public var principal: Principal?

    public func parameter(_ name: String) -> String {
        parameters[name] ?? ""
    }

    /// The body as JSON. Bodies must be `application/json` (415 otherwise); bodies that are not
    /// JSON are 400.
    public func json() throws(APIError) -> JSONValue {
        // Checked before the Content-Type: a POST with an empty body needs none (API.md).
        guard !request.body.isEmpty else {
            throw APIError.badRequest("The request needs a JSON body.")
        }
        try requireJSONContentType()
        do {
            return try JSONParser.parse(request.body)
        } catch {
            throw APIError.invalidJSON(error.description)
        }
    }

    /// The body as a JSON object, or nil when the body is empty (a POST with no body needs no
    /// Content-Type).
    public func optionalJSONObject() throws(APIError) -> JSONObjectReader? {
        if request.body.isEmpty { return nil }
        return try JSONObjectReader(json(), path: "")
    }

    public func jsonObject() throws(APIError) -> JSONObjectReader {
        try JSONObjectReader(json(), path: "")
    }

    func requireJSONContentType() throws(APIError) {
        guard let contentType = request.headers["Content-Type"] else {
            throw APIError.unsupportedMediaType("Send the body with Content-Type: application/json.")
        }
        if HTTPHeaders.sameName(contentType, "application/json") { return }  // what nearly every client sends
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: " \t").lowercased() }
        guard parts.first == "application/json" else {
            throw APIError.unsupportedMediaType("Content-Type \(contentType) is not supported; send application/json.")
        }
        for parameter in parts.dropFirst() where parameter.hasPrefix("charset=") {
            let charset = parameter.dropFirst("charset=".count).trimmingCharacters(in: "\"")
            guard charset == "utf-8" || charset == "utf8" else {
                throw APIError.unsupportedMediaType("Only UTF-8 JSON is accepted (got charset \(charset)).")
            }
        }
    }

    /// Query parameters; a badly encoded query is 400.
    public func queryItems() throws(APIError) -> [(name: String, value: String)] {
        guard let query = request.head.query else { return [] }
        guard let items = PercentDecoding.queryItems(query) else {
            throw APIError.badRequest("The query string is not valid percent-encoded UTF-8.")
        }
        return items
    }
}

extension StringProtocol {
    /// Trims the ASCII characters of `set` (by scalars: grapheme breaking is not needed for
    /// header syntax, and cost a refused hold several percent of its CPU).
    func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, set.unicodeScalars.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.unicodeScalars.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}

/// Reads fields of a JSON object with the contract's rules: a wrong JSON type is 400, a missing
/// or out-of-rule field is a 422 problem, collected so every problem is reported at once.
public struct JSONObjectReader: Sendable {
    public let path: String
    let members: [(String, JSONValue)]
    public private(set) var problems: [ValidationProblem] = []

    public init(_ value: JSONValue, path: String) throws(APIError) {
        guard case .object(let members) = value else {
            throw APIError.badRequest("\(path.isEmpty ? "The body" : path) must be a JSON object, not \(value.typeName).")
        }
        self.members = members
        self.path = path
    }

    func fieldPath(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    public func has(_ name: String) -> Bool { members.contains { $0.0 == name } }

    public func value(_ name: String) -> JSONValue? {
        members.first { $0.0 == name }?.1
    }

    private func wrongType(_ name: String, _ expected: String, _ value: JSONValue) -> APIError {
        .badRequest("\(fieldPath(name)) must be \(expected), not \(value.typeName).")
    }

    /// nil when absent or null.
    public func string(_ name: String) throws(APIError) -> String? {
        switch value(name) {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?: throw wrongType(name, "a string", other)
        }
    }

    public func int(_ name: String) throws(APIError) -> Int? {
        switch value(name) {
        case nil, .null?: return nil
        case .number(let number)?:
            guard let integer = number.integer, let value = Int(exactly: integer) else {
                throw APIError.badRequest("\(fieldPath(name)) must be an integer, not \(number.value).")
            }
            return value
        case let other?: throw wrongType(name, "an integer", other)
        }
    }

    public func bool(_ name: String) throws(APIError) -> Bool? {
        switch value(name) {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        case let other?: throw wrongType(name, "a boolean", other)
        }
    }

    public func stringArray(_ name: String) throws(APIError) -> [String]? {
        switch value(name) {
        case nil, .null?: return nil
        case .array(let elements)?:
            var strings: [String] = []
            for (index, element) in elements.enumerated() {
                guard case .string(let text) = element else {
                    throw APIError.badRequest("\(fieldPath(name))[\(index)] must be a string, not \(element.typeName).")
                }
                strings.append(text)
            }
            return strings
        case let other?: throw wrongType(name, "an array of strings", other)
        }
    }

    public func object(_ name: String) throws(APIError) -> JSONObjectReader? {
        switch value(name) {
        case nil, .null?: return nil
        case let value?: return try JSONObjectReader(value, path: fieldPath(name))
        }
    }

    public mutating func problem(_ name: String, _ message: String) {
        problems.append(ValidationProblem(fieldPath(name), message))
    }

    /// A problem found elsewhere (a nested object, a resolved list), with its full path.
    public mutating func problem(_ problem: ValidationProblem) {
        problems.append(problem)
    }

    /// A field that must be present.
    public mutating func required<T>(_ name: String, _ read: (JSONObjectReader) throws(APIError) -> T?) throws(APIError) -> T? {
        let value = try read(self)
        if value == nil { problem(name, "is required") }
        return value
    }

    /// Unknown fields are reported, so a typo is not silently ignored.
    /// (An array: the known fields are a handful, and a set literal hashed each of them on every request.)
    public mutating func rejectUnknown(_ known: some Collection<String>) {
        for (name, _) in members where !known.contains(name) {
            problem(name, "is not a known field")
        }
    }

    public func throwIfProblems() throws(APIError) {
        if !problems.isEmpty { throw APIError.validation(problems) }
    }
}
