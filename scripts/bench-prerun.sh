#!/usr/bin/env bash
# Benchmark a rendered pre-run.sh against the old "rm -rf then ln -s" loop.
#
#   scripts/bench-prerun.sh RENDERED_PRE_RUN_SH SCRATCH_DIR [RUNS]
#
# Renders nothing: it takes a pre-run.sh rendered by the prerun role (for example
# /storage/pre-run.sh) and moves its paths into SCRATCH_DIR with the script's
# REFORGE_STORAGE_DIR / REFORGE_HOME_DIR / REFORGE_NOTEBOOKS_DIR overrides. Each
# run is timed from the outside, sourced by a fresh bash the way /run.sh does it,
# and the naive loop runs over the same entries the same way.
#   steady state: everything already linked (every start after the first);
#   first start:  home holds real data for every entry and storage is empty.
# SCRATCH_DIR/home, /storage and /notebooks are deleted and recreated.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
script=$(realpath "$1")
scratch=$(realpath -m "$2")
runs=${3:-15}
files_per_entry=20

home=$scratch/home
storage=$scratch/storage
notebooks=$scratch/notebooks
export REFORGE_STORAGE_DIR=$storage REFORGE_HOME_DIR=$home REFORGE_NOTEBOOKS_DIR=$notebooks

mapfile -t entries < <(REFORGE_PRERUN_STAGE=list bash "$script")
if [ "${#entries[@]}" -eq 0 ]; then
  echo "bench-prerun: $script listed no entries; is it a rendered pre-run.sh?" >&2
  exit 1
fi

mkdir -p -- "$scratch"
naive=$scratch/naive.sh
{
  echo '# The old way: throw away what is in home, then link.'
  for entry in "${entries[@]}"; do
    kind=${entry%% *} name=${entry#* }
    if [ "$kind" = dir ]; then
      printf '[ -e %q ] || mkdir %q\n' "$storage/$name" "$storage/$name"
    else
      printf '[ -e %q ] || touch %q\n' "$storage/$name" "$storage/$name"
    fi
    printf 'rm -rf %q\nln -s %q %q\n' "$home/$name" "$storage/$name" "$home/$name"
  done
  printf '[ -e %q ] || mkdir %q\nrm -rf %q\nln -s %q %q\n' \
    "$storage/git" "$storage/git" "$notebooks/git" "$storage/git" "$notebooks/git"
} >"$naive"

# A fresh container: home and notebooks hold real data, storage is empty.
fresh() {
  rm -rf -- "$home" "$storage" "$notebooks"
  mkdir -p -- "$home" "$storage" "$notebooks/git"
  local entry kind name i
  for entry in "${entries[@]}"; do
    kind=${entry%% *} name=${entry#* }
    if [ "$kind" = dir ]; then
      mkdir -p -- "$home/$name"
      for ((i = 0; i < files_per_entry; i++)); do
        printf 'data %s %d\n' "$name" "$i" >"$home/$name/file$i"
      done
    else
      printf 'data %s\n' "$name" >"$home/$name"
    fi
  done
  printf 'clone\n' >"$notebooks/git/README"
}

data_files() {
  find "$storage" -path "$storage/.reforge" -prune -o -type f -size +0 -print | wc -l
}

# Median wall time in ms of sourcing $1 once, over $runs runs; $2 = reset command or "".
time_runs() {
  local file=$1 reset=$2 i start end
  local -a samples=()
  for ((i = 0; i < runs; i++)); do
    [ -z "$reset" ] || "$reset"
    start=${EPOCHREALTIME/[.,]/}
    bash --norc --noprofile -c '. "$1"' _ "$file" >/dev/null 2>&1
    end=${EPOCHREALTIME/[.,]/}
    samples+=($((end - start)))
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000}'
}

fresh
expected=$(find "$home" "$notebooks" -type f | wc -l)

first_prerun=$(time_runs "$script" fresh)
kept_prerun=$(data_files)
steady_prerun=$(time_runs "$script" "")

first_naive=$(time_runs "$naive" fresh)
kept_naive=$(data_files)
steady_naive=$(time_runs "$naive" "")

rm -rf -- "$home" "$storage" "$notebooks" "$naive"

printf '%s links (%d entries + notebooks/git), %d runs each, median wall time of one sourced start\n\n' \
  "$(basename "$script")" "${#entries[@]}" "$runs"
printf '%-16s %14s %24s\n' "" "pre-run.sh" "naive rm -rf + ln -s"
printf '%-16s %11s ms %21s ms\n' "steady state" "$steady_prerun" "$steady_naive"
printf '%-16s %11s ms %21s ms\n' "first start" "$first_prerun" "$first_naive"
printf '%-16s %11s %24s\n' "home files kept" "$kept_prerun/$expected" "$kept_naive/$expected"
