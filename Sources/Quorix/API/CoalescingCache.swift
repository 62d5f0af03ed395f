public import Loop

/// Values loaded from the database and kept for a while, with concurrent misses coalesced: when
/// sales open, 64 requests for one event must not each load it (a stadium's seat index is
/// 60,000 rows). With `keepsValues` false it only coalesces: callers that arrive while a load
/// is in flight share it, and the next caller loads afresh.
@LoopActor
public final class CoalescingCache<Key: Hashable & Sendable, Value: Sendable> {
    private struct Entry {
        let value: Value
        let loadedAtMilliseconds: UInt64
    }

    private var entries: [Key: Entry] = [:]
    private var loading: [Key: [CheckedContinuation<Result<Value?, any Error>, Never>]] = [:]
    /// nil: kept until invalidated (immutable values such as seat maps).
    private let maxAgeMilliseconds: UInt64?
    private let keepsValues: Bool
    private let now: @LoopActor () -> UInt64

    public init(
        maxAgeMilliseconds: UInt64?, keepsValues: Bool = true, now: @escaping @LoopActor () -> UInt64 = { EventLoop.shared.nowMilliseconds }
    ) {
        self.maxAgeMilliseconds = maxAgeMilliseconds
        self.keepsValues = keepsValues
        self.now = now
    }

    /// The cached value, or what `load` returns (nil values are not kept: an unknown id may be
    /// created a moment later). Callers that miss together share one `load`.
    public func value(for key: Key, load: () async throws -> Value?) async throws -> Value? {
        if let entry = entries[key], maxAgeMilliseconds.map({ now() - entry.loadedAtMilliseconds <= $0 }) ?? true {
            return entry.value
        }
        if loading[key] != nil {
            return try await withCheckedContinuation { loading[key]?.append($0) }.get()
        }
        loading[key] = []
        let outcome: Result<Value?, any Error>
        do {
            outcome = .success(try await load())
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let value?) where keepsValues: entries[key] = Entry(value: value, loadedAtMilliseconds: now())
        case .success(nil): entries.removeValue(forKey: key)  // gone since (a revoked key): nothing stale stays
        default: break
        }
        for waiter in loading.removeValue(forKey: key) ?? [] { waiter.resume(returning: outcome) }
        return try outcome.get()
    }

    /// Stores a value just read or written (a PATCH's answer), fresh from now.
    public func store(_ value: Value, for key: Key) {
        entries[key] = Entry(value: value, loadedAtMilliseconds: now())
    }

    public func invalidate(_ key: Key) {
        entries.removeValue(forKey: key)
    }
}
