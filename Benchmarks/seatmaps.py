#!/usr/bin/env python3
"""Seat maps and events benchmark: storing maps, creating events, serving seat status.

  Benchmarks/seatmaps.py [--runs 3] [--seconds 8] [--connections 16]

For each sample map (theatre, arena, stadium), in one run on one embedded PostgreSQL:
1. `quorix import` of the map: the store time it reports (validation excluded) and the whole
   command's wall time, against PostgreSQL `COPY` of the same seat rows from a file into a table
   shaped like `seats` (same indexes): the limit for getting those rows in.
2. `POST /v1/events` on the map (every seat's inventory row plus ANALYZE), against `COPY` of
   the same `event_seats` rows into a table shaped like `event_seats`.
3. `GET /v1/events/{id}/seats` under wrk: requests/s and p99 for the full body, and for 304
   revalidations with `If-None-Match`.
Medians of --runs. Loopback only, every step bounded. Prints a Markdown table.
"""
import argparse, json, os, re, statistics, time

from common import ROOT, Server, machine, prepare, progress, sh, wrk
PORT = 18310
ADMIN = "bench-admin-key-0123456789abcdef"
MAPS = ["theatre", "arena", "stadium"]


def timed_copy(psql, command):
    """Runs a psql \\copy and returns psql's own timing of it, in seconds (no process start-up)."""
    output = sh(f"{psql} -c '\\timing on' -c \"{command}\"")
    return float(re.findall(r"Time: ([\d.]+) ms", output)[-1]) / 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    binary = prepare("wrk")

    server = Server(binary, PORT, "seatmaps", ADMIN)
    request, psql, work, conninfo = server.request, server.psql, server.work, server.conninfo
    try:
        _, _, body = request("POST", "/v1/keys", {"role": "organizer", "name": "bench"}, ADMIN)
        organizer = json.loads(body)["key"]
        sh(f"{psql} -c 'CREATE TABLE bench_seats (LIKE seats INCLUDING ALL); CREATE TABLE bench_event_seats (LIKE event_seats INCLUDING ALL)'")

        rows = []
        for name in MAPS:
            path = os.path.join(ROOT, "SeatMaps", f"{name}.json")
            store, wall, copy_seats, create, copy_inventory = [], [], [], [], []
            seatmap_id = event_id = seat_count = None
            for run in range(1, args.runs + 1):
                progress(f"{name} run {run}/{args.runs}: quorix import")
                started = time.monotonic()
                output = sh(f"{binary} import --database-url \"{conninfo}\" {path}", cwd=ROOT)
                wall.append(time.monotonic() - started)
                result = json.loads(output.strip().splitlines()[-1])
                store.append(result["seconds"])
                seatmap_id, seat_count = result["id"], result["seat_count"]

                progress(f"{name} run {run}/{args.runs}: COPY of the same seat rows")
                csv = os.path.join(work, f"{name}-seats.csv")
                sh(f"{psql} -c \"\\copy (SELECT * FROM seats WHERE seatmap_id = {seatmap_id}) TO '{csv}' WITH (FORMAT csv)\"")
                sh(f"{psql} -c 'TRUNCATE bench_seats'")
                copy_seats.append(timed_copy(psql, f"\\copy bench_seats FROM '{csv}' WITH (FORMAT csv)"))

                progress(f"{name} run {run}/{args.runs}: POST /v1/events")
                prices = {c: 1000 for c in json.loads(sh(f"{psql} -c \"SELECT json_agg(DISTINCT category) FROM seats WHERE seatmap_id = {seatmap_id}\""))}
                started = time.monotonic()
                _, _, body = request("POST", "/v1/events", {"name": f"{name} bench", "seatmap_id": seatmap_id,
                                                            "starts_at": "2027-01-01T20:00:00Z", "prices": prices}, organizer)
                create.append(time.monotonic() - started)
                event_id = json.loads(body)["id"]

                progress(f"{name} run {run}/{args.runs}: COPY of the same inventory rows")
                csv = os.path.join(work, f"{name}-inventory.csv")
                sh(f"{psql} -c \"\\copy (SELECT * FROM event_seats WHERE event_id = {event_id}) TO '{csv}' WITH (FORMAT csv)\"")
                sh(f"{psql} -c 'TRUNCATE bench_event_seats'")
                copy_inventory.append(timed_copy(psql, f"\\copy bench_event_seats FROM '{csv}' WITH (FORMAT csv)"))

            url = f"http://127.0.0.1:{PORT}/v1/events/{event_id}/seats"
            _, headers, body = request("GET", f"/v1/events/{event_id}/seats")
            etag = headers.get("ETag") or headers.get("Etag")
            full, revalidate = [], []
            for run in range(1, args.runs + 1):
                progress(f"{name} run {run}/{args.runs}: wrk GET /seats (full body, {len(body):,} bytes)")
                run_full = wrk(url, args.seconds, args.connections)
                full.append((run_full["rate"], run_full["p99_ms"]))
                progress(f"{name} run {run}/{args.runs}: wrk GET /seats with If-None-Match (304)")
                run_304 = wrk(url, args.seconds, args.connections, f"If-None-Match: {etag}")
                revalidate.append((run_304["rate"], run_304["p99_ms"]))
            med = statistics.median
            rows.append({
                "map": name, "seats": seat_count, "body_bytes": len(body),
                "store_s": med(store), "import_wall_s": med(wall), "copy_seats_s": med(copy_seats),
                "create_event_s": med(create), "copy_inventory_s": med(copy_inventory),
                "seats_rps": med(r for r, _ in full), "seats_p99_ms": med(p for _, p in full),
                "not_modified_rps": med(r for r, _ in revalidate), "not_modified_p99_ms": med(p for _, p in revalidate),
            })

        print(f"\nDate: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; "
              f"medians of {args.runs}; wrk -t1 -c{args.connections} -d{args.seconds}s.\n")
        print("| map | seats | store (import) s | import command s | COPY seats s | store / COPY | create event s | COPY inventory s | create / COPY |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['map']} | {r['seats']:,} | {r['store_s']:.3f} | {r['import_wall_s']:.3f} | {r['copy_seats_s']:.3f} | "
                  f"{r['store_s'] / r['copy_seats_s']:.1f}x | {r['create_event_s']:.3f} | {r['copy_inventory_s']:.3f} | "
                  f"{r['create_event_s'] / r['copy_inventory_s']:.1f}x |")
        print("\n| map | body bytes | GET /seats req/s | p99 ms | 304 req/s | 304 p99 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['map']} | {r['body_bytes']:,} | {r['seats_rps']:,.0f} | {r['seats_p99_ms']:.1f} | "
                  f"{r['not_modified_rps']:,.0f} | {r['not_modified_p99_ms']:.1f} |")
        print("\nAll:", json.dumps(rows))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
