#!/usr/bin/env python3
"""Live seat status benchmark: stream fan-out, and GET /seats from the snapshot against the database.

  Benchmarks/live.py [--runs 3] [--clients 1000] [--changes 200]

On one embedded PostgreSQL:
1. Fan-out: --clients SSE clients on one theatre event (each opens with `last_event_id` at the
   event's version, so none needs the whole status), then --changes single-seat holds, one
   every 20 ms, through the same server. For each change: the time from sending its hold to the
   moment the last client received it (the commit is inside that span, so this bounds the
   commit-to-last-client time from above). One thread reads every client with epoll, so its
   own reading is inside the figure too. p50/p99/max over the changes, medians of --runs.
2. GET /seats on the 60,000-seat stadium: the snapshot (this server) against the database path
   it replaced (a second process on the same database with QUORIX_LIVE_SEATS=off), wrk with 64
   connections for 5 s each, runs interleaved; once answering 304 (If-None-Match), once with
   the full body while 50 holds/s keep changing the event (so bodies are re-rendered).
Loopback only; every step is bounded in count and time. Prints Markdown tables.
"""
import argparse, json, os, select, socket, statistics, threading, time

from common import ROOT, Server, machine, prepare, progress, sh, wrk

PORT = 18330
ADMIN = "bench-admin-key-0123456789abcdef"
med = statistics.median


def import_map(server, binary, name):
    output = sh(f"{binary} import --database-url \"{server.conninfo}\" {os.path.join(ROOT, 'SeatMaps', name + '.json')}", cwd=ROOT)
    seatmap_id = json.loads(output.strip().splitlines()[-1])["id"]
    categories = json.loads(server.sql(f"SELECT json_agg(DISTINCT category) FROM seats WHERE seatmap_id = {seatmap_id}"))
    labels = server.sql(f"SELECT string_agg(label, ',' ORDER BY id) FROM seats WHERE seatmap_id = {seatmap_id}").split(",")
    return seatmap_id, {c: 1500 for c in categories}, labels


def new_event(server, organizer, seatmap_id, prices, name):
    _, _, body = server.request("POST", "/v1/events", {
        "name": name, "seatmap_id": seatmap_id, "starts_at": "2027-01-01T20:00:00Z", "prices": prices}, organizer)
    return json.loads(body)["id"]


def seats_version(server, event):
    _, _, body = server.request("GET", f"/v1/events/{event}/seats?status=held")
    return json.loads(body)["version"]


