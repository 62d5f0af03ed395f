#!/usr/bin/env python3
"""Holds and bookings benchmark: throughput against pgbench, flash crowds, map size.

  Benchmarks/holds.py [--runs 3] [--connections 64] [--crowds 2000,10000]

On one embedded PostgreSQL, with the server's pool at its default of 8 connections:
0. The load generator's own ceiling: quorix-load against `GET /livez`, beside wrk on the same
   route, so a hold rate far below it is the server's and the database's, not the generator's.
1. Throughput: distinct 2-seat explicit holds by --connections keep-alive clients on a fresh
   stadium event (30,000 holds, every seat once), then hold + confirm (10,000); against pgbench
   running the very same statements directly on the same PostgreSQL at the pool's connection
   count (8), also on fresh stadium events; and pgbench's holds once more with the seat-change
   announcement trigger disabled, to show what announcing costs. The server puts holds that
   wait at the same time into one statement (HoldBatcher), so pgbench also runs that batched
   statement with as many holds as the server put in one on average, at 8 clients and at the
   server's 2 hold statements at once. pgbench takes its pairs in a pseudo-random order over the
   whole map (`permute`), as the HTTP run's shuffled pairs are: the batched statement ran 20 %
   faster on consecutive pairs, which share pages. The CPU each part used (PostgreSQL, the
   server, the client) is read from /proc around the runs. Medians of --runs.
2. Flash crowds: for each size in --crowds, that many clients connected first, then released at
   once on a theatre event whose only free seats are 10 pairs (2 adjacent seats in each of 10
   rows); each asks for 2 seats, half by label, half by best available. Every answer is counted;
   exactly 10 must win; SQL then checks no seat is in two holds. Database work per request from
   the server's statement counter and pg_stat_database's transactions, less the seat listener's
   own statements (its 10 ms pauses; the server counts them apart).
3. Map size: explicit and best-available 2-seat holds on the theatre (1,339 seats) against the
   stadium (60,000), 64 clients, the same number of holds on each.
Loopback only; every step is bounded in count and time. Prints Markdown tables.
"""
import argparse, json, os, random, re, statistics, subprocess, time

from common import ROOT, CPUTimes, Server, machine, prepare, progress, sh, wrk

PORT = 18320
ADMIN = "bench-admin-key-0123456789abcdef"
POOL = 8
HOLD_STATEMENTS = 2  # the server's default for a pool of 8 (QUORIX_HOLD_STATEMENTS)
med = statistics.median

# The hold statement exactly as HoldStore.holdAlone sends it (a hold with no other waiting), with pgbench variables for the binds
# (the time format too: pgbench would read its ":MI" as a variable).
HOLD_SQL = """WITH hold AS (
    INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at)
    VALUES (:event, sha256(random()::text::bytea), 'bench-' || :client_id, NULL::uuid, ARRAY[:a, :b]::bigint[],
            now() + 600 * interval '1 second', now() + 1800 * interval '1 second')
    RETURNING id, created_at, expires_at, token_hash
), taken AS (
    UPDATE event_seats es
    SET status = 'held', hold_id = (SELECT id FROM hold), version = nextval('seat_change_version')
    WHERE es.event_id = :event AND es.seat_id = ANY(ARRAY[:a, :b]::bigint[]) AND (es.status = 'free' OR (es.status = 'held' AND EXISTS (
        SELECT 1 FROM holds dead WHERE dead.event_id = es.event_id AND dead.id = es.hold_id AND dead.expires_at <= now())))
    RETURNING es.seat_id
), relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
)
SELECT id, encode(token_hash, 'hex') AS token_hex,
       to_char(created_at AT TIME ZONE 'UTC', :fmt) AS created_at, to_char(expires_at AT TIME ZONE 'UTC', :fmt) AS expires_at
FROM hold, relaxed
WHERE quorix_require((SELECT count(*) FROM taken) = 2,
    CASE WHEN (SELECT count(*) FROM taken) = 2 THEN '' ELSE
    'seats_unavailable:' || (SELECT coalesce(string_agg(wanted::text, ','), '') FROM unnest(ARRAY[:a, :b]::bigint[]) wanted
                             WHERE wanted NOT IN (SELECT seat_id FROM taken)) END)"""


