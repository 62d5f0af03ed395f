#!/usr/bin/env python3
"""Foundation benchmark: the HTTP layer against nginx, and PostgreSQL round trips through the
pool against pgbench, on the same machine in the same run.

  Benchmarks/foundation.py [--runs 3] [--seconds 10] [--connections 64]

1. HTTP: keep-alive requests/s and p99 of GET /livez (touches no database) under wrk, against
   nginx with one worker returning the same body.
2. PostgreSQL: requests/s of GET /healthz (one `SELECT 1` through the pool) under wrk, against
   pgbench running `SELECT 1` with the extended protocol at the pool's connection count.

Medians of --runs interleaved runs. Quorix runs as a release build with request logging at
warning (one JSON line per request is measured separately as "info logging").
Loopback only; every run is bounded by --seconds. Prints a Markdown table for BENCHMARKS.md.
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

from common import wait_http, ROOT, machine, prepare, progress, sh, wrk
QUORIX_PORT, NGINX_PORT = 18300, 18301


def pgbench(socket_dir, seconds, clients):
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write("SELECT 1;\n")
    script.close()
    os.chmod(script.name, 0o644)
    output = sh(f"pgbench -n -h {socket_dir} -p 5432 -U quorix -M extended -f {script.name} "
                f"-c {clients} -j 1 -T {seconds} quorix")
    os.unlink(script.name)
    rate = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", output).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    return {"rate": rate, "p99_ms": None, "avg_ms": latency}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    binary = prepare("wrk nginx-light")

    data_dir = os.path.join(ROOT, ".build", "bench-foundation")
    work = tempfile.mkdtemp(prefix="quorix-bench-")
    processes = []
    try:
        def start_quorix(log_level):
            log = open(os.path.join(work, f"quorix-{log_level}.log"), "w")
            env = dict(os.environ, QUORIX_DATA_DIR=data_dir, QUORIX_LOG_LEVEL=log_level,
                       QUORIX_LISTEN=f"127.0.0.1:{QUORIX_PORT}")
            env.pop("QUORIX_DATABASE_URL", None)
            process = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            processes.append(process)
            wait_http(f"http://127.0.0.1:{QUORIX_PORT}/healthz")
            return process, log.name

        def stop(process):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

        progress("starting quorix on its embedded PostgreSQL")
        quorix, log_path = start_quorix("warning")
        socket_dir = os.path.join(data_dir, "run")
        with open(os.path.join(work, "nginx.conf"), "w") as conf:
            conf.write(f"""worker_processes 1; daemon off; pid {work}/nginx.pid; error_log stderr warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{NGINX_PORT}; location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }} }} }}
""")
        nginx = subprocess.Popen(["nginx", "-p", work, "-c", os.path.join(work, "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(nginx)
        wait_http(f"http://127.0.0.1:{NGINX_PORT}/")

        results = {"quorix_livez": [], "nginx": [], "quorix_healthz": [], "pgbench": []}
        for run in range(1, args.runs + 1):
            progress(f"run {run}/{args.runs}: quorix GET /livez")
            results["quorix_livez"].append(wrk(f"http://127.0.0.1:{QUORIX_PORT}/livez", args.seconds, args.connections))
            progress(f"run {run}/{args.runs}: nginx, one worker")
            results["nginx"].append(wrk(f"http://127.0.0.1:{NGINX_PORT}/", args.seconds, args.connections))
            progress(f"run {run}/{args.runs}: quorix GET /healthz (SELECT 1 through the pool)")
            results["quorix_healthz"].append(wrk(f"http://127.0.0.1:{QUORIX_PORT}/healthz", args.seconds, args.connections))
            progress(f"run {run}/{args.runs}: pgbench SELECT 1, 8 clients")
            results["pgbench"].append(pgbench(socket_dir, args.seconds, 8))
        stop(quorix)

        progress("one more quorix GET /livez run with a JSON log line per request (info)")
        quorix, _ = start_quorix("info")
        info_log = wrk(f"http://127.0.0.1:{QUORIX_PORT}/livez", args.seconds, args.connections)
        stop(quorix)

        def median(name, key="rate"):
            values = [r[key] for r in results[name] if r.get(key) is not None]
            return statistics.median(values) if values else None

        for name in ("quorix_livez", "nginx", "quorix_healthz"):
            bad = [r for r in results[name] if r["non2xx"] or r["errors"]]
            if bad:
                progress(f"warning: {name} had non-2xx responses or socket errors: {bad}")
        rows = [
            ("HTTP: quorix GET /livez", median("quorix_livez"), median("quorix_livez", "p99_ms")),
            ("HTTP: nginx, 1 worker, same body", median("nginx"), median("nginx", "p99_ms")),
            ("HTTP: quorix GET /livez, info logging", info_log["rate"], info_log["p99_ms"]),
            ("PG: quorix GET /healthz (SELECT 1 via pool of 8)", median("quorix_healthz"), median("quorix_healthz", "p99_ms")),
            ("PG: pgbench SELECT 1, 8 clients, extended protocol", median("pgbench"), None),
        ]
        print(f"\nDate: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}; "
              f"wrk -t1 -c{args.connections} -d{args.seconds}s; medians of {args.runs} interleaved runs.\n")
        print("| measurement | requests/s | p99 ms |")
        print("|---|---:|---:|")
        for label, rate, p99 in rows:
            print(f"| {label} | {rate:,.0f} | {'' if p99 is None else f'{p99:.2f}'} |")
        print(f"\nquorix / nginx: {median('quorix_livez') / median('nginx'):.0%}; "
              f"quorix /healthz / pgbench: {median('quorix_healthz') / median('pgbench'):.0%}")
        print("\nAll runs:", json.dumps(results))
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
