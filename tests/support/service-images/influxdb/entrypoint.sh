#!/bin/sh
# influxd reads INFLUXDB_<SECTION>_<KEY> variables as configuration (auth-enabled among
# them). On a first start: the database and its users, made over the HTTP API (the first
# admin may be made without credentials), as the official image's init does.
set -eu
export INFLUXDB_META_DIR=/var/lib/influxdb/meta INFLUXDB_DATA_DIR=/var/lib/influxdb/data \
  INFLUXDB_DATA_WAL_DIR=/var/lib/influxdb/wal
influxd &
pid=$!
until curl -sf http://localhost:8086/ping; do sleep 0.2; done
if [ ! -f /var/lib/influxdb/.initialised ]; then
  q() { curl -sf -XPOST http://localhost:8086/query -u "$INFLUXDB_ADMIN_USER:$INFLUXDB_ADMIN_PASSWORD" \
          --data-urlencode "q=$1" >/dev/null; }
  curl -sf -XPOST http://localhost:8086/query --data-urlencode \
    "q=CREATE USER \"$INFLUXDB_ADMIN_USER\" WITH PASSWORD '$INFLUXDB_ADMIN_PASSWORD' WITH ALL PRIVILEGES" >/dev/null
  q "CREATE DATABASE \"$INFLUXDB_DB\""
  q "CREATE USER \"$INFLUXDB_WRITE_USER\" WITH PASSWORD '$INFLUXDB_WRITE_USER_PASSWORD'"
  q "GRANT WRITE ON \"$INFLUXDB_DB\" TO \"$INFLUXDB_WRITE_USER\""
  q "CREATE USER \"$INFLUXDB_READ_USER\" WITH PASSWORD '$INFLUXDB_READ_USER_PASSWORD'"
  q "GRANT READ ON \"$INFLUXDB_DB\" TO \"$INFLUXDB_READ_USER\""
  touch /var/lib/influxdb/.initialised
fi
trap 'kill -TERM $pid' TERM INT
wait $pid || wait $pid