# The statement HoldStore.holdTogether sends for holds queued together (HoldBatcher), with
# `{k}` holds of 2 seats each; the arrays it binds are built here from pgbench variables.
BATCH_SQL = """WITH wanted AS MATERIALIZED (
    SELECT w.n, w.event_id, w.seat_id, w.ord
    FROM unnest((SELECT array_agg(g / 2 + 1) FROM generate_series(0, {s1}) g)::int[],
                (SELECT array_agg(:event::bigint) FROM generate_series(0, {s1}) g)::bigint[],
                ARRAY[{seats}]::bigint[])
        WITH ORDINALITY AS w(n, event_id, seat_id, ord)
), available AS MATERIALIZED (
    SELECT es.event_id, es.seat_id FROM wanted w
    JOIN event_seats es ON es.event_id = w.event_id AND es.seat_id = w.seat_id
    WHERE (es.status = 'free' OR (es.status = 'held' AND EXISTS (
            SELECT 1 FROM holds dead WHERE dead.event_id = es.event_id AND dead.id = es.hold_id AND dead.expires_at <= now())
            AND NOT EXISTS (SELECT 1 FROM waitlist_entries w WHERE w.event_id = es.event_id AND w.status = 'waiting')))
    ORDER BY es.event_id, es.seat_id
    FOR UPDATE OF es
), winner AS MATERIALIZED (
    SELECT w.n, array_agg(w.seat_id ORDER BY w.ord) AS seat_ids FROM wanted w
    GROUP BY w.n HAVING bool_and((w.event_id, w.seat_id) IN (SELECT event_id, seat_id FROM available))
), request AS MATERIALIZED (
    SELECT * FROM unnest((SELECT array_agg(:event::bigint) FROM generate_series(1, {k}))::bigint[],
                         (SELECT array_agg(sha256(random()::text::bytea)) FROM generate_series(1, {k}))::bytea[],
                         (SELECT array_agg('bench-' || :client_id) FROM generate_series(1, {k}))::text[],
                         (SELECT array_agg(''::text) FROM generate_series(1, {k}))::text[],
                         (SELECT array_agg(600) FROM generate_series(1, {k}))::int[],
                         (SELECT array_agg(1800) FROM generate_series(1, {k}))::int[])
        WITH ORDINALITY AS r(event_id, token_hash, customer, api_key_id, ttl, lifetime, n)
), hold AS (
    INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at)
    SELECT r.event_id, r.token_hash, r.customer, nullif(r.api_key_id, '')::uuid, winner.seat_ids,
           now() + r.ttl * interval '1 second', now() + r.lifetime * interval '1 second'
    FROM request r JOIN winner ON winner.n = r.n
    RETURNING id, event_id, token_hash, seat_ids, created_at, expires_at
), taken AS (
    UPDATE event_seats es SET status = 'held', hold_id = hold.id, version = nextval('seat_change_version')
    FROM hold CROSS JOIN LATERAL unnest(hold.seat_ids) AS held(seat_id)
    WHERE es.event_id = hold.event_id AND es.seat_id = held.seat_id
    RETURNING es.seat_id
), relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
)
SELECT r.n, hold.id, to_char(hold.created_at AT TIME ZONE 'UTC', :fmt) AS created_at,
       to_char(hold.expires_at AT TIME ZONE 'UTC', :fmt) AS expires_at,
       CASE WHEN hold.id IS NULL THEN (SELECT string_agg(w.seat_id::text, ',' ORDER BY w.ord) FROM wanted w
            WHERE w.n = r.n AND (w.event_id, w.seat_id) NOT IN (SELECT event_id, seat_id FROM available)) END AS refused
FROM request r LEFT JOIN hold ON hold.token_hash = r.token_hash, relaxed
WHERE quorix_require((SELECT count(*) FROM taken) = (SELECT coalesce(sum(cardinality(seat_ids)), 0) FROM hold),
                     'held seats changed under the statement')
ORDER BY r.n"""


