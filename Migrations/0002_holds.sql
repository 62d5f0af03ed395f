-- Holds and bookings.

-- Aborts the statement that calls it (and so, in autocommit, everything the statement wrote)
-- unless `ok`. Lets one statement take seats all or nothing: the hold's INSERT and UPDATE run in
-- data-modifying CTEs, and the final SELECT calls this with "did every seat change?".
-- SQLSTATE QX409 tells the server the refusal from any other error.
CREATE FUNCTION quorix_require(ok boolean, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION USING ERRCODE = 'QX409', MESSAGE = reason;
    END IF;
    RETURN true;
END
$$;

-- GET /v1/bookings/{id} knows only the booking's id.
CREATE UNIQUE INDEX bookings_id ON bookings (id);
-- A client's customer history, newest first.
DROP INDEX bookings_by_customer;
CREATE INDEX bookings_by_customer ON bookings (api_key_id, customer, id DESC);
