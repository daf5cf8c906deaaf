#!/usr/bin/env bash
# Benchmark a rendered pre-run.sh against the peer's "rm -rf then ln -s" loop.
#
#   scripts/bench-prerun.sh RENDERED_PRE_RUN_SH SCRATCH_DIR [RUNS]
#
# The start rows of scripts/bench (steady state and first start, with the
# `bash -c true` floor, interleaved runs, medians) for a pre-run.sh rendered by
# the prerun role (for example /storage/pre-run.sh); its paths are moved into a
# scratch directory under SCRATCH_DIR with the script's REFORGE_STORAGE_DIR /
# REFORGE_HOME_DIR / REFORGE_NOTEBOOKS_DIR overrides.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p -- "$2"
exec "$(dirname "${BASH_SOURCE[0]}")/bench" --rows start,first --prerun "$1" --dir "$2" --runs "${3:-15}"
