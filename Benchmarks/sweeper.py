#!/usr/bin/env python3
"""Sweeper benchmark: lag under load, and release rate against one SQL statement.

  Benchmarks/sweeper.py [--holds 100000] [--window 60]

On one embedded PostgreSQL, pool of 8:
1. Lag: --holds one-seat holds on stadium events, with TTLs spread so that they all expire
   within --window seconds, while 16 other clients keep taking 2-seat holds on another stadium
   event; once every hold has expired and been released, the lag of each (its `released_at`
   minus its `expires_at`, both database time) from SQL: p50, p99, max.
2. Release rate: 50,000 active holds are made due at once (their `expires_at` moved into the
   past in one transaction) and the running server's sweeper releases them; against the limit,
   the sweeper's own statement without its batch limit run directly by psql on another 50,000
   made due the same way, inside the same transaction (so no sweeper can take them first).
Loopback only; every step bounded in count and time. Prints Markdown tables.
"""
import argparse, json, os, re, subprocess, time

from common import Server, machine, prepare, progress, sh
from holds import ADMIN, Bench, load

PORT = 18330

# The sweeper's statement (HoldSweeper.releaseBatch) for one event, without its batch limit.
RELEASE_SQL = """
WITH due AS (
    SELECT ctid, event_id, id FROM holds WHERE status = 'active' AND expires_at <= now() AND event_id = {event}
    ORDER BY expires_at FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE holds h SET status = 'expired', released_at = now() WHERE h.ctid = ANY(ARRAY(SELECT ctid FROM due))
    RETURNING h.event_id, h.id, h.seat_ids
), lapsed AS (
    UPDATE waitlist_entries w SET status = 'expired', offer_token = NULL, updated_at = now()
    FROM expired WHERE w.event_id = expired.event_id AND w.offer_hold_id = expired.id AND w.status = 'offered' RETURNING w.id
), freed AS (
    UPDATE event_seats es SET status = 'free', hold_id = NULL, version = nextval('seat_change_version')
    FROM expired WHERE es.event_id = expired.event_id AND es.seat_id = ANY(expired.seat_ids) AND es.hold_id = expired.id
    RETURNING es.event_id
)
SELECT count(*) FROM expired"""