def batch_script(path, holds_per_statement):
    """Client c's n-th statement takes `holds_per_statement` pairs: hold j of the run (j = k * (c * per_client + n) + i)
    takes pair permute(j, pairs), pgbench's pseudo-random permutation, so the pairs of one statement lie all over the map
    as the HTTP run's shuffled pairs do (neighbouring seats in one statement share pages and run faster)."""
    k = holds_per_statement
    picks = []
    for i in range(k):
        picks += [f"\\set p{i} :first + 2 * permute({k} * (:client_id * :per_client + :n) + {i}, :pairs, 1)", f"\\set q{i} :p{i} + 1"]
    seats = ", ".join(f":p{i}, :q{i}" for i in range(k))
    with open(path, "w") as script:
        script.write("\n".join(["\\set n :n + 1"] + picks + [BATCH_SQL.format(k=k, s1=2 * k - 1, seats=seats).replace("\n", " ")]) + "\n")


def pgbench_script(path, with_confirm):
    """Client c's n-th hold takes pair permute(c * per_client + n, pairs): seats all over the map, as in the HTTP run."""
    lines = [
        "\\set n :n + 1",
        "\\set a :first + 2 * permute(:client_id * :per_client + :n, :pairs, 1)",
        "\\set b :a + 1",
        HOLD_SQL.replace("\n", " ") + " \\gset",
    ]
    if with_confirm:
        lines += [open(os.path.join(ROOT, "Benchmarks", "confirm.sql")).read().strip()]
    with open(path, "w") as script:
        script.write("\n".join(lines) + "\n")


def latency_percentiles(log_prefix):
    """p50 and p99 in ms from pgbench's per-transaction logs (microseconds in the third column)."""
    values = []
    directory, prefix = os.path.split(log_prefix)
    for name in os.listdir(directory):
        if name.startswith(prefix):
            with open(os.path.join(directory, name)) as log:
                values += [int(line.split()[2]) for line in log if line.strip()]
            os.remove(os.path.join(directory, name))
    values.sort()
    pick = lambda f: values[min(len(values) - 1, int(len(values) * f))] / 1000 if values else 0
    return pick(0.5), pick(0.99)


def pgbench(server, script, clients, transactions_per_client, first_seat, pairs, event_id, log_prefix):
    # The server's session settings (QuorixApp.sessionSetup), so both run the same plans.
    output = sh(f"cd {server.work} && PGOPTIONS='-c plan_cache_mode=force_generic_plan' pgbench -n -M prepared -c {clients} -j 2 -t {transactions_per_client} "
                f"-D n=-1 -D first={first_seat} -D pairs={pairs} -D per_client={transactions_per_client} -D event={event_id} "
                f"-D 'fmt=YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"' "
                f"-l --log-prefix={os.path.basename(log_prefix)} -f {script} \"{server.conninfo}\"")
    rate = float(re.search(r"tps = ([\d.]+)", output).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", output)
    p50, p99 = latency_percentiles(log_prefix)
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99, "failed": int(failed.group(1)) if failed else 0}


