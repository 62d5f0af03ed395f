"""What every benchmark command shares: progress lines, shell calls, the release build, wrk."""
import os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sh(command, **kwargs):
    return subprocess.run(command, shell=True, check=True, text=True, capture_output=True, **kwargs).stdout


def prepare(extra_packages):
    """Installs what is missing and builds quorix in release mode; returns the binary's path."""
    progress(f"installing what is missing ({extra_packages}, build dependencies)")
    subprocess.run(["bash", "-c", f"source {ROOT}/scripts/setup.sh"], check=True,
                   env=dict(os.environ, QUORIX_EXTRA_PACKAGES=extra_packages))
    progress("building quorix (release)")
    build = subprocess.run(["swift", "build", "-c", "release", "--product", "quorix"], cwd=ROOT, text=True, capture_output=True)
    if build.returncode != 0:
        raise SystemExit("the release build failed:\n" + build.stdout[-4000:] + build.stderr[-4000:])
    return os.path.join(sh("swift build -c release --show-bin-path", cwd=ROOT).strip(), "quorix")


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
