-- Quorix data model.
--
-- Every table a booking transaction touches carries event_id, and its primary key and unique
-- indexes lead with it: all of an event's rows live together, and the schema distributes by
-- event_id (Citus) with every booking transaction on one shard. Hot tables have no foreign key to
-- the events row: each hold would otherwise take FOR KEY SHARE on that one row (a MultiXact under
-- load). Integrity on the hot path comes from the code that creates those rows in the same
-- transaction as the event, and from the unique indexes below.

-- API keys: only a SHA-256 of the key is stored; the key itself is shown once.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    role        text NOT NULL,
    key_hash    bytea NOT NULL,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'organizer', 'client')),
    CONSTRAINT api_keys_name_check CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT api_keys_key_hash_unique UNIQUE (key_hash)
);

-- Seat maps are immutable once stored; many events are sold on one.
CREATE TABLE seatmaps (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_key_id  uuid REFERENCES api_keys (id),
    name          text NOT NULL,
    -- The document as uploaded (with geometry), returned by GET /v1/seatmaps/{id}.
    document      jsonb NOT NULL,
    seat_count    integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seatmaps_name_check CHECK (name <> ''),
    CONSTRAINT seatmaps_seat_count_check CHECK (seat_count BETWEEN 1 AND 200000)
);

CREATE TABLE sections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seatmap_id  bigint NOT NULL REFERENCES seatmaps (id) ON DELETE CASCADE,
    key         text NOT NULL,
    label       text NOT NULL,
    position    integer NOT NULL,
    CONSTRAINT sections_key_unique UNIQUE (seatmap_id, key)
);

CREATE TABLE seat_rows (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    section_id  bigint NOT NULL REFERENCES sections (id) ON DELETE CASCADE,
    key         text NOT NULL,
    -- Front to back within the section (document order): best available prefers low ranks.
    rank        integer NOT NULL,
    CONSTRAINT seat_rows_key_unique UNIQUE (section_id, key)
);

CREATE TABLE seats (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seatmap_id       bigint NOT NULL REFERENCES seatmaps (id) ON DELETE CASCADE,
    section_id       bigint NOT NULL REFERENCES sections (id) ON DELETE CASCADE,
    row_id           bigint NOT NULL REFERENCES seat_rows (id) ON DELETE CASCADE,
    key              text NOT NULL,
    -- SECTION-ROW-SEAT, unique within the map.
    label            text NOT NULL,
    category         text NOT NULL,
    x                double precision NOT NULL,
    y                double precision NOT NULL,
    -- Order within the row by x: adjacency for best available.
    ordinal          integer NOT NULL,
    accessible       boolean NOT NULL DEFAULT false,
    restricted_view  boolean NOT NULL DEFAULT false,
    companion        boolean NOT NULL DEFAULT false,
    CONSTRAINT seats_label_unique UNIQUE (seatmap_id, label),
    CONSTRAINT seats_key_unique UNIQUE (row_id, key)
);

CREATE TABLE events (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seatmap_id                  bigint NOT NULL REFERENCES seatmaps (id),
    owner_key_id                uuid REFERENCES api_keys (id),
    name                        text NOT NULL,
    starts_at                   timestamptz NOT NULL,
    -- {"category key": price_cents}
    prices                      jsonb NOT NULL,
    hold_ttl_seconds            integer NOT NULL DEFAULT 600,
    max_seats_per_hold          integer NOT NULL DEFAULT 10,
    waitlist_offer_ttl_seconds  integer NOT NULL DEFAULT 900,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_name_check CHECK (name <> ''),
    CONSTRAINT events_hold_ttl_check CHECK (hold_ttl_seconds BETWEEN 1 AND 3600),
    CONSTRAINT events_max_seats_check CHECK (max_seats_per_hold BETWEEN 1 AND 100),
    CONSTRAINT events_waitlist_ttl_check CHECK (waitlist_offer_ttl_seconds BETWEEN 1 AND 86400)
);

-- Versions of seat changes: every change to an event's seats takes the next value, so a seat
-- picker can tell whether anything changed since it last looked.
CREATE SEQUENCE seat_change_version;

-- One row per seat of the map per event: the inventory that holds and bookings change.
-- Section, row and category are copied from the map so best available reads one table.
CREATE TABLE event_seats (
    event_id     bigint NOT NULL,
    seat_id      bigint NOT NULL,
    section_id   bigint NOT NULL,
    row_id       bigint NOT NULL,
    row_rank     integer NOT NULL,
    ordinal      integer NOT NULL,
    category     text NOT NULL,
    status       text NOT NULL DEFAULT 'free',
    hold_id      bigint,
    booking_id   bigint,
    version      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, seat_id),
    CONSTRAINT event_seats_status_check CHECK (status IN ('free', 'held', 'booked', 'blocked')),
    -- A held seat names its hold; a booked one its booking; a free or blocked one neither.
    CONSTRAINT event_seats_hold_check CHECK ((status = 'held') = (hold_id IS NOT NULL)),
    CONSTRAINT event_seats_booking_check CHECK ((status = 'booked') = (booking_id IS NOT NULL))
);
CREATE INDEX event_seats_free_by_row ON event_seats (event_id, row_rank, row_id, ordinal) WHERE status = 'free';
CREATE INDEX event_seats_by_version ON event_seats (event_id, version);

