internal import CLibUV

/// A libuv status code with its name and message (`ECONNRESET: connection reset by peer`).
public struct UVError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    public var name: String { String(cString: uv_err_name(code)) }
    public var description: String { "\(name): \(String(cString: uv_strerror(code)))" }

    public var isEndOfFile: Bool { code == Int32(UV_EOF.rawValue) }
    public static let cancelled = UVError(Int32(UV_ECANCELED.rawValue))
    public static let addressInUse = UVError(Int32(UV_EADDRINUSE.rawValue))
}

@inline(__always)
func check(_ status: Int32) throws(UVError) {
    if status < 0 { throw UVError(status) }
}
