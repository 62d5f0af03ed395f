-- Best available reads free seats in order from event_seats_free_by_row, a page at a time; seats
-- of holds whose time is up count as available too, found through the event's active holds by
-- expiry. Without this index that lookup would scan every expired hold of every event.
CREATE INDEX holds_active_by_event_expiry ON holds (event_id, expires_at) WHERE status = 'active';
