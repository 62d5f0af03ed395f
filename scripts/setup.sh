#!/usr/bin/env bash
# Installs what Quorix needs and is missing: Debian packages (libuv, libpq, http-parser,
# PostgreSQL 15 server) and the Swift packages the build resolves. Safe to run again.
# Sourced by scripts/serve and scripts/test; extra Debian packages (for benchmarks) may be named
# in QUORIX_EXTRA_PACKAGES. Arguments are ignored: when sourced, they are the caller's own.
set -euo pipefail

quorix_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[setup] %s\n' "$*" >&2; }

read -r -a extra_packages <<< "${QUORIX_EXTRA_PACKAGES:-}"
need_packages=(libuv1-dev libpq-dev libhttp-parser-dev "${extra_packages[@]}")
# The PostgreSQL server: any of 15-17 is fine, 15 is installed when none is present.
if ! ls /usr/lib/postgresql/1[5-7]/bin/initdb >/dev/null 2>&1; then
    need_packages+=(postgresql-15)
fi

missing=()
for package in "${need_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { log "run as root or install sudo to install: ${missing[*]}"; exit 1; }
        sudo_cmd=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Swift toolchain: on PATH, or in /opt/swift.
if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    else
        log "no Swift toolchain found: install Swift 6.x and put it on PATH (or at /opt/swift)"
        exit 1
    fi
fi

# Resolve the Swift packages (from the local package mirrors on this kind of machine).
if [ ! -d "$quorix_root/.build/checkouts" ]; then
    log "resolving Swift packages"
    (cd "$quorix_root" && swift package resolve >/dev/null)
fi

# As root, PostgreSQL runs as an unprivileged user, which must be able to reach its data folder.
# Prints a folder under /tmp to use instead of "$1" when "$1"'s parents are closed to others
# (a checkout under /root, say); prints "$1" otherwise.
reachable_data_dir() {
    local wanted="$1" fallback="$2"
    mkdir -p "$wanted"
    if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$wanted" 2>/dev/null; then
        mkdir -p "$fallback" && chmod 755 "$fallback"
        log "$wanted is not reachable by unprivileged users; using $fallback for PostgreSQL"
        echo "$fallback"
    else
        echo "$wanted"
    fi
}
