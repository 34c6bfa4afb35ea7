#!/usr/bin/env bash
# Make sure the local services the integration tests use are up; start any that is down.
# Usage: scripts/services.sh [--require]   (--require: exit 1 if one stays down)
set -uo pipefail

require=0
[ "${1:-}" = "--require" ] && require=1

up() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

start() {
  case "$1" in
    postgresql) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start ;;
    mariadb) start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd ;;
    redis) redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
             --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ;;
    rabbitmq) rabbitmq-server -detached ;;
    mosquitto) mosquitto -d -c /etc/mosquitto/mosquitto.conf ;;
    nats) start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ;;
  esac
}

missing=()
for pair in postgresql:5432 mariadb:3306 redis:6379 rabbitmq:5672 mosquitto:1883 nats:4222; do
  name=${pair%%:*}; port=${pair##*:}
  if up "$port"; then echo "services: $name up on $port"; continue; fi
  echo "services: $name down on $port, starting it"
  start "$name" >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do up "$port" && break; sleep 0.5; done
  if up "$port"; then echo "services: $name started"; else missing+=("$name:$port"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "services: NOT AVAILABLE: ${missing[*]}" >&2
  [ $require = 1 ] && exit 1
fi
exit 0