def load(generator, server, mode, connections, lines, key, confirm=False, seconds=120):
    """Runs quorix-load over `lines` (METHOD, PATH, BODY) and returns its JSON summary."""
    path = os.path.join(server.work, f"requests-{mode}.tsv")
    with open(path, "w") as requests:
        for method, target, body in lines:
            requests.write(f"{method}\t{target}\t{json.dumps(body) if body is not None else ''}\n")
    command = [generator, mode, "--port", str(server.port), "--connections", str(connections), "--requests", path,
               "--seconds", str(seconds)] + (["--header", f"Authorization: Bearer {key}"] if key else []) + (["--confirm"] if confirm else [])
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE, timeout=seconds + 120)
    if result.returncode != 0:
        raise SystemExit(f"quorix-load failed ({result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


class Bench:
    def __init__(self, server, generator, organizer, client):
        self.server, self.generator, self.organizer, self.client = server, generator, organizer, client
        self.maps = {}

    def import_map(self, binary, name):
        output = sh(f"{binary} import --database-url \"{self.server.conninfo}\" {os.path.join(ROOT, 'SeatMaps', name + '.json')}", cwd=ROOT)
        seatmap_id = json.loads(output.strip().splitlines()[-1])["id"]
        categories = json.loads(self.server.sql(f"SELECT json_agg(DISTINCT category) FROM seats WHERE seatmap_id = {seatmap_id}"))
        seats = [line.split("|") for line in self.server.sql(f"SELECT id, label FROM seats WHERE seatmap_id = {seatmap_id} ORDER BY id").splitlines()]
        self.maps[name] = {"id": seatmap_id, "prices": {c: 1500 for c in categories}, "seats": [(int(i), l) for i, l in seats]}

    def event(self, name):
        _, _, body = self.server.request("POST", "/v1/events", {
            "name": f"{name} bench", "seatmap_id": self.maps[name]["id"], "starts_at": "2027-01-01T20:00:00Z",
            "prices": self.maps[name]["prices"], "max_seats_per_hold": 10}, self.organizer)
        return json.loads(body)["id"]

    def pairs(self, name):
        seats = self.maps[name]["seats"]
        return [(seats[i][1], seats[i + 1][1]) for i in range(0, len(seats) - 1, 2)]

    def explicit_lines(self, events, name, count):
        """`count` distinct pairs, spread round-robin over `events` of map `name`, in random order
        (customers pick seats all over the map; both maps get the same pattern)."""
        pairs = self.pairs(name)
        lines = []
        for k in range(count):
            event = events[k % len(events)]
            a, b = pairs[k // len(events)]
            lines.append(("POST", f"/v1/events/{event}/holds", {"customer": f"c{k}", "seats": [a, b]}))
        random.Random(count).shuffle(lines)
        return lines

    def best_lines(self, events, count):
        return [("POST", f"/v1/events/{events[k % len(events)]}/holds",
                 {"customer": f"c{k}", "best_available": {"quantity": 2}}) for k in range(count)]

    def statements(self):
        _, _, body = self.server.request("GET", "/metrics")
        match = re.search(rb"^quorix_db_statements_total (\d+)", body, re.M)
        return int(match.group(1)) if match else 0

    def hold_statements(self):
        """(statements that took holds, holds in them) since the start."""
        _, _, body = self.server.request("GET", "/metrics")
        counts = [re.search(rb"^" + name + rb" (\d+)", body, re.M) for name in (b"quorix_hold_statements_total", b"quorix_hold_statement_holds_total")]
        return tuple(int(m.group(1)) if m else 0 for m in counts)

    def listener_statements(self):
        _, _, body = self.server.request("GET", "/metrics")
        match = re.search(rb"^quorix_seat_listener_statements_total (\d+)", body, re.M)
        return int(match.group(1)) if match else 0

    def transactions(self):
        return int(self.server.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"))

    def check_invariants(self, event_id, total_seats):
        seats = self.server.sql(f"""
            SELECT count(*) FILTER (WHERE status = 'free') || ',' || count(*) FILTER (WHERE status = 'held') || ',' ||
                   count(*) FILTER (WHERE status = 'booked') || ',' || count(*) FILTER (WHERE status = 'blocked') || ',' || count(*)
            FROM event_seats WHERE event_id = {event_id}""")
        free, held, booked, blocked, rows = (int(x) for x in seats.split(","))
        doubled = int(self.server.sql(f"""
            SELECT count(*) FROM (SELECT s FROM holds, unnest(seat_ids) s WHERE event_id = {event_id} AND status = 'active'
                                  GROUP BY s HAVING count(*) > 1) d"""))
        if doubled or free + held + booked + blocked != total_seats or rows != total_seats:
            raise SystemExit(f"invariant broken on event {event_id}: {doubled} seats in two holds; counts {seats}")
        return {"free": free, "held": held, "booked": booked, "blocked": blocked}


def flash_crowd(bench, server, keys, size, run, runs):
    """`size` clients released at once on a theatre event whose only free seats are 10 pairs."""
    theatre = bench.maps["theatre"]["seats"]
    event = bench.event("theatre")
    rows = {}
    for seat_id, label in theatre:
        section, row, _ = label.split("-")
        rows.setdefault((section, row), []).append(label)
    chosen = sorted(rows.items(), key=lambda item: -len(item[1]))[:10]
    # The middle two seats of each of 10 rows stay free; every other seat is blocked.
    ordered = {r: server.sql(f"SELECT string_agg(label, ',' ORDER BY ordinal) FROM seats WHERE seatmap_id = {bench.maps['theatre']['id']} "
                             f"AND label LIKE '{r[0]}-{r[1]}-%'").split(",") for r, _ in chosen}
    pairs = [(labels[len(labels) // 2 - 1], labels[len(labels) // 2]) for labels in ordered.values()]
    keep = {label for pair in pairs for label in pair}
    server.request("POST", f"/v1/events/{event}/block", {"seats": [l for _, l in theatre if l not in keep]}, keys["organizer"])
    chooser = random.Random(size * 10 + run)
    lines = []
    for k in range(size):
        if k % 2 == 0:
            lines.append(("POST", f"/v1/events/{event}/holds", {"customer": f"fan{k}", "seats": list(chooser.choice(pairs))}))
        else:
            lines.append(("POST", f"/v1/events/{event}/holds", {"customer": f"fan{k}", "best_available": {"quantity": 2}}))
    time.sleep(11)  # idle backends report their transaction counts to pg_stat_database every 10 s
    statements, transactions, listener = bench.statements(), bench.transactions(), bench.listener_statements()
    progress(f"flash crowd run {run}/{runs}: {size:,} clients on the last 20 seats of theatre event {event}")
    summary = load(bench.generator, server, "crowd", size, lines, keys["client"], seconds=60)
    time.sleep(11)
    # The seat listener's statements (its 10 ms pauses) are transactions too, not the crowd's.
    listener = bench.listener_statements() - listener
    statements, transactions = bench.statements() - statements - 1, bench.transactions() - transactions - 3 - listener
    counts = bench.check_invariants(event, len(theatre))
    request = summary["kinds"].get("request", {"statuses": {}, "p50_ms": 0, "p99_ms": 0, "max_ms": 0, "count": 0})
    winners = request["statuses"].get("201", 0)
    if winners != 10 or counts["held"] != 20 or summary["failures"]:
        raise SystemExit(f"flash crowd of {size}: {winners} winners, {counts['held']} seats held, failures {summary['failures']}")
    return {"clients": size, "answered": request["count"], "winners": winners, "statuses": request["statuses"],
            "failures": summary["failures"], "p50_ms": request["p50_ms"], "p99_ms": request["p99_ms"], "max_ms": request["max_ms"],
            "statements_per_request": statements / size, "transactions_per_request": transactions / size, "held_after": counts["held"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--crowds", default="2000,10000")
    parser.add_argument("--parts", default="throughput,crowds,sizes", help="which parts to run (a development aid)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    crowds = [int(c) for c in args.crowds.split(",") if c]

    binary = prepare("wrk postgresql-contrib", products=("quorix", "quorix-load"))
    generator = os.path.join(os.path.dirname(binary), "quorix-load")
    server = Server(binary, PORT, "holds", ADMIN, {"QUORIX_LOG_LEVEL": "warning", "QUORIX_DB_POOL_SIZE": str(POOL)})
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "runs": args.runs}
    try:
        keys = server.create_keys()
        bench = Bench(server, generator, keys["organizer"], keys["client"])
        for name in ("theatre", "stadium"):
            progress(f"importing {name}")
            bench.import_map(binary, name)

        # 0. The generator's ceiling.
        progress("generator check: quorix-load and wrk on GET /livez")
        ceiling = load(generator, server, "keepalive", args.connections, [("GET", "/livez", None)] * 300_000, None, seconds=10)
        wrk_livez = wrk(f"http://127.0.0.1:{PORT}/livez", 5, args.connections)
        results["generator"] = {"quorix_load_livez": ceiling["kinds"]["request"]["per_second"], "wrk_livez": wrk_livez["rate"]}

        # 1. Throughput against pgbench.
        stadium_seats = len(bench.maps["stadium"]["seats"])
        first_seat = bench.maps["stadium"]["seats"][0][0]
        runs = {"hold": [], "pgbench_hold": [], "pgbench_hold_unannounced": [], "pgbench_batch_pool": [], "pgbench_batch_statements": [],
                "confirm": [], "pgbench_confirm": []}
        batch_sizes = []
        for run in range(1, args.runs + 1 if "throughput" in parts else 1):
            for kind, count in (("hold", stadium_seats // 2), ("confirm", 10_000)):
                event = bench.event("stadium")
                progress(f"throughput run {run}/{args.runs}: {count:,} explicit 2-seat holds{' + confirms' if kind == 'confirm' else ''} on stadium event {event}")
                before, cpu_before = bench.hold_statements(), CPUTimes(server.process.pid)
                summary = load(generator, server, "keepalive", args.connections, bench.explicit_lines([event], "stadium", count),
                               keys["client"], confirm=kind == "confirm")
                cpu = CPUTimes(server.process.pid).since(cpu_before, count)
                after = bench.hold_statements()
                runs[kind].append(dict(summary["kinds"]["hold+confirm" if kind == "confirm" else "request"],
                                       holds_per_statement=(after[1] - before[1]) / max(1, after[0] - before[0]), cpu=cpu))
                if kind == "hold":
                    batch_sizes.append(runs[kind][-1]["holds_per_statement"])
                bench.check_invariants(event, stadium_seats)

                event = bench.event("stadium")
                progress(f"throughput run {run}/{args.runs}: pgbench, the same statements, {POOL} clients, event {event}")
                script = os.path.join(server.work, f"{kind}.sql")
                pgbench_script(script, with_confirm=kind == "confirm")
                runs["pgbench_" + kind].append(pgbench(server, script, POOL, count // POOL, first_seat, stadium_seats // 2, event, os.path.join(server.work, f"pgb-{kind}")))
                bench.check_invariants(event, stadium_seats)
                if kind == "hold":
                    # What announcing seat changes (the NOTIFY trigger, migration 0005) costs.
                    event = bench.event("stadium")
                    progress(f"throughput run {run}/{args.runs}: pgbench holds without the announcement trigger, event {event}")
                    server.sql("ALTER TABLE event_seats DISABLE TRIGGER event_seats_announce")
                    try:
                        runs["pgbench_hold_unannounced"].append(
                            pgbench(server, script, POOL, count // POOL, first_seat, stadium_seats // 2, event, os.path.join(server.work, "pgb-quiet")))
                    finally:
                        server.sql("ALTER TABLE event_seats ENABLE TRIGGER event_seats_announce")
                    # The statement the server sent, with as many holds as it put in one on average,
                    # at the pool's connection count and at the server's hold statements at once.
                    k = max(1, round(batch_sizes[-1]))
                    batch = os.path.join(server.work, f"batch-{k}.sql")
                    batch_script(batch, k)
                    for label, clients in (("pgbench_batch_pool", POOL), ("pgbench_batch_statements", HOLD_STATEMENTS)):
                        event = bench.event("stadium")
                        progress(f"throughput run {run}/{args.runs}: pgbench, the batched statement with {k} holds, {clients} clients, event {event}")
                        cpu_before = CPUTimes(server.process.pid)
                        result = pgbench(server, batch, clients, count // (k * clients), first_seat, stadium_seats // 2, event, os.path.join(server.work, "pgb-batch"))
                        cpu = CPUTimes(server.process.pid).since(cpu_before, count // (k * clients) * k * clients)
                        runs[label].append(dict(result, rate=result["rate"] * k, holds_per_statement=k, cpu=cpu))
                        bench.check_invariants(event, stadium_seats)
        results["throughput"] = {} if "throughput" not in parts else {kind: {"rate": med(r.get("per_second", r.get("rate")) for r in values),
                                        "holds_per_statement": med(r.get("holds_per_statement", 1) for r in values),
                                        "p50_ms": med(r["p50_ms"] for r in values), "p99_ms": med(r["p99_ms"] for r in values),
                                        "errors": sum(sum(n for s, n in r.get("statuses", {}).items() if s != "201") for r in values),
                                        "cpu": {part: [med(r["cpu"][part][i] for r in values) for i in (0, 1)] for part in values[0].get("cpu", {})}}
                                 for kind, values in runs.items()}

        # 2. Flash crowds on the last 20 seats.
        results["crowds"] = []
        for size in crowds if "crowds" in parts else []:
            runs_of_size = []
            for run in range(1, args.runs + 1):
                runs_of_size.append(flash_crowd(bench, server, keys, size, run, args.runs))
            pick = sorted(runs_of_size, key=lambda r: r["p99_ms"])[len(runs_of_size) // 2]
            results["crowds"].append(dict(pick, p50_ms=med(r["p50_ms"] for r in runs_of_size),
                                          p99_runs=[r["p99_ms"] for r in runs_of_size]))

        # 3. Map size: the same number of holds on the theatre and the stadium. Explicit holds go to as
        # many events as the map needs (the theatre's seats run out: 23 events, the stadium 1; holds
        # waiting together share a statement whatever their events). Best-available requests compete
        # for the best seats of their event, so both maps get the same number of events there. Runs
        # interleaved, in alternating order, from a vacuumed database, so that drift in the machine's
        # load and the previous parts' garbage fall on both maps alike. Each event's first use loads
        # its seats into the live snapshot once per process (a cost per event, not per hold): every
        # event is read once before its holds, and that first read is timed apart.
        per_run, best_per_run = 15_000, 3_000
        measured = {"theatre": {"explicit": [], "best": [], "first_read_ms": []}, "stadium": {"explicit": [], "best": [], "first_read_ms": []}}

        def warmed(name, count):
            events = [bench.event(name) for _ in range(count)]
            for event in events:
                started = time.monotonic()
                server.request("GET", f"/v1/events/{event}/seats", None, keys["client"])
                measured[name]["first_read_ms"].append((time.monotonic() - started) * 1000)
            return events

        theatre_pairs = len(bench.maps["theatre"]["seats"]) // 2
        if "sizes" in parts:
            progress("map size: VACUUM ANALYZE after the previous parts")
            server.sql("VACUUM ANALYZE holds, event_seats")
        for run in range(1, args.runs + 1 if "sizes" in parts else 1):
            for name in ("theatre", "stadium") if run % 2 else ("stadium", "theatre"):
                events = warmed(name, -(-per_run // (len(bench.maps[name]["seats"]) // 2)))
                progress(f"map size run {run}/{args.runs}: {per_run:,} explicit holds on {name} ({len(events)} events)")
                measured[name]["explicit"].append(
                    load(generator, server, "keepalive", args.connections, bench.explicit_lines(events, name, per_run), keys["client"])["kinds"]["request"])
                events = warmed(name, -(-best_per_run // theatre_pairs))
                progress(f"map size run {run}/{args.runs}: {best_per_run:,} best-available holds on {name} ({len(events)} events)")
                measured[name]["best"].append(
                    load(generator, server, "keepalive", args.connections, bench.best_lines(events, best_per_run), keys["client"])["kinds"]["request"])
        sizes = {name: {"explicit_rate": med(r["per_second"] for r in m["explicit"]), "explicit_p99_ms": med(r["p99_ms"] for r in m["explicit"]),
                        "best_rate": med(r["per_second"] for r in m["best"]), "best_p99_ms": med(r["p99_ms"] for r in m["best"]),
                        "first_read_ms": med(m["first_read_ms"])}
                 for name, m in measured.items() if m["explicit"]}
        results["map_size"] = sizes
    finally:
        server.stop()

    report(results, args)


def report(results, args):
    t = results["throughput"]
    if not t or not results["crowds"] or not results["map_size"]:
        print("\nAll:", json.dumps(results))
        return
    print(f"\nDate: {results['date']}; machine: {results['machine']}; medians of {args.runs}; {args.connections} keep-alive clients; "
          f"pool of {POOL}, {HOLD_STATEMENTS} hold statements at once; pgbench -M prepared -c {POOL} -j 2 with the server's session settings (it prepares each statement once per connection too).\n")
    g = results["generator"]
    print(f"Load generator ceiling: quorix-load {g['quorix_load_livez']:,.0f} req/s on GET /livez, wrk {g['wrk_livez']:,.0f} req/s.\n")
    print("| measurement | per second | p50 ms | p99 ms | non-201 |")
    print("|---|---:|---:|---:|---:|")
    k = t["pgbench_batch_pool"]["holds_per_statement"]
    labels = {"hold": f"quorix: 2-seat hold (HTTP; {t['hold']['holds_per_statement']:.1f} holds a statement)",
              "pgbench_hold": "pgbench: the one-hold statement", "pgbench_hold_unannounced": "pgbench: the same, without the announcement trigger",
              "pgbench_batch_pool": f"pgbench: the batched statement, {k:.0f} holds each, {POOL} clients",
              "pgbench_batch_statements": f"pgbench: the batched statement, {k:.0f} holds each, {HOLD_STATEMENTS} clients",
              "confirm": "quorix: hold + confirm (HTTP)", "pgbench_confirm": "pgbench: the same hold + confirm statements"}
    for kind, label in labels.items():
        r = t[kind]
        print(f"| {label} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors'] if 'pgbench' not in kind else ''} |")
    print(f"\n**Holds: quorix / pgbench = {t['hold']['rate'] / t['pgbench_hold']['rate']:.0%}** against the one-hold statement, "
          f"**{t['hold']['rate'] / t['pgbench_batch_pool']['rate']:.0%}** against the batched one at the pool's {POOL} clients "
          f"({t['hold']['rate'] / t['pgbench_batch_statements']['rate']:.0%} against it at {HOLD_STATEMENTS}); "
          f"**hold + confirm: {t['confirm']['rate'] / t['pgbench_confirm']['rate']:.0%}**; "
          f"announcing seat changes costs the statement {1 - t['pgbench_hold']['rate'] / t['pgbench_hold_unannounced']['rate']:.0%} of its rate.\n")
    print("| where the CPU went (from /proc) | holds/s | PostgreSQL: cores, µs a hold | server | client (quorix-load, pgbench) | µs a hold in all | holds/s if both cores were busy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("hold", "pgbench_batch_pool", "pgbench_batch_statements"):
        r, cpu = t[kind], t[kind]["cpu"]
        total = sum(us for _, us in cpu.values())
        cells = " | ".join(f"{cpu[part][0]:.2f}, {cpu[part][1]:.0f}" if cpu[part][1] >= 1 else "" for part in ("postgres", "server", "client"))
        print(f"| {labels[kind]} | {r['rate']:,.0f} | {cells} | {total:.0f} | {2e6 / total:,.0f} |")
    print()
    print("| flash crowd (median run) | answered | winners | other statuses | p50 ms | p99 ms (runs) | statements / request | transactions / request |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for c in results["crowds"]:
        others = ", ".join(f"{s}: {n:,}" for s, n in sorted(c["statuses"].items()) if s != "201")
        runs = ", ".join(f"{p:.0f}" for p in c["p99_runs"])
        print(f"| {c['clients']:,} clients, last 20 seats | {c['answered']:,} | {c['winners']} | {others} | {c['p50_ms']:.1f} | "
              f"{c['p99_ms']:.1f} ({runs}) | {c['statements_per_request']:.3f} | {c['transactions_per_request']:.3f} |")
    m = results["map_size"]
    print("\n| map | explicit holds/s | p99 ms | best-available holds/s | p99 ms | an event's first GET /seats, ms (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("theatre", "stadium"):
        r = m[name]
        print(f"| {name} | {r['explicit_rate']:,.0f} | {r['explicit_p99_ms']:.2f} | {r['best_rate']:,.0f} | {r['best_p99_ms']:.2f} | {r['first_read_ms']:.0f} |")
    print(f"\nStadium / theatre: explicit {m['stadium']['explicit_rate'] / m['theatre']['explicit_rate']:.0%}, "
          f"best available {m['stadium']['best_rate'] / m['theatre']['best_rate']:.0%}.")
    print("\nAll:", json.dumps(results))


if __name__ == "__main__":
    main()
