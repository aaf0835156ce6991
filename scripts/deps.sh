#!/usr/bin/env bash
# Installs what isol8 needs to build, run and be tested on Debian 12, from Debian's packages
# and (for the bun and deno runtimes) the npm registry.
set -euo pipefail

PACKAGES=(
        build-essential meson ninja-build pkg-config
        libsystemd-dev libmicrohttpd-dev libjson-c-dev libseccomp-dev libssl-dev
        libsqlite3-dev libpq-dev libmariadb-dev postgresql mariadb-server mariadb-client
        systemd util-linux procps curl ca-certificates openssl
        python3 python3-websockets
        nodejs npm
        wrk bubblewrap hyperfine
)

if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: run as root (apt-get install)" >&2
        exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
missing=()
for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        # nodejs/npm may already come from elsewhere on the image: do not fight over them.
        if command -v node >/dev/null && command -v npm >/dev/null; then
                missing=($(printf '%s\n' "${missing[@]}" | grep -vxE 'nodejs|npm' || true))
        fi
        if [ ${#missing[@]} -gt 0 ]; then
                # Database servers are started by the tests themselves, never as services.
                policy=/usr/sbin/policy-rc.d
                [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; }
                apt-get install -y -qq "${missing[@]}" >/dev/null
                if [ -n "${made_policy:-}" ]; then rm -f "$policy"; fi
        fi
fi

# bun and deno ship their binaries inside npm packages.
if ! command -v bun >/dev/null || ! command -v deno >/dev/null; then
        npm install -g --no-audit --no-fund bun deno >/dev/null 2>&1 || npm install -g bun deno
fi
for rt in bun deno; do
        if ! "$rt" --version >/dev/null 2>&1; then
                # The package's own installer puts the real binary in place when scripts did not run.
                dir="$(npm root -g)/$rt"
                if [ -f "$dir/install.js" ]; then (cd "$dir" && node install.js) >/dev/null 2>&1 || true; fi
                if [ -f "$dir/install.cjs" ]; then (cd "$dir" && node install.cjs) >/dev/null 2>&1 || true; fi
        fi
done
