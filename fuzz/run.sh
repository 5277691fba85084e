#!/usr/bin/env bash
# Runs the fuzz targets on their seeds (fuzz/seeds.sh), two at a time.
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 60 seconds each, every target
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on the stable toolchain the
# sanitizer flags cargo-fuzz passes need RUSTC_BOOTSTRAP=1, set here. A crash leaves its input
# in fuzz/artifacts/TARGET/ and makes this script fail; logs are in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
export RUSTC_BOOTSTRAP=1
./seeds.sh > /dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O 2>&1 | tail -1
mkdir -p logs
one() {
  local t=$1 secs=$2
  if cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > "logs/$t.log" 2>&1; then
    echo "ok    $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$') runs, $(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1)"
  else
    echo "FAIL  $t: see fuzz/logs/$t.log and fuzz/artifacts/$t/"
    grep -m3 -E 'panicked|ERROR|SUMMARY' "logs/$t.log" || true
    return 1
  fi
}
export -f one
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'one "$@"' _ {} "$secs"
