#!/usr/bin/env bash
# Run research.py configurations from a file (one argument line per run), two at a time.
# usage: benchmarks/twod/queue.sh CONFIG_FILE LOG_DIR
set -u
cd "$(dirname "$0")/../.."
mkdir -p "$2"
run_one() {
  line="$1"; logdir="$2"
  tag=$(echo "$line" | sed -n 's/.*--tag \([^ ]*\).*/\1/p')
  mix=$(echo "$line" | sed -n 's/.*--mixture \([^ ]*\).*/\1/p')
  .venv/bin/python benchmarks/twod/research.py $line --out "$logdir/${tag}_${mix}.json" \
    > "$logdir/${tag}_${mix}.log" 2>&1
  tail -1 "$logdir/${tag}_${mix}.log"
}
export -f run_one
grep -v '^#' "$1" | grep -v '^$' | xargs -P 2 -I{} bash -c 'run_one "$@"' _ {} "$2"
