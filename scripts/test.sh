#!/usr/bin/env bash
# The whole test suite, on a fresh machine: builds the binary the end-to-end tests drive,
# then runs every test of every crate. Everything it starts binds to 127.0.0.1 and lives
# in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

source scripts/services.sh
start_postgres
start_alertmanager
fetch_tansu
install_aiosmtpd
install_promtool
install_chromium

echo "== Prometheus configuration and alert rules (promtool)"
promtool check config deploy/prometheus/prometheus.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
scripts/check-deploy.sh

echo "== build"
cargo build --workspace --all-targets
echo "== tests"
cargo test --workspace -- --nocapture
