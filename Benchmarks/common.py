"""What every benchmark command shares: progress lines, shell calls, the release build, wrk."""
import json, os, re, signal, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sh(command, **kwargs):
    result = subprocess.run(command, shell=True, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {command}\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result.stdout


def prepare(extra_packages, products=("quorix",)):
    """Installs what is missing and builds the products in release mode; returns the first's path."""
    progress(f"installing what is missing ({extra_packages}, build dependencies)")
    subprocess.run(["bash", "-c", f"source {ROOT}/scripts/setup.sh"], check=True,
                   env=dict(os.environ, QUORIX_EXTRA_PACKAGES=extra_packages))
    for product in products:
        progress(f"building {product} (release)")
        build = subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, text=True, capture_output=True)
        if build.returncode != 0:
            raise SystemExit("the release build failed:\n" + build.stdout[-4000:] + build.stderr[-4000:])
    return os.path.join(sh("swift build -c release --show-bin-path", cwd=ROOT).strip(), products[0])


def wait_http(url, timeout=180, process=None):
    deadline = time.time() + timeout
    while time.time() < deadline and (process is None or process.poll() is None):
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


class Server:
    """`quorix serve` on its embedded PostgreSQL in a fresh data folder, no sample maps loaded;
    or, given `database` (a conninfo), a further process on that database."""

    def __init__(self, binary, port, name, admin_key, extra_env=None, database=None):
        self.port, self.admin_key = port, admin_key
        data_dir = os.path.join(ROOT, ".build", f"bench-{name}")
        subprocess.run(["rm", "-rf", data_dir])
        self.work = subprocess.run(["mktemp", "-d", "/tmp/quorix-bench-XXXXXX"], check=True, text=True, capture_output=True).stdout.strip()
        os.chmod(self.work, 0o755)
        env = dict(os.environ, QUORIX_DATA_DIR=data_dir, QUORIX_LOG_LEVEL="info", QUORIX_LISTEN=f"127.0.0.1:{port}",
                   QUORIX_ADMIN_KEY=admin_key, QUORIX_SEATMAPS_DIR=self.work)  # an empty folder: no samples
        env.update(extra_env or {})
        env.pop("QUORIX_DATABASE_URL", None)
        if database:
            env["QUORIX_DATABASE_URL"] = database
        self.log_path = os.path.join(self.work, "quorix.log")
        log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        # The embedded cluster's socket is <data>/run (the data folder here is short enough).
        self.conninfo = database or f"host={data_dir}/run port=5432 user=quorix dbname=quorix"
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", process=self.process)
        except SystemExit:
            self.stop()
            raise SystemExit("the server did not start; see " + self.log_path)
        self.psql = f"psql -X -q -At \"{self.conninfo}\""

    def request(self, method, path, body=None, key=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, dict(response.headers), response.read()

    def create_keys(self, roles=("organizer", "client")):
        """A new API key per role, made with the admin key: {role: key}."""
        keys = {}
        for role in roles:
            _, _, body = self.request("POST", "/v1/keys", {"role": role, "name": f"bench {role}"}, self.admin_key)
            keys[role] = json.loads(body)["key"]
        return keys

    def sql(self, statement):
        return sh(f"{self.psql} -c \"{statement}\"").strip()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wrk(url, seconds, connections, header=None):
    """Requests/s, p99 in ms, non-2xx/3xx count and socket errors of one wrk run."""
    extra = f"-H '{header}'" if header else ""
    output = sh(f"wrk -t1 -c{connections} -d{seconds}s --latency {extra} {url}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"rate": rate, "p99_ms": float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)],
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(1) if errors else ""}


def machine():
    return f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB"


class CPUTimes:
    """CPU seconds used so far by the server, by PostgreSQL (every backend, including those that
    exited: the postmaster reaps them) and by this script's finished children (quorix-load,
    pgbench), from /proc; `since` turns two readings into cores used and microseconds per item."""

    def __init__(self, server_pid):
        tick = os.sysconf("SC_CLK_TCK")
        self.values = {"server": 0.0, "postgres": 0.0}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    text = stat.read()
            except OSError:
                continue  # it exited meanwhile
            name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
            own, children = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
            if int(pid) == server_pid:
                self.values["server"] += own / tick
            elif name.startswith("postgres"):
                self.values["postgres"] += (own + children) / tick
        times = os.times()
        self.values["client"] = times.children_user + times.children_system
        self.taken = time.monotonic()

    def since(self, earlier, items):
        """{part: (cores, microseconds per item)} between `earlier` and this reading."""
        seconds = max(1e-9, self.taken - earlier.taken)
        return {part: (used / seconds, used / max(1, items) * 1e6)
                for part, used in ((part, self.values[part] - earlier.values[part]) for part in self.values)}
