#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the integration tests use are
# running, starting the local ones if they are down, and prints the
# environment the tests read. Usage: eval "$(scripts/services.sh)"
#
# Addresses come from DYNAPRICE_TEST_POSTGRES and DYNAPRICE_TEST_REDIS; the
# defaults are this project's development machine: PostgreSQL on
# 127.0.0.1:5432 with trust authentication and a database "test", Redis on
# 127.0.0.1:6379. Kafka needs nothing: the tests start an in-process broker
# (kfake) and talk to it over TCP.
set -euo pipefail
pg=${DYNAPRICE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
redis=${DYNAPRICE_TEST_REDIS:-127.0.0.1:6379}

hostport() { # URL or host:port -> host port
	local s=${1#*://}; s=${s#*@}; s=${s%%/*}; s=${s%%\?*}
	echo "${s%:*} ${s##*:}"
}
up() { # host port
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
wait_up() { # name host port
	for _ in $(seq 1 50); do
		up "$2" "$3" && return 0
		sleep 0.2
	done
	echo "$1 did not come up on $2:$3" >&2
	return 1
}

read -r pghost pgport <<<"$(hostport "$pg")"
if ! up "$pghost" "$pgport"; then
	echo "starting PostgreSQL" >&2
	if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >&2
	else
		echo "PostgreSQL is not reachable on $pghost:$pgport and cannot be started here; set DYNAPRICE_TEST_POSTGRES" >&2
		exit 1
	fi
	wait_up PostgreSQL "$pghost" "$pgport"
fi

read -r rhost rport <<<"$(hostport "$redis")"
if ! up "$rhost" "$rport"; then
	echo "starting Redis" >&2
	if command -v redis-server >/dev/null; then
		mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
		redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$rport" --save "" --appendonly no \
			--dir /var/lib/redis --logfile /var/log/redis/ci.log >&2
	else
		echo "Redis is not reachable on $rhost:$rport and cannot be started here; set DYNAPRICE_TEST_REDIS" >&2
		exit 1
	fi
	wait_up Redis "$rhost" "$rport"
fi

echo "export DYNAPRICE_TEST_POSTGRES='$pg' DYNAPRICE_TEST_REDIS='$redis'"
