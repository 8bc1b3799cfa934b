#!/usr/bin/env bash
# Prints what an operator looks at first when thumbgen misbehaves: service state, health,
# metrics, recent log lines, folders, inotify limits, free disk and the Gradio app. See --help.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/ops.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/ops.sh"

usage() {
  cat <<'EOF'
Usage: scripts/diagnose.sh [--url URL] [--base DIR]

Prints a diagnosis of a thumbgen installation:
  service    systemd unit state (when systemctl and the unit exist), Docker containers named
             thumbgen (when docker can reach an engine), else "not found"
  health     GET URL/health, with `thumbgen health` when the binary is found, pretty JSON
  metrics    thumbgen_* totals, queue depth, jobs in flight, process memory
  logs       the last 20 lines of app.log
  folders    file count and size of each folder
  inotify    fs.inotify limits (max_user_watches, max_user_instances, max_queued_events)
  disk       free space where the base folder lives
  gradio     GET GRADIO_API_URL/config (5 s timeout) when GRADIO_API_URL is set

  --url URL   the daemon's HTTP address [default: from HTTP_ADDR/PORT, else
              http://127.0.0.1:8501]
  --base DIR  thumbgen's base folder [default: $BASE_PATH, else the current folder, else
              /var/lib/thumbgen when it holds produtos/ (systemd layout)]
  -h, --help  show this help

Environment: THUMBGEN_BIN (the thumbgen binary, default: `thumbgen` on PATH), the folder
settings (UPLOAD_PATH, LOG_PATH, …) as thumbgen reads them, GRADIO_API_URL and HF_TOKEN.

Exit status: 0 when the daemon answers and is healthy or degraded, 1 when it answers
unhealthy, 2 when it cannot be reached.
EOF
}

die_status=2

