#!/bin/sh
# Container entry point for every AgentHub process (web, worker, beat).
#
#   1. Empties PROMETHEUS_MULTIPROC_DIR: prometheus_client's multiprocess mode
#      sums every file in it, so files left by a previous run would be counted.
#   2. Applies migrations when RUN_MIGRATIONS=1 (set it on one service only),
#      then seeds list prices for configured models that have none.
#   3. Replaces itself with the command, which becomes PID 1 and gets signals.
set -eu

app_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd -P)

metrics_dir=${PROMETHEUS_MULTIPROC_DIR:-}
if [ -n "$metrics_dir" ]; then
    case "$metrics_dir" in
        / | /tmp | /tmp/ | "$app_dir" | "$app_dir"/)
            echo "entrypoint: refusing to clear PROMETHEUS_MULTIPROC_DIR=$metrics_dir" >&2
            exit 64
            ;;
    esac
    # Empty it in place rather than removing it, so a mounted volume works too.
    mkdir -p -- "$metrics_dir"
    find "$metrics_dir" -mindepth 1 -delete
fi

if [ "${RUN_MIGRATIONS:-0}" = "1" ]; then
    echo "entrypoint: applying migrations" >&2
    python "$app_dir/manage.py" migrate --noinput
    # List prices for configured models that have none (never changes a price).
    python "$app_dir/manage.py" billing_seed_prices
fi

exec "$@"
