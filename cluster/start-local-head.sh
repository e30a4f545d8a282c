#!/usr/bin/env bash
# Start a Ray head node on this machine for development, with token authentication on, then
# submit sweeps to it with `ray job submit` exactly as to a real cluster.
#
# Why a script and not a bare `ray start --head`: it binds everything to 127.0.0.1, makes sure an
# auth token exists (Ray 2.60 turns token auth on for local clusters; this script keeps it on),
# gives Ray Data spare logical CPUs (its read tasks hang when trials hold every CPU slot), and
# prints how to reach the head from another shell.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: cluster/start-local-head.sh [options] [-- extra `ray start` options]

Start a local Ray head (GCS, dashboard, job server) on 127.0.0.1 with token auth on.

Options:
  --port N             GCS port                          (default: $SPECDISTILL_RAY_PORT or 6379)
  --dashboard-port N   dashboard and job-submission port (default: $SPECDISTILL_DASHBOARD_PORT or 8265)
  --temp-dir DIR       Ray's temp/session directory      (default: $SPECDISTILL_RAY_TEMP_DIR or /tmp/ray)
                       Keep it short: Ray's unix sockets live under it and socket
                       paths are limited to about 107 characters.
  --num-cpus N         logical CPUs to advertise         (default: the larger of the cores and 4)
  --block              stay in the foreground; Ctrl-C or SIGTERM stops this head only
  -h, --help           show this text

Anything after `--` goes to `ray start` unchanged, e.g. `-- --ray-client-server-port 10002`.
When another Ray already runs on this machine, give every port that has a fixed default:
--port, --dashboard-port, and after `--`: --ray-client-server-port (10001) and
--dashboard-agent-listen-port (52365).

Environment:
  RAY                  the `ray` executable (default: `ray` on PATH; use the project's venv)
  RAY_AUTH_TOKEN       the auth token itself, or
  RAY_AUTH_TOKEN_PATH  a file holding it (default: ~/.ray/auth_token, generated when missing)

Stopping: with --block, stop the script (Ctrl-C, or SIGTERM to its pid). Without it the head runs
in the background and `ray stop` stops it -- together with every other Ray on this machine.
EOF
}

die() {
    echo "start-local-head: $*" >&2
    exit 2
}

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

port="${SPECDISTILL_RAY_PORT:-6379}"
dashboard_port="${SPECDISTILL_DASHBOARD_PORT:-8265}"
temp_dir="${SPECDISTILL_RAY_TEMP_DIR:-/tmp/ray}"
cores="$(nproc 2>/dev/null || echo 1)"
num_cpus=$((cores > 4 ? cores : 4))
block=0
extra=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) need_value "$@"; port="$2"; shift 2 ;;
        --dashboard-port) need_value "$@"; dashboard_port="$2"; shift 2 ;;
        --temp-dir) need_value "$@"; temp_dir="$2"; shift 2 ;;
        --num-cpus) need_value "$@"; num_cpus="$2"; shift 2 ;;
        --block) block=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

for value in "$port" "$dashboard_port" "$num_cpus"; do
    [[ "$value" =~ ^[0-9]+$ ]] || die "ports and --num-cpus must be whole numbers, got '$value'"
done
[[ "$temp_dir" = /* ]] || die "--temp-dir must be an absolute path, got '$temp_dir'"
# Ray appends session_<date>_<time>_<pid>/sockets/plasma_store (about 60 characters).
((${#temp_dir} <= 45)) || die "--temp-dir '$temp_dir' is too long for Ray's unix socket paths (keep it <= 45 characters)"

ray_bin="${RAY:-ray}"
command -v "$ray_bin" >/dev/null || die "'$ray_bin' not found: activate the project's venv or set RAY=/path/to/ray"

# Token auth stays on: refuse an environment that switches it off rather than start an open head.
if [[ -n "${RAY_AUTH_MODE:-}" && "${RAY_AUTH_MODE}" != "token" ]]; then
    die "RAY_AUTH_MODE=${RAY_AUTH_MODE}: this script only starts heads with token auth (unset it)"
fi
export RAY_AUTH_MODE=token
if [[ -n "${RAY_AUTH_TOKEN:-}" ]]; then
    token_where="the RAY_AUTH_TOKEN environment variable"
    token_env="RAY_AUTH_TOKEN=<the token>"
else
    token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
    if [[ ! -s "$token_file" ]]; then
        mkdir -p "$(dirname "$token_file")"
        # 256 random bits as hex, the format `ray get-auth-token --generate` writes; owner-only.
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$token_file")
        echo "start-local-head: generated a new auth token in $token_file" >&2
    fi
    token_where="$token_file"
    token_env="RAY_AUTH_TOKEN_PATH=$token_file"
fi

mkdir -p "$temp_dir"
# --node-ip-address 127.0.0.1: Ray 2.60 still registers the node (and its GCS) under this machine's
# address, so other machines on the network can reach the GCS port -- token auth guards it. The
# dashboard and job API listen on 127.0.0.1 only.
args=(
    start --head
    --node-ip-address 127.0.0.1
    --port "$port"
    --dashboard-host 127.0.0.1
    --dashboard-port "$dashboard_port"
    --include-dashboard true
    --temp-dir "$temp_dir"
    --num-cpus "$num_cpus"
    --disable-usage-stats
)

print_howto() {
    cat <<EOF

Ray head: GCS port $port  (temp dir $temp_dir, $num_cpus logical CPUs)
  dashboard:  http://127.0.0.1:$dashboard_port  (token auth on: it asks for the token)
  auth token: $token_where   (print it with: RAY_AUTH_MODE=token $token_env ray get-auth-token)

From another shell the Ray CLI needs the token too:
  export RAY_AUTH_MODE=token $token_env
  export RAY_ADDRESS=http://127.0.0.1:$dashboard_port
  ray job submit --working-dir . -- specdistill sweep my-sweep.yaml
  ray job list; ray job logs --follow JOB_ID
Jobs run from a temporary copy of the working dir: in my-sweep.yaml give storage_path, data and
teachers as absolute paths (or s3://...), not paths relative to that copy.
EOF
}

if ((block)); then
    print_howto
    echo
    # exec: the caller's signal reaches `ray start --block`, which stops this head's processes only.
    exec "$ray_bin" "${args[@]}" --block ${extra[@]+"${extra[@]}"}
fi
"$ray_bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
print_howto
echo "  stop:       ray stop   (stops every Ray on this machine)"