def open_streams(port, event, version, count):
    clients = []
    request = (f"GET /v1/events/{event}/stream?last_event_id={version} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
    for k in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(request)
        clients.append(client)
        if k % 250 == 249:
            progress(f"  {k + 1} stream clients connected")
    for client in clients:
        client.setblocking(False)
    return clients


def fan_out(server, keys, theatre, clients_count, changes, run, runs):
    seatmap_id, prices, labels = theatre
    event = new_event(server, keys["organizer"], seatmap_id, prices, f"fan-out {run}")
    version = seats_version(server, event)
    progress(f"fan-out run {run}/{runs}: {clients_count} stream clients on theatre event {event}")
    clients = open_streams(server.port, event, version, clients_count)
    poller = select.epoll()
    for index, client in enumerate(clients):
        poller.register(client.fileno(), select.EPOLLIN)
    by_fd = {client.fileno(): index for index, client in enumerate(clients)}
    wanted = [f'"seat":"{label}"'.encode() for label in labels[:changes]]
    seen = [[None] * changes for _ in clients]       # seen[client][change] = arrival time
    pending = [b""] * len(clients)
    next_change = [0] * len(clients)                  # changes arrive in order: search from there
    sent = [None] * changes
    stop = threading.Event()

    def read():
        while not stop.is_set():
            for fd, _ in poller.poll(0.05):
                index = by_fd[fd]
                try:
                    data = clients[index].recv(65536)
                except BlockingIOError:
                    continue
                now = time.perf_counter()
                buffer = pending[index] + data
                while next_change[index] < changes and wanted[next_change[index]] in buffer:
                    seen[index][next_change[index]] = now
                    next_change[index] += 1
                pending[index] = buffer[-200:]

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(1)  # every client subscribed
    for k in range(changes):
        sent[k] = time.perf_counter()
        status, _, _ = server.request("POST", f"/v1/events/{event}/holds", {"customer": f"f{k}", "seats": [labels[k]]}, keys["client"])
        if status != 201:
            raise SystemExit(f"hold {k} answered {status}")
        time.sleep(0.02)
    deadline = time.time() + 10
    while time.time() < deadline and min(next_change) < changes:
        time.sleep(0.05)
    stop.set()
    reader.join()
    for client in clients:
        client.close()
    missing = sum(changes - n for n in next_change)
    if missing:
        raise SystemExit(f"fan-out: {missing} (client, change) pairs never arrived")
    lags = sorted(max(seen[c][k] for c in range(len(clients))) - sent[k] for k in range(changes))
    pick = lambda f: lags[min(len(lags) - 1, int(len(lags) * f))] * 1000
    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": lags[-1] * 1000}


def seat_reads(live, from_db, keys, stadium, runs):
    seatmap_id, prices, labels = stadium
    event = new_event(live, keys["organizer"], seatmap_id, prices, "seat reads")
    results = {"snapshot": {"304": [], "200": []}, "database": {"304": [], "200": []}}
    for run in range(1, runs + 1):
        for name, server in (("snapshot", live), ("database", from_db)) if run % 2 else (("database", from_db), ("snapshot", live)):
            version = seats_version(server, event)
            progress(f"GET /seats run {run}/{runs}, {name}: 304s")
            results[name]["304"].append(wrk(f"http://127.0.0.1:{server.port}/v1/events/{event}/seats", 5, 64, header=f'If-None-Match: "{version}"'))
            progress(f"GET /seats run {run}/{runs}, {name}: full bodies while 50 holds/s change the event")
            stop = threading.Event()
            offset = 2_000 * run + (1_000 if name == "database" else 0)

            def change():
                k = 0
                while not stop.is_set():
                    live.request("POST", f"/v1/events/{event}/holds", {"customer": f"r{k}", "seats": [labels[offset + k]]}, keys["client"])
                    k += 1
                    time.sleep(0.02)

            changer = threading.Thread(target=change)
            changer.start()
            results[name]["200"].append(wrk(f"http://127.0.0.1:{server.port}/v1/events/{event}/seats", 5, 64))
            stop.set()
            changer.join()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    binary = prepare("wrk", products=("quorix",))
    live = Server(binary, PORT, "live", ADMIN, extra_env={"QUORIX_LOG_LEVEL": "warning"})
    from_db = None
    try:
        keys = live.create_keys()
        theatre = import_map(live, binary, "theatre")
        stadium = import_map(live, binary, "stadium")
        fan = [fan_out(live, keys, theatre, args.clients, args.changes, run, args.runs) for run in range(1, args.runs + 1)]
        from_db = Server(binary, PORT + 1, "live-db", ADMIN, extra_env={"QUORIX_LOG_LEVEL": "warning", "QUORIX_LIVE_SEATS": "off"},
                         database=live.conninfo)
        reads = seat_reads(live, from_db, keys, stadium, args.runs)
    finally:
        if from_db:
            from_db.stop()
        live.stop()
    print(f"\n### Stream fan-out ({args.clients} clients, {args.changes} changes, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()})\n")
    print("| run | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    for run, result in enumerate(fan, 1):
        print(f"| {run} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {result['max_ms']:.1f} |")
    print(f"| median | {med(r['p50_ms'] for r in fan):.1f} | {med(r['p99_ms'] for r in fan):.1f} | {med(r['max_ms'] for r in fan):.1f} |")
    print("\n### GET /seats on the stadium: snapshot against database (wrk, 64 connections, 5 s, medians)\n")
    print("| answer | snapshot req/s | p99 ms | database req/s | p99 ms | database socket errors | ratio |\n|---|---|---|---|---|---|---|")
    for kind in ("304", "200"):
        snap, db = reads["snapshot"][kind], reads["database"][kind]
        rate_s, rate_d = med(r["rate"] for r in snap), med(r["rate"] for r in db)
        # wrk gives up on a request after 2 s: the database path's p99 is then past what it shows.
        errors = "; ".join(r["errors"] for r in db if r["errors"]) or "none"
        print(f"| {kind} | {rate_s:,.0f} | {med(r['p99_ms'] for r in snap):.1f} | {rate_d:,.0f} | {med(r['p99_ms'] for r in db):.1f} | {errors} | {rate_s / rate_d:.0f}× |")
    failed = [r for results in reads["snapshot"].values() for r in results if r["non2xx"] or r["errors"]]
    failed += [r for results in reads["database"].values() for r in results if r["non2xx"]]
    if failed:
        raise SystemExit(f"GET /seats answered errors: {failed}")


if __name__ == "__main__":
    main()
