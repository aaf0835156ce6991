#!/usr/bin/env bash
# Installs (once: nothing is asked for when all is there), builds and starts isol8 with its
# embedded defaults on port 3000. Run as root: the sandbox engine needs it. The master key is
# $ISOL8_API_KEY, or a new random one printed below. Extra arguments go to `isol8 serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
if [ -z "${ISOL8_API_KEY:-}" ]; then
        ISOL8_API_KEY="$(openssl rand -hex 32)"
        echo "Generated master key: $ISOL8_API_KEY"
fi
export ISOL8_API_KEY
exec ./build/src/isol8 serve "$@"
