#!/usr/bin/env bash
# Run a command with ECOVALUE_TEST_DATABASE_URL pointing at a throwaway PostgreSQL 15, which is
# stopped and deleted afterwards whatever happens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ecovalue-pg.XXXXXX)
port=${ECOVALUE_PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
trap '"$here/pg.sh" stop "$dir"' EXIT
url=$("$here/pg.sh" start "$dir" "$port")
echo "PostgreSQL test server: $url" >&2
ECOVALUE_TEST_DATABASE_URL="$url" "$@"
