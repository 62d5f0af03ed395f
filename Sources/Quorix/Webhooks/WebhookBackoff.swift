/// When to try a failed delivery again: a step of 1 s after the first failure, doubling with each
/// one up to 10 minutes; the delay is drawn from the step's upper half (equal jitter: 0.5-1 s,
/// 1-2 s, ... 5-10 min), so deliveries that failed together are not all retried in one instant.
public enum WebhookBackoff {
    public static let firstMilliseconds: UInt64 = 1_000
    public static let capMilliseconds: UInt64 = 600_000

    /// The delay after the `attempts`-th failed try (from 1); `unit` is a random number in 0..<1.
    public static func delayMilliseconds(afterAttempts attempts: Int, unit: Double) -> UInt64 {
        let exponent = min(max(attempts, 1) - 1, 20)
        let full = min(firstMilliseconds << UInt64(exponent), capMilliseconds)
        let jitter = Double(full / 2) * min(max(unit, 0), 1)
        return full / 2 + UInt64(jitter)
    }
}
