#!/usr/bin/env bash
# Installs what isol8 needs on Debian 12, from Debian's packages and (for the bun and deno
# runtimes) the npm registry. Run as root.
#   deps.sh          what building and running the server needs
#   deps.sh --test   that, plus what the test suites and benchmarks need
# Packages already installed are not asked for again: when nothing is missing, nothing runs
# (no apt-get update), so calling it on every start costs a few dpkg look-ups.
set -euo pipefail

# Building and running: compiler, libraries, and the runtimes the sandboxes execute.
RUN_PACKAGES=(
        build-essential meson ninja-build pkg-config
        libsystemd-dev libmicrohttpd-dev libjson-c-dev libseccomp-dev libssl-dev
        libsqlite3-dev libpq-dev libmariadb-dev libcurl4-openssl-dev
        systemd util-linux procps openssl ca-certificates
        python3 nodejs npm
)
# Tests and benchmarks only: database servers the tests start themselves, a private D-Bus and
# journald, real clients, load balancers (the cluster test), load tools and perf (benchmarks), a
# reference sandbox, and a Debian booted with systemd in systemd-nspawn (its root file system made
# by mmdebstrap) for tests/system.
TEST_PACKAGES=(
        postgresql mariadb-server mariadb-client
        dbus curl python3-websockets python3-pip haproxy nginx-light
        wrk bubblewrap hyperfine linux-perf
        systemd-container mmdebstrap clang
)

want_test=
case "${1:-}" in
        "") ;;
        --test) want_test=1 ;;
        *) echo "deps.sh: unknown option '$1' (use --test or nothing)" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: run as root (it installs packages with apt-get)" >&2
        exit 1
fi

packages=("${RUN_PACKAGES[@]}")
[ -z "$want_test" ] || packages+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere on the image (a node in /usr/local): do not fight over them.
if [ ${#missing[@]} -gt 0 ] && command -v node >/dev/null && command -v npm >/dev/null; then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vxE 'nodejs|npm' || true)
fi

if [ ${#missing[@]} -gt 0 ]; then
        echo "deps.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # Database servers are started by the tests themselves, never as services.
        policy=/usr/sbin/policy-rc.d
        made_policy=
        if [ ! -e "$policy" ]; then
                printf '#!/bin/sh\nexit 101\n' > "$policy"
                chmod +x "$policy"
                made_policy=1
        fi
        rc=0
        apt-get install -y -qq "${missing[@]}" >/tmp/isol8-deps-apt.log 2>&1 || rc=$?
        if [ -n "$made_policy" ]; then rm -f "$policy"; fi
        if [ $rc != 0 ]; then
                tail -n 30 /tmp/isol8-deps-apt.log >&2
                echo "deps.sh: apt-get install failed (exit $rc); full log in /tmp/isol8-deps-apt.log" >&2
                exit 1
        fi
fi

# bun and deno ship their binaries inside npm packages.
for rt in bun deno; do
        "$rt" --version >/dev/null 2>&1 && continue
        echo "deps.sh: installing $rt from the npm registry"
        npm install -g --no-audit --no-fund "$rt" >/dev/null 2>&1 || npm install -g --no-audit --no-fund "$rt"
        if ! "$rt" --version >/dev/null 2>&1; then
                # The package's own installer puts the real binary in place when scripts did not run.
                dir="$(npm root -g)/$rt"
                for f in install.js install.cjs; do
                        if [ -f "$dir/$f" ]; then (cd "$dir" && node "$f") >/dev/null 2>&1 || true; fi
                done
        fi
        "$rt" --version >/dev/null 2>&1 || { echo "deps.sh: $rt does not run after its install" >&2; exit 1; }
done

# The agent runtime's test serves pi to the daemon from a local registry: pi and its
# dependencies come once from the npm registry into a cache the test reads.
if [ -n "$want_test" ]; then
        pi_prefix=/var/cache/isol8-tests/pi
        if [ ! -f "$pi_prefix/node_modules/@mariozechner/pi-coding-agent/dist/cli.js" ]; then
                echo "deps.sh: installing pi (@mariozechner/pi-coding-agent) for the tests into $pi_prefix"
                mkdir -p "$pi_prefix"
                npm install --prefix "$pi_prefix" --no-audit --no-fund "@mariozechner/pi-coding-agent@0.73.1" >/tmp/isol8-deps-pi.log 2>&1 ||
                        { tail -n 20 /tmp/isol8-deps-pi.log >&2; echo "deps.sh: npm install of pi failed" >&2; exit 1; }
        fi
fi
exit 0
