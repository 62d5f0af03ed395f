-- Hold lookups by (event_id, id) must use the primary key whatever the statistics say.
--
-- The seat-change trigger looks up each held seat's hold by that key. PL/pgSQL plans the lookup
-- once per session from the statistics of that moment, and when `holds` had been analyzed while
-- (nearly) empty, as on a fresh database before its first sale, every plan looked equally cheap:
-- the trigger scanned the table, or walked the token index over every hold of the event, for
-- each held seat, and kept doing so as the sale filled the table (10,000 holds after a `VACUUM
-- ANALYZE` of an empty `holds`: 18,000 scans reading 84 million rows, 540-1,900 holds/s instead
-- of 7,500, until autovacuum analyzed the table again). So the token index leads with the token
-- (its lookups name both columns, so it serves them as well), which leaves the primary key the
-- one index for an event's holds by id, and the trigger functions do not scan tables.
ALTER TABLE holds DROP CONSTRAINT holds_token_unique;
ALTER TABLE holds ADD CONSTRAINT holds_token_unique UNIQUE (token_hash, event_id);
ALTER FUNCTION quorix_announce_seat_changes() SET enable_seqscan = off;
ALTER FUNCTION quorix_announce_waitlist_offer() SET enable_seqscan = off;
