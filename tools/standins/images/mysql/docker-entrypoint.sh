#!/bin/bash
# The `mysql` image's contract, on MariaDB: on the first start (no /var/lib/mysql/mysql) the root password
# (MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD: one is required), the
# database MYSQL_DATABASE, the user MYSQL_USER/MYSQL_PASSWORD with all rights on it, then the files in
# /docker-entrypoint-initdb.d (*.sh sourced, *.sql and *.sql.gz run against MYSQL_DATABASE), all on a
# server without networking; then the real server on every address. Started as root (compose) it owns
# the data directory and runs the server as mysql; started as mysql (the manifests' runAsUser 999), as is.
set -eo pipefail
shopt -s nullglob

if [ "${1:0:1}" = - ]; then set -- mysqld "$@"; fi
if [ "$1" != mysqld ] && [ "$1" != mariadbd ]; then exec "$@"; fi
shift
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/first-start.sock

say() { echo "entrypoint: $*"; }
fail() { echo "entrypoint: error: $*" >&2; exit 1; }
sql_string() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }
client() { mariadb --protocol=socket --socket="$SOCKET" -uroot "$@"; }
as_user=()
if [ "$(id -u)" = 0 ]; then as_user=(--user=mysql); fi

first_start() {
  if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ] && [ -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
    fail "database is uninitialized and password option is not specified
    You need to specify one of the following as an environment variable:
    - MYSQL_ROOT_PASSWORD
    - MYSQL_ALLOW_EMPTY_PASSWORD
    - MYSQL_RANDOM_ROOT_PASSWORD"
  fi
  if [ -n "$MYSQL_USER" ] && [ -z "$MYSQL_PASSWORD" ]; then fail "MYSQL_USER is set but MYSQL_PASSWORD is empty"; fi
  if [ "$MYSQL_USER" = root ]; then fail "MYSQL_USER=root: use MYSQL_ROOT_PASSWORD for root"; fi
  if [ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
    MYSQL_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64)
    say "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
  fi
  say "initialising $DATADIR"
  if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql "$DATADIR"; fi
  mariadb-install-db "${as_user[@]}" --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  mariadbd "${as_user[@]}" --datadir="$DATADIR" --skip-networking --socket="$SOCKET" &
  local pid=$!
  for _ in $(seq 60); do client -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  client -e 'SELECT 1' >/dev/null || fail "the first-start server did not come up"

  local root_password; root_password=$(sql_string "$MYSQL_ROOT_PASSWORD")
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_password;"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $root_password;"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$MYSQL_DATABASE" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
    if [ -n "$MYSQL_USER" ]; then
      echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
      if [ -n "$MYSQL_DATABASE" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO $(sql_string "$MYSQL_USER")@'%';"; fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | client
  export MYSQL_PWD=$MYSQL_ROOT_PASSWORD
  local database=()
  if [ -n "$MYSQL_DATABASE" ]; then database=("$MYSQL_DATABASE"); fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) say "running $f"; . "$f" ;;
      *.sql) say "running $f"; client "${database[@]}" <"$f" ;;
      *.sql.gz) say "running $f"; gunzip -c "$f" | client "${database[@]}" ;;
      *) say "ignoring $f" ;;
    esac
  done
  unset MYSQL_PWD
  kill "$pid"
  wait "$pid"
  say "first start done"
}

if [ ! -d "$DATADIR/mysql" ]; then first_start; fi
exec mariadbd "${as_user[@]}" --datadir="$DATADIR" --bind-address=0.0.0.0 --skip-name-resolve "$@"