url=
base=
while [ $# -gt 0 ]; do
  case "$1" in
    --url) [ $# -ge 2 ] || die "--url needs an address"; url=$2; shift 2 ;;
    --url=*) url=${1#*=}; shift ;;
    --base) [ $# -ge 2 ] || die "--base needs a folder"; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

section() { printf '\n== %s\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- Where things are ------------------------------------------------------------------------
find_base
if [ -d "$base" ]; then base=$(cd "$base" && pwd); fi

if [ -z "$url" ]; then
  addr=${HTTP_ADDR:-127.0.0.1:8501}
  host=${addr%:*}
  port=${PORT:-${addr##*:}}
  case "$host" in 0.0.0.0 | "[::]" | "") host=127.0.0.1 ;; esac
  url="http://$host:$port"
fi
url=${url%/}

bin=${THUMBGEN_BIN:-}
if [ -z "$bin" ]; then
  if have thumbgen; then
    bin=thumbgen
  elif [ -x /usr/local/bin/thumbgen ]; then
    bin=/usr/local/bin/thumbgen
  fi
fi

# GET URL: the body goes to the file $2, the HTTP status to stdout. curl when present, else
# bash's /dev/tcp for plain http:// addresses. Returns non-zero when the server is unreachable.
http_get() {
  local target=$1 out=$2
  if have curl; then
    curl -sS --max-time 5 -o "$out" -w '%{http_code}' "$target" 2>/dev/null
    return
  fi
  local rest hostport h p path raw
  case "$target" in
    http://*) rest=${target#http://} ;;
    *) return 1 ;;
  esac
  hostport=${rest%%/*}
  path=/${rest#*/}
  [ "$rest" = "$hostport" ] && path=/
  h=${hostport%:*}
  p=${hostport##*:}
  [ "$h" = "$hostport" ] && p=80
  raw=$(mktemp)
  # shellcheck disable=SC2016 # the inner script takes its values as arguments
  if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
    cat <&3' _ "$h" "$p" "$path" >"$raw" 2>/dev/null; then
    rm -f "$raw"
    return 1
  fi
  sed '1,/^\r\{0,1\}$/d' "$raw" >"$out"
  head -n 1 "$raw" | cut -d' ' -f2
  rm -f "$raw"
}

pretty_json() {
  if have jq && jq . "$1" 2>/dev/null; then return; fi
  if have python3 && python3 -m json.tool "$1" 2>/dev/null; then return; fi
  cat "$1"
  echo
}

echo "thumbgen diagnosis — $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null || echo unknown)"
layout=
if $systemd_layout; then layout=" (systemd layout)"; fi
echo "base: $base$layout"
echo "url:  $url"

# --- Service ---------------------------------------------------------------------------------
section "service"
found_service=false
if have systemctl && [ -d /run/systemd/system ] &&
  systemctl list-unit-files thumbgen.service --no-legend 2>/dev/null | grep -q thumbgen; then
  found_service=true
  systemctl status thumbgen.service --no-pager --lines=0 2>&1 || true
fi
if have docker; then
  if containers=$(timeout 5 docker ps --all --filter name=thumbgen \
    --format '{{.Names}}  {{.Image}}  {{.Status}}' 2>/dev/null); then
    if [ -n "$containers" ]; then
      found_service=true
      echo "docker containers:"
      printf '  %s\n' "$containers"
    fi
  else
    echo "docker: client present, no engine reachable"
  fi
fi
$found_service || echo "not found (no systemd unit thumbgen.service, no docker container named thumbgen)"

# --- Health ----------------------------------------------------------------------------------
section "health ($url/health)"
result=2
health_status=
if [ -n "$bin" ]; then
  set +e
  summary=$("$bin" health --url "$url" 2>&1)
  probe=$?
  set -e
  echo "thumbgen health: exit $probe"
  printf '%s\n' "$summary" | sed 's/^/  /'
fi
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT
status=
if health_status=$(http_get "$url/health" "$scratch"); then
  echo "HTTP $health_status"
  pretty_json "$scratch"
  status=$(grep -o '"status":"[a-z]*"' "$scratch" | head -n 1 | cut -d'"' -f4 || true)
  if [ "$health_status" = 404 ]; then
    # HEALTH_CHECK_ENABLED=false: liveness decides.
    if live_status=$(http_get "$url/health/live" /dev/null) && [ "$live_status" = 200 ]; then
      status=alive
    fi
  fi
  case "$status" in
    healthy | degraded | alive) result=0 ;;
    *) result=1 ;;
  esac
  echo "status: ${status:-unknown}"
else
  echo "status: unreachable — nothing answers at $url (is thumbgen running? see HTTP_ADDR/PORT)"
fi

# --- Metrics ---------------------------------------------------------------------------------
section "metrics ($url/metrics)"
if [ "$result" -ne 2 ] && metrics_status=$(http_get "$url/metrics" "$scratch") && [ "$metrics_status" = 200 ]; then
  grep -E '^(thumbgen_[a-z_]+_total|thumbgen_queue_depth|thumbgen_jobs_in_flight|thumbgen_build_info|process_resident_memory_bytes|process_open_fds)[ {]' "$scratch" ||
    echo "(no thumbgen series yet)"
else
  echo "not available"
fi

# --- Logs ------------------------------------------------------------------------------------
log_setting=${LOG_PATH:-logs}
if [ -z "${LOG_PATH:-}" ] && $systemd_layout; then log_setting=/var/log/thumbgen; fi
case "$log_setting" in /*) log_dir=$log_setting ;; *) log_dir=$base/$log_setting ;; esac
section "logs ($log_dir/app.log, last 20 lines)"
if [ -r "$log_dir/app.log" ]; then
  tail -n 20 "$log_dir/app.log"
else
  echo "not found"
  if $found_service && have journalctl; then
    journalctl -u thumbgen --no-pager -n 20 2>/dev/null || true
  fi
fi

# --- Folders ---------------------------------------------------------------------------------
section "folders"
printf '%-22s %8s %10s  %s\n' folder files size path
for entry in "produtos:${UPLOAD_PATH:-produtos}" "backgrounds:${BACKGROUND_PATH:-backgrounds}" \
  "thumbnails-prontas:${OUTPUT_PATH:-thumbnails-prontas}" "rejeitados:${REJECTED_PATH:-rejeitados}" \
  "logs:$log_dir" ".thumbgen:${STATE_PATH:-.thumbgen}"; do
  label=${entry%%:*}
  setting=${entry#*:}
  case "$setting" in /*) dir=$setting ;; *) dir=$base/$setting ;; esac
  if [ -d "$dir" ]; then
    if [ "$label" = .thumbgen ]; then depth=(); else depth=(-maxdepth 1); fi
    count=$(find "$dir" -mindepth 1 "${depth[@]}" -type f -printf . 2>/dev/null | wc -c)
    size=$(du -sh "$dir" 2>/dev/null | cut -f1)
    printf '%-22s %8s %10s  %s\n' "$label/" "$count" "$size" "$dir"
  else
    printf '%-22s %8s %10s  %s\n' "$label/" - - "$dir (missing)"
  fi
done

# --- inotify ---------------------------------------------------------------------------------
section "inotify limits"
for limit in max_user_watches max_user_instances max_queued_events; do
  value=$(cat "/proc/sys/fs/inotify/$limit" 2>/dev/null || echo unknown)
  printf '%-20s %s\n' "$limit" "$value"
done
echo "(thumbgen watches 2 folders; raise fs.inotify.* with sysctl if other programs use them up,"
echo " or set WATCH_MODE=poll)"

# --- Disk ------------------------------------------------------------------------------------
section "disk"
if [ -d "$base" ]; then
  df -h "$base" 2>/dev/null || echo "df failed for $base"
else
  echo "base folder $base does not exist"
fi

# --- Gradio ----------------------------------------------------------------------------------
section "gradio"
gradio=${GRADIO_API_URL:-}
if [ -z "$gradio" ]; then
  echo "GRADIO_API_URL not set: the embedded engine is used"
else
  case "$gradio" in
    http://* | https://*) ;;
    */*)
      # A Space id owner/name is served at https://owner-name.hf.space.
      space=$(printf '%s' "$gradio" | tr '[:upper:]' '[:lower:]' | tr '/_.' '---')
      gradio="https://$space.hf.space"
      ;;
  esac
  gradio=${gradio%/}
  if have curl; then
    auth=()
    token=${HF_TOKEN:-${GRADIO_TOKEN:-}}
    if [ -n "$token" ]; then auth=(-H "Authorization: Bearer $token"); fi
    if code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "${auth[@]}" "$gradio/config" 2>&1); then
      echo "GET $gradio/config: HTTP $code"
    else
      echo "GET $gradio/config: unreachable ($code)"
    fi
  else
    echo "cannot check $gradio/config: curl is not installed"
  fi
fi

section "result"
case "$result" in
  0) echo "OK: thumbgen answers and is ${status}" ;;
  1) echo "PROBLEM: thumbgen answers but is ${status:-not healthy}" ;;
  *) echo "PROBLEM: thumbgen is unreachable at $url" ;;
esac
exit "$result"
