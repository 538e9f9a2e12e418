#!/usr/bin/env bash
# Fuzzes every decoder for SECONDS each (default 120) with cargo fuzz on the stable
# toolchain: libFuzzer without a sanitizer (safe Rust needs none), debug assertions on, so
# a panic, an arithmetic overflow or a runaway allocation is a finding. New inputs that
# reach new code are kept in connectors/fuzz/corpus/<target>, which is committed after
# `cargo fuzz cmin --fuzz-dir connectors/fuzz --sanitizer none <target>` keeps it small;
# findings land in connectors/fuzz/artifacts/<target>.
#
#     scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz=connectors/fuzz
secs=${1:-120}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(camt mt940 bank_csv debezium esign amount)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$fuzz/corpus/$t" "$fuzz/seeds/$t"
  echo "== fuzz $t for ${secs}s"
  if ! cargo fuzz run --fuzz-dir "$fuzz" --sanitizer none --debug-assertions "$t" \
      "$fuzz/corpus/$t" "$fuzz/seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1; then
    echo "!! $t failed: a crash is in $fuzz/artifacts/$t"
    failed=1
  fi
done
exit $failed
