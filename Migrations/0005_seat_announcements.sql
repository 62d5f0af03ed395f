-- Live seat status: every statement that changes seats announces the change on channel
-- quorix_seats, in its own transaction, so each server process (LISTEN quorix_seats) keeps its
-- in-memory snapshot of seat status current and streams the changes. PostgreSQL delivers
-- notifications only once their transaction commits, in commit order.
--
-- A payload is one event's changes: `<event_id>|<seat>,<s>,<version>[,<expires_ms>];...` with
-- <s> one of f (free), h (held), b (booked), x (blocked); <version> the seat's new version (the
-- event's version is the sum of its seats' versions, so a listener adds up the differences);
-- <expires_ms> the hold's expiry in Unix milliseconds for held seats, so that a process answers
-- "taken" from memory only while the hold stands. Payloads stay under the 8,000-byte limit by
-- carrying at most 200 seats; a bigger change is sent as several, in order.
CREATE FUNCTION quorix_announce_seat_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quorix_seats', chunk.payload) FROM (
        SELECT c.event_id || '|' || string_agg(
                   c.seat_id || ',' || CASE c.status WHEN 'free' THEN 'f' WHEN 'held' THEN 'h' WHEN 'booked' THEN 'b' ELSE 'x' END
                   || ',' || c.version || coalesce(',' || c.expires_ms, ''),
                   ';' ORDER BY c.seat_id) AS payload
        -- Only held seats look up their hold, by its key: the transition table has no
        -- statistics, and a join was free to read every hold of the table.
        FROM (SELECT n.event_id, n.seat_id, n.status, n.version,
                     CASE WHEN n.status = 'held' THEN (SELECT (extract(epoch FROM h.expires_at) * 1000)::bigint FROM holds h
                                                       WHERE h.event_id = n.event_id AND h.id = n.hold_id) END AS expires_ms,
                     (row_number() OVER (PARTITION BY n.event_id ORDER BY n.seat_id) - 1) / 200 AS part
              FROM changed_seats n) c
        GROUP BY c.event_id, c.part
        ORDER BY c.event_id, c.part
    ) chunk;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_seats_announce AFTER UPDATE ON event_seats
    REFERENCING NEW TABLE AS changed_seats
    FOR EACH STATEMENT EXECUTE FUNCTION quorix_announce_seat_changes();

-- A waitlist offer is announced on the same channel, right after the seat changes of its
-- transaction: `<event_id>|offer|<entry_id>|<expires_at, RFC 3339>`.
CREATE FUNCTION quorix_announce_waitlist_offer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quorix_seats', NEW.event_id || '|offer|' || NEW.id || '|'
        || to_char(h.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    FROM holds h WHERE h.event_id = NEW.event_id AND h.id = NEW.offer_hold_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER waitlist_entries_announce_offer AFTER UPDATE OF status ON waitlist_entries
    FOR EACH ROW WHEN (NEW.status = 'offered' AND OLD.status IS DISTINCT FROM 'offered')
    EXECUTE FUNCTION quorix_announce_waitlist_offer();
