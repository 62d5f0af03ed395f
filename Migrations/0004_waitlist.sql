-- The waitlist: entries wait in FIFO order; when seats become free, the oldest entry they can
-- satisfy gets an offer, an ordinary hold, in the same transaction that freed them.

-- An offer's token is shown to the entry's owner (GET /v1/waitlist/{id}), so it is kept with
-- the entry while the offer stands; the hold itself stores only its hash, like every hold.
ALTER TABLE waitlist_entries ADD COLUMN offer_token text;
-- GET /v1/waitlist/{id} knows only the entry's id.
CREATE UNIQUE INDEX waitlist_entries_id ON waitlist_entries (id);
-- An offer hold leads back to its entry (confirm converts it, expiry expires it).
CREATE INDEX holds_by_waitlist_entry ON holds (event_id, waitlist_entry_id) WHERE waitlist_entry_id IS NOT NULL;

-- Offers free seats of the event to its waiting entries, oldest first: each entry that the free
-- seats can satisfy (quantity, category, section; front rows first) gets a hold of the event's
-- waitlist_offer_ttl_seconds; an entry they cannot satisfy is skipped, not blocking the others.
-- Called by every transaction that frees seats, after freeing them: the seats go from their old
-- state to the offer without ever being free to anyone else. Entries and seats another
-- transaction has locked are skipped (it is promoting them). Returns the offers made.
CREATE FUNCTION quorix_promote_waitlist(p_event bigint)
RETURNS TABLE (entry_id bigint, offer_hold_id bigint, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    entry record;
    chosen bigint[];
    offer_ttl integer;
    secret text;
    new_hold bigint;
    new_expiry timestamptz;
BEGIN
    FOR entry IN
        SELECT w.id, w.customer, w.api_key_id, w.quantity, w.category, w.section_key
        FROM waitlist_entries w
        WHERE w.event_id = p_event AND w.status = 'waiting'
        ORDER BY w.id
        FOR UPDATE SKIP LOCKED
    LOOP
        IF offer_ttl IS NULL THEN
            SELECT ev.waitlist_offer_ttl_seconds INTO offer_ttl FROM events ev WHERE ev.id = p_event;
        END IF;
        SELECT array_agg(s.seat_id ORDER BY s.row_rank, s.row_id, s.ordinal) INTO chosen FROM (
            SELECT es.seat_id, es.row_rank, es.row_id, es.ordinal FROM event_seats es
            WHERE es.event_id = p_event AND es.status = 'free'
              AND (entry.category IS NULL OR es.category = entry.category)
              AND (entry.section_key IS NULL OR es.section_id = (
                    SELECT sec.id FROM sections sec JOIN events ev ON ev.seatmap_id = sec.seatmap_id
                    WHERE ev.id = p_event AND sec.key = entry.section_key))
            ORDER BY es.row_rank, es.row_id, es.ordinal
            LIMIT entry.quantity
            FOR UPDATE OF es SKIP LOCKED
        ) s;
        CONTINUE WHEN coalesce(array_length(chosen, 1), 0) < entry.quantity;
        -- qh_<event>_<32 random bytes, base64url>, as HoldToken makes them (gen_random_uuid
        -- draws from the operating system's strong random source).
        secret := 'qh_' || p_event || '_' || rtrim(translate(encode(
            decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'), '+/', '-_'), '=');
        new_expiry := now() + offer_ttl * interval '1 second';
        INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at, waitlist_entry_id)
        VALUES (p_event, sha256(convert_to(secret, 'UTF8')), entry.customer, entry.api_key_id, chosen, new_expiry,
                now() + 3 * offer_ttl * interval '1 second', entry.id)
        RETURNING id INTO new_hold;
        UPDATE event_seats es SET status = 'held', hold_id = new_hold, version = nextval('seat_change_version')
        WHERE es.event_id = p_event AND es.seat_id = ANY(chosen);
        UPDATE waitlist_entries w SET status = 'offered', offer_hold_id = new_hold, offer_token = secret, updated_at = now()
        WHERE w.event_id = p_event AND w.id = entry.id;
        entry_id := entry.id;
        offer_hold_id := new_hold;
        expires_at := new_expiry;
        RETURN NEXT;
    END LOOP;
END
$$;
