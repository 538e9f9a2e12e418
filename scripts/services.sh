# Starts the real services the end-to-end tests need, on 127.0.0.1, in a temporary
# directory, and stops them on exit. Sourced by scripts/test.sh.
# Exports RECONLIGHT_TEST_PG (host:port of a PostgreSQL server, user postgres, trust auth).

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

stop_services() {
  if [[ -n ${STOP_PG:-} ]]; then
    if [[ $(id -u) == 0 ]]; then su postgres -s /bin/sh -c "$STOP_PG" >/dev/null 2>&1 || true; else $STOP_PG >/dev/null 2>&1 || true; fi
  fi
  rm -rf "$SERVICES_DIR"
}
trap stop_services EXIT