def single_seat_lines(bench, events, count, ttl):
    seats = bench.maps["stadium"]["seats"]
    lines = []
    for k in range(count):
        event = events[k % len(events)]
        label = seats[k // len(events)][1]
        lines.append(("POST", f"/v1/events/{event}/holds", {"customer": f"s{k}", "seats": [label], "ttl_seconds": ttl(k)}))
    return lines


def wait_until(server, query, deadline_seconds, what):
    deadline = time.time() + deadline_seconds
    while time.time() < deadline:
        value = int(server.sql(query))
        if value == 0:
            return
        progress(f"{what}: {value:,} left")
        time.sleep(2)
    raise SystemExit(f"{what} did not finish within {deadline_seconds}s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holds", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=60)
    args = parser.parse_args()

    binary = prepare("postgresql-contrib", products=("quorix", "quorix-load"))
    generator = os.path.join(os.path.dirname(binary), "quorix-load")
    server = Server(binary, PORT, "sweeper", ADMIN, {"QUORIX_LOG_LEVEL": "warning", "QUORIX_DB_POOL_SIZE": "8"})
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    try:
        keys = server.create_keys()
        bench = Bench(server, generator, keys["organizer"], keys["client"])
        progress("importing the stadium")
        bench.import_map(binary, "stadium")
        stadium = len(bench.maps["stadium"]["seats"])

        def stadium_event(ttl=3600):
            _, _, body = server.request("POST", "/v1/events", {
                "name": "sweeper bench", "seatmap_id": bench.maps["stadium"]["id"], "starts_at": "2027-01-01T20:00:00Z",
                "prices": bench.maps["stadium"]["prices"], "hold_ttl_seconds": ttl}, keys["organizer"])
            return json.loads(body)["id"]

        # 1. Lag under load.
        events = [stadium_event() for _ in range(-(-args.holds // stadium))]
        background = stadium_event()
        started = time.time()
        # Made at a few thousand a second, so a TTL that shrinks with the hold's place in line
        # puts every expiry inside the window: expiry ≈ start + window/2 + spread.
        rate_guess = 3_000
        ttl = lambda k: max(1, int(args.window / 2 + (k % args.window) - k / rate_guess))
        progress(f"lag: {args.holds:,} one-seat holds on {len(events)} stadium events, expiring within about {args.window}s")
        made = load(generator, server, "keepalive", 64, single_seat_lines(bench, events, args.holds, ttl), keys["client"], seconds=120)
        made_count = made["kinds"]["request"]["statuses"].get("201", 0)
        progress(f"lag: {made_count:,} holds made in {time.time() - started:.0f}s; 16 clients keep holding while they expire")
        keep = load(generator, server, "keepalive", 16, bench.explicit_lines([background], "stadium", stadium // 2), keys["client"],
                    seconds=max(5, int(args.window * 1.5 - (time.time() - started))))
        event_list = ",".join(str(e) for e in events)
        wait_until(server, f"SELECT count(*) FROM holds WHERE event_id IN ({event_list}) AND status = 'active'", 180, "lag: waiting for the last releases")
        row = server.sql(f"""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) || ',' || percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) || ',' ||
                   max(lag) || ',' || count(*) || ',' || extract(epoch FROM max(expires_at) - min(expires_at))
            FROM (SELECT extract(epoch FROM released_at - expires_at) AS lag, expires_at FROM holds
                  WHERE event_id IN ({event_list}) AND status = 'expired') l""")
        p50, p99, worst, count, spread = (float(x) for x in row.split(","))
        results["lag"] = {"holds": int(count), "expiry_spread_s": spread, "p50_s": p50, "p99_s": p99, "max_s": worst,
                          "background_holds_per_s": keep["kinds"]["request"]["per_second"]}

        # 2. Release rate: the sweeper against its own statement run directly.
        release_count = min(50_000, stadium)
        sweeper_event, direct_event = stadium_event(), stadium_event()
        for event in (sweeper_event, direct_event):
            progress(f"release rate: {release_count:,} active holds on event {event}")
            load(generator, server, "keepalive", 64, single_seat_lines(bench, [event], release_count, lambda k: 3600), keys["client"], seconds=120)
        progress("release rate: making the sweeper's holds due at once")
        server.sql(f"UPDATE holds SET expires_at = now() - interval '1 second' WHERE event_id = {sweeper_event} AND status = 'active'")
        made_due = time.time()
        wait_until(server, f"SELECT count(*) FROM holds WHERE event_id = {sweeper_event} AND status = 'active'", 300, "release rate: sweeper")
        # released_at is each batch's transaction start: the span from the first to the last batch
        # start covers all batches but the last, so it is scaled up by one batch.
        batches = -(-release_count // 500)
        first_to_last = float(server.sql(f"SELECT extract(epoch FROM max(released_at) - min(released_at)) FROM holds WHERE event_id = {sweeper_event}"))
        span = first_to_last * batches / max(1, batches - 1)
        wall = time.time() - made_due
        progress("release rate: the same release as one statement, by psql")
        script = os.path.join(server.work, "direct-release.sql")
        with open(script, "w") as f:
            f.write("\\timing on\nBEGIN;\n")
            f.write(f"UPDATE holds SET expires_at = now() - interval '1 second' WHERE event_id = {direct_event} AND status = 'active';\n")
            f.write(RELEASE_SQL.format(event=direct_event).strip() + ";\nCOMMIT;\n")
        output = sh(f"{server.psql} -f {script}")
        timings = [float(t) for t in re.findall(r"Time: ([\d.]+) ms", output)]
        direct_seconds = timings[2] / 1000 if len(timings) >= 3 else float("nan")
        results["release"] = {"holds": release_count, "sweeper_span_s": span, "sweeper_wall_s": wall,
                              "sweeper_per_s": release_count / span if span > 0 else float("nan"),
                              "direct_s": direct_seconds, "direct_per_s": release_count / direct_seconds}
    finally:
        server.stop()

    lag, release = results["lag"], results["release"]
    print(f"\nDate: {results['date']}; machine: {results['machine']}; pool of 8.\n")
    print("| sweeper lag | holds | expiries spread over s | p50 ms | p99 ms | max ms | background holds/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| under load | {lag['holds']:,} | {lag['expiry_spread_s']:.0f} | {lag['p50_s'] * 1000:.0f} | {lag['p99_s'] * 1000:.0f} | "
          f"{lag['max_s'] * 1000:.0f} | {lag['background_holds_per_s']:,.0f} |")
    print("\n| release of 50,000 due holds | seconds | releases/s |")
    print("|---|---:|---:|")
    print(f"| sweeper (batches of 500, first batch to last) | {release['sweeper_span_s']:.2f} | {release['sweeper_per_s']:,.0f} |")
    print(f"| one statement, directly (the limit) | {release['direct_s']:.2f} | {release['direct_per_s']:,.0f} |")
    print(f"\n**Sweeper / one statement: {release['sweeper_per_s'] / release['direct_per_s']:.0%}**")
    print("\nAll:", json.dumps(results))


if __name__ == "__main__":
    main()
