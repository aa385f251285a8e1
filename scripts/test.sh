#!/usr/bin/env bash
# npm test: system peers present, type-check, lint, then every test (unit beside the code,
# integration under test/integration). Pass --unit for unit tests only, or file paths to run
# just those files. Every run first rebuilds dist/ (scripts/build-js.js), the JavaScript that
# bin/dnslb.js runs in every process the tests start, so the tests never run a stale build.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
files=()
for arg in "$@"; do
  case "$arg" in
    --unit) mode=unit ;;
    *) files+=("$arg") ;;
  esac
done

if [ "${#files[@]}" -eq 0 ]; then
  bash scripts/ensure-system-packages.sh
  echo "== type-check"; npx tsc --noEmit
  echo "== lint"; npx eslint --max-warnings 0 .
  mapfile -t files < <(find src -name '*.test.ts' | sort)
  if [ "$mode" = all ]; then
    mapfile -t -O "${#files[@]}" files < <(find test/integration -name '*.test.ts' 2>/dev/null | sort)
  fi
fi

echo "== build"; node scripts/build-js.js
echo "== tests (${#files[@]} files)"
# Two files at a time: the machine has two cores and integration tests start real processes.
exec node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
