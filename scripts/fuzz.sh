#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzX in a _test.go file), each for FUZZTIME (default
# 1m), one after the other: Go fuzzes one target of one package at a time. FUZZ, a regular
# expression, picks targets by name (FUZZ=FuzzParse runs the config and units parsers' targets).
#
# `go test` runs each target's seeds (its f.Add calls and testdata/fuzz/FuzzX/) on every run; this
# script searches beyond them. A failure stops the script; Go writes the failing input to the
# package's testdata/fuzz/FuzzX/, where it becomes a seed once the bug is fixed: commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-1m}
FUZZ=${FUZZ:-.}
GO=${GO:-go}

targets=$(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | grep -v '^./test/kafkatest/container/' \
  | sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)$#\1 \2#' | sort -u)
n=0
while read -r dir name; do
  [ -n "$name" ] || continue
  if ! grep -qE -- "$FUZZ" <<<"$name"; then continue; fi
  n=$((n + 1))
  echo "== ./$dir $name for $FUZZTIME"
  "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir"
done <<<"$targets"
if [ "$n" -eq 0 ]; then
  echo "no fuzz target matches FUZZ=$FUZZ" >&2
  exit 1
fi
echo "== $n fuzz targets ran for $FUZZTIME each without a failure"
