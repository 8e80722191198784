#!/bin/sh
# The RabbitMQ entry point of compose and Kubernetes: `rabbitmq-definitions.sh COMMAND...` writes the
# broker's definitions from the environment (.env), then runs COMMAND (the image's own entry point).
# RabbitMQ loads them at every start (load_definitions in rabbitmq.conf):
#   - RABBITMQ_USER, the administrator (the management UI);
#   - one user per service, RABBITMQ_<SERVICE>_USER, allowed only what that service does: the gateway
#     publishes to VIDEO_QUEUE, the converter consumes it and publishes to MP3_QUEUE, notification
#     consumes MP3_QUEUE. None may create users, other queues or exchanges, or use the management UI;
#   - the queues and the dead-letter exchange, as common/broker.py declares them, so that they exist
#     before any service starts, and a service re-declaring them needs no more than these permissions.
#     VIDEO_QUEUE is a priority queue. A broker whose data predates that keeps its old queue (a queue
#     that exists is not re-declared at load): the converter moves it over at its start
#     (common/queue_migration.py), through VIDEO_QUEUE.migrating under the lock VIDEO_QUEUE.migration-lock.
set -eu

DEFINITIONS=/tmp/rabbitmq-definitions.json  # load_definitions in rabbitmq.conf
DEAD_LETTER=dead-letter                     # DEAD_LETTER_EXCHANGE in common/broker.py
MAX_PRIORITY=5                              # MAX_PRIORITY in common/broker.py
SERVICES="GATEWAY CONVERTER NOTIFICATION"

fail() {
  echo "rabbitmq-definitions: $*" >&2
  exit 1
}

value() {  # value NAME: the variable NAME, which must not be empty
  eval "set -- \"\${$1:-}\" $1"
  [ -n "$1" ] || fail "$2 is empty or missing: run scripts/init-env to update .env"
  printf '%s' "$1"
}

json() {  # json TEXT: TEXT as a JSON string
  printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}

literal() {  # literal TEXT: a regular expression matching TEXT exactly (every other character escaped)
  printf '%s' "$1" | sed 's/[^A-Za-z0-9_-]/\\&/g'
}

for name in VIDEO_QUEUE MP3_QUEUE RABBITMQ_USER RABBITMQ_PASSWORD; do value "$name" > /dev/null; done
for service in $SERVICES; do
  value "RABBITMQ_${service}_USER" > /dev/null
  value "RABBITMQ_${service}_PASSWORD" > /dev/null
done
video=$(value VIDEO_QUEUE)
mp3=$(value MP3_QUEUE)
[ "$video" != "$mp3" ] || fail "VIDEO_QUEUE and MP3_QUEUE are both '$video'"
admin=$(value RABBITMQ_USER)
names=" $admin "
for service in $SERVICES; do
  name=$(value "RABBITMQ_${service}_USER")
  case "$names" in *" $name "*) fail "RABBITMQ_${service}_USER is '$name', the name of another user in .env" ;; esac
  names="$names$name "
done

V=$(literal "$video")
M=$(literal "$mp3")
D=$(literal "$DEAD_LETTER")

# permission SERVICE CONFIGURE WRITE READ: regular expressions on queue and exchange names. Declaring a
# queue needs configure on it; binding it needs write on it and read on the exchange; publishing through
# the default exchange needs write on amq.default; consuming needs read on the queue. Creating a queue
# that dead-letters needs write on the dead-letter exchange: the converter re-creates the video queue
# when it moves it over to priorities.
permission() {
  printf '    {"user": %s, "vhost": "/", "configure": %s, "write": %s, "read": %s}' \
    "$(json "$(value "RABBITMQ_$1_USER")")" "$(json "$2")" "$(json "$3")" "$(json "$4")"
}

queue() {  # queue NAME [DEAD_LETTER_ROUTING_KEY [MAX_PRIORITY]]
  arguments="{}"
  [ $# -eq 1 ] || arguments="{\"x-dead-letter-exchange\": $(json "$DEAD_LETTER"), \"x-dead-letter-routing-key\": $(json "$2")${3:+, \"x-max-priority\": $3}}"
  printf '    {"name": %s, "vhost": "/", "durable": true, "auto_delete": false, "arguments": %s}' \
    "$(json "$1")" "$arguments"
}

binding() {  # binding QUEUE: its dead letters, routed by the queue's name
  printf '    {"source": %s, "vhost": "/", "destination": %s, "destination_type": "queue", "routing_key": %s, "arguments": {}}' \
    "$(json "$DEAD_LETTER")" "$(json "$1.dead")" "$(json "$1")"
}

user() {  # user NAME PASSWORD TAGS
  printf '    {"name": %s, "password": %s, "tags": %s}' "$(json "$1")" "$(json "$2")" "$(json "$3")"
}

umask 077
cat > "$DEFINITIONS" <<JSON
{
  "vhosts": [{"name": "/"}],
  "users": [
$(user "$admin" "$(value RABBITMQ_PASSWORD)" administrator),
$(user "$(value RABBITMQ_GATEWAY_USER)" "$(value RABBITMQ_GATEWAY_PASSWORD)" ""),
$(user "$(value RABBITMQ_CONVERTER_USER)" "$(value RABBITMQ_CONVERTER_PASSWORD)" ""),
$(user "$(value RABBITMQ_NOTIFICATION_USER)" "$(value RABBITMQ_NOTIFICATION_PASSWORD)" "")
  ],
  "permissions": [
    {"user": $(json "$admin"), "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
$(permission GATEWAY "^($D|$V|$V\\.dead)\$" "^(amq\\.default|$V\\.dead)\$" "^$D\$"),
$(permission CONVERTER "^($D|$V|$V\\.dead|$V\\.migrating|$V\\.migration-lock|$M|$M\\.dead)\$" "^(amq\\.default|$D|$V\\.dead|$M\\.dead)\$" "^($D|$V|$V\\.migrating)\$"),
$(permission NOTIFICATION "^($D|$M|$M\\.dead)\$" "^$M\\.dead\$" "^($D|$M)\$")
  ],
  "exchanges": [
    {"name": $(json "$DEAD_LETTER"), "vhost": "/", "type": "direct", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}
  ],
  "queues": [
$(queue "$video" "$video" "$MAX_PRIORITY"),
$(queue "$video.dead"),
$(queue "$mp3" "$mp3"),
$(queue "$mp3.dead")
  ],
  "bindings": [
$(binding "$video"),
$(binding "$mp3")
  ]
}
JSON
# The image's entry point starts as root and steps down to the rabbitmq user, who must read the file.
if [ "$(id -u)" = 0 ]; then
  chown rabbitmq "$DEFINITIONS"
fi
exec "$@"
