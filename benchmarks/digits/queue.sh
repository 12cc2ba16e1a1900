#!/bin/bash
# usage: queue.sh FILE  -- runs each line (arguments to study.py) with at most 2 processes at once
cd "$(dirname "$0")/../.."
grep -v '^\s*$' "$1" | xargs -P 2 -I{} sh -c '.venv/bin/python benchmarks/digits/study.py {} >> benchmarks/digits/logs/run.log 2>&1'
