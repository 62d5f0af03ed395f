import HTTP1
import Loop

/// A client of `GET /v1/events/{id}/stream`.
@LoopActor
final class StreamSubscriber {
    let stream: ResponseStream
    /// The last frame (by the snapshot's sequence) this client has been sent.
    var sentThrough: Int

    init(stream: ResponseStream, sentThrough: Int) {
        self.stream = stream
        self.sentThrough = sentThrough
    }
}

/// Server-sent event frames of the seat stream.
enum SeatStream {
    static let heartbeat = Array(": heartbeat\n\n".utf8)

    static func frame(_ entry: ReplayHistory.Entry, index: SeatMapIndex) -> [UInt8] {
        var out: [UInt8] = []
        switch entry.content {
        case .seats(let changes):
            out.reserveCapacity(64 + changes.count * 40)
            out.append(contentsOf: "id: \(entry.version)\nevent: seats\ndata: {\"version\":\(entry.version),\"changes\":[".utf8)
            var first = true
            for change in changes {
                guard let label = index.labelsBySeatID[change.seatID] else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                // Labels are keys of A-Z a-z 0-9 _ . joined by '-': nothing to escape.
                out.append(contentsOf: "{\"seat\":\"\(label)\",\"status\":\"\(change.state.name)\"}".utf8)
            }
            out.append(contentsOf: "]}\n\n".utf8)
        case .offer(let entryID, let expiresAt):
            out.append(contentsOf: "id: \(entry.version)\nevent: waitlist_offer\ndata: {\"entry_id\":\(entryID),\"expires_at\":\"\(expiresAt)\"}\n\n".utf8)
        }
        return out
    }

    /// The whole status, as `GET .../seats` answers it, for a client too far behind to replay.
    static func snapshotFrame(version: Int64, body: [UInt8]) -> [UInt8] {
        var out = Array("id: \(version)\nevent: snapshot\ndata: ".utf8)
        out.append(contentsOf: body)
        out.append(contentsOf: "\n\n".utf8)
        return out
    }
}