-- A hold: a customer's seats for a while. The token is a secret; only its SHA-256 is stored.
CREATE TABLE holds (
    event_id           bigint NOT NULL,
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    token_hash         bytea NOT NULL,
    customer           text NOT NULL,
    api_key_id         uuid,
    seat_ids           bigint[] NOT NULL,
    status             text NOT NULL DEFAULT 'active',
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    -- Extensions stop here: 3 x the event's hold TTL after creation.
    max_expires_at     timestamptz NOT NULL,
    released_at        timestamptz,
    waitlist_entry_id  bigint,
    PRIMARY KEY (event_id, id),
    CONSTRAINT holds_token_unique UNIQUE (event_id, token_hash),
    CONSTRAINT holds_status_check CHECK (status IN ('active', 'confirmed', 'released', 'expired')),
    CONSTRAINT holds_customer_check CHECK (length(customer) BETWEEN 1 AND 128),
    CONSTRAINT holds_expiry_check CHECK (expires_at <= max_expires_at)
);
-- The sweeper's queue: active holds by expiry.
CREATE INDEX holds_active_by_expiry ON holds (expires_at) WHERE status = 'active';

CREATE TABLE bookings (
    event_id         bigint NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    hold_id          bigint NOT NULL,
    customer         text NOT NULL,
    api_key_id       uuid,
    idempotency_key  text,
    total_cents      bigint NOT NULL,
    status           text NOT NULL DEFAULT 'confirmed',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, id),
    -- One booking per hold: confirming twice finds the first.
    CONSTRAINT bookings_hold_unique UNIQUE (event_id, hold_id),
    CONSTRAINT bookings_status_check CHECK (status IN ('confirmed', 'partially_cancelled', 'cancelled')),
    CONSTRAINT bookings_total_check CHECK (total_cents >= 0)
);
CREATE INDEX bookings_by_customer ON bookings (customer, created_at DESC, id DESC);

-- One row per booked seat. The partial unique index makes selling a seat twice impossible,
-- whatever the code above it does.
CREATE TABLE seat_bookings (
    event_id      bigint NOT NULL,
    booking_id    bigint NOT NULL,
    seat_id       bigint NOT NULL,
    price_cents   bigint NOT NULL,
    cancelled_at  timestamptz,
    PRIMARY KEY (event_id, booking_id, seat_id),
    CONSTRAINT seat_bookings_price_check CHECK (price_cents >= 0)
);
CREATE UNIQUE INDEX seat_bookings_one_active_per_seat ON seat_bookings (event_id, seat_id) WHERE cancelled_at IS NULL;

-- Idempotency keys of confirms, scoped to the API key that sent them.
CREATE TABLE idempotency_keys (
    api_key_id       uuid NOT NULL,
    idempotency_key  text NOT NULL,
    event_id         bigint NOT NULL,
    hold_id          bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);

CREATE TABLE waitlist_entries (
    event_id       bigint NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    customer       text NOT NULL,
    api_key_id     uuid,
    quantity       integer NOT NULL,
    category       text,
    section_key    text,
    status         text NOT NULL DEFAULT 'waiting',
    offer_hold_id  bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, id),
    CONSTRAINT waitlist_status_check CHECK (status IN ('waiting', 'offered', 'converted', 'expired', 'left')),
    CONSTRAINT waitlist_quantity_check CHECK (quantity BETWEEN 1 AND 100),
    CONSTRAINT waitlist_offer_check CHECK ((status = 'offered') <= (offer_hold_id IS NOT NULL))
);
-- FIFO among waiting entries of an event.
CREATE INDEX waitlist_waiting ON waitlist_entries (event_id, id) WHERE status = 'waiting';

CREATE TABLE webhooks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_key_id  uuid NOT NULL REFERENCES api_keys (id),
    url           text NOT NULL,
    event_types   text[] NOT NULL,
    secret        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

-- Deliveries written in the same transaction as the change they announce, then POSTed by
-- whichever server process takes them (SKIP LOCKED), retried until delivered.
CREATE TABLE webhook_outbox (
    event_id         bigint NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    webhook_id       bigint NOT NULL,
    delivery_id      uuid NOT NULL DEFAULT gen_random_uuid(),
    type             text NOT NULL,
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
