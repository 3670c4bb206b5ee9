#!/usr/bin/env bash
# A/B of one benchmark against another commit, in one session, runs alternating:
#
#   bash benchmarks/ab.sh REV ROUNDS benchmarks/bench_hmm.py --libs bigem
#
# Checks REV out into a temporary worktree and runs the same benchmark script (this
# tree's) ROUNDS times against each side's bigem (PYTHONPATH), base first, with
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both. Output lines are prefixed
# with the side. Alternating rounds keep the VM's slow phases from favouring a side.
set -euo pipefail
rev=$1; rounds=$2; shift 2
top=$(git rev-parse --show-toplevel)
py="$top/.venv/bin/python"
base=$(mktemp -d)
trap 'git -C "$top" worktree remove --force "$base" >/dev/null 2>&1 || true' EXIT
git -C "$top" worktree add -q --detach "$base" "$rev"
for round in $(seq "$rounds"); do
  for side in base head; do
    src=$([ "$side" = base ] && echo "$base/src" || echo "$top/src")
    echo "== round $round, $side ($([ "$side" = base ] && git -C "$top" rev-parse --short "$rev" || git -C "$top" rev-parse --short HEAD))"
    PYTHONPATH="$src" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$@" 2>&1 | sed "s/^/[$side] /"
  done
done
