internal import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// Host names to IP addresses without blocking the loop: `uv_getaddrinfo` runs the system
/// resolver on libuv's thread pool and calls back on the loop.
///
/// A lookup is a libuv request, not a handle: it holds no handle open, but the loop does not
/// end while one is running (the system resolver's own timeout bounds it).
public enum AddressResolver {
    /// The addresses of `host` (IPv4 and IPv6, as numeric strings, in the resolver's order). An IP
    /// literal comes back as itself, without a lookup.
    @LoopActor
    public static func resolve(host: String) async throws(UVError) -> [String] {
        if isIPLiteral(host) { return [host] }
        let outcome: Result<[String], UVError> = await withCheckedContinuation { continuation in
            let pending = PendingLookup(continuation)
            let request = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
            request.pointee.data = Unmanaged.passRetained(pending).toOpaque()
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            let started = uv_getaddrinfo(EventLoop.shared.uvLoop, request, { request, status, results in
                guard let request else { return }
                let pending = Unmanaged<PendingLookup>.fromOpaque(request.pointee.data).takeRetainedValue()
                request.deallocate()
                defer { uv_freeaddrinfo(results) }
                guard status == 0 else {
                    pending.continuation.resume(returning: .failure(UVError(status)))
                    return
                }
                var addresses: [String] = []
                var entry = results
                while let current = entry {
                    if let address = current.pointee.ai_addr, let text = AddressResolver.numeric(address) {
                        if !addresses.contains(text) { addresses.append(text) }
                    }
                    entry = current.pointee.ai_next
                }
                pending.continuation.resume(returning: .success(addresses))
            }, host, nil, &hints)
            if started < 0 {
                Unmanaged<PendingLookup>.fromOpaque(request.pointee.data).release()
                request.deallocate()
                continuation.resume(returning: .failure(UVError(started)))
            }
        }
        return try outcome.get()
    }

    /// Whether `host` is a dotted-quad IPv4 or an IPv6 address (no lookup needed to connect).
    public static func isIPLiteral(_ host: String) -> Bool {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        return uv_ip4_addr(host, 0, &v4) == 0 || uv_ip6_addr(host, 0, &v6) == 0
    }

    private static func numeric(_ address: UnsafeMutablePointer<sockaddr>) -> String? {
        var name = [CChar](repeating: 0, count: 64)
        let status: Int32
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            status = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_name($0, &name, name.count) }
        case AF_INET6:
            status = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_name($0, &name, name.count) }
        default:
            return nil
        }
        guard status == 0 else { return nil }
        return String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

private final class PendingLookup {
    let continuation: CheckedContinuation<Result<[String], UVError>, Never>
    init(_ continuation: CheckedContinuation<Result<[String], UVError>, Never>) { self.continuation = continuation }
}
