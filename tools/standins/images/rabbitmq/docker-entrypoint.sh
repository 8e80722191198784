#!/bin/bash
# The `rabbitmq` image's contract, on Debian's RabbitMQ: listeners on every address, guest not limited to
# loopback, RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS as the first user (read by the server only while
# its database is new, as in the real image), one Erlang cookie shared by the server and root's CLI tools
# (the health check runs as root), the server itself as the rabbitmq user (uid 999, as in the real image).
set -eo pipefail
if [ "$1" != rabbitmq-server ]; then exec "$@"; fi

{
  echo "loopback_users.guest = false"
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  echo "log.console = true"
  echo "log.file = false"
  if [ -n "$RABBITMQ_DEFAULT_USER" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
  if [ -n "$RABBITMQ_DEFAULT_PASS" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
  if [ -n "$RABBITMQ_DEFAULT_VHOST" ]; then echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"; fi
} >/etc/rabbitmq/conf.d/05-standin-defaults.conf
chmod 600 /etc/rabbitmq/conf.d/05-standin-defaults.conf

cookie=/var/lib/rabbitmq/.erlang.cookie
if [ ! -s "$cookie" ]; then head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$cookie"; fi
chmod 600 "$cookie"
# Started as rabbitmq (the manifests' runAsUser 999), as the real image: the server runs as it is.
if [ "$(id -u)" != 0 ]; then exec env HOME=/var/lib/rabbitmq rabbitmq-server; fi
chown rabbitmq:rabbitmq /etc/rabbitmq/conf.d/05-standin-defaults.conf
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
install -m 600 "$cookie" /root/.erlang.cookie
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq rabbitmq-server
