#!/usr/bin/env bash
# Smoke test of the Gradio test rig, by hand with curl, against a real app:
#
#   tests/gradio/smoke.sh VENV KIND     e.g. tests/gradio/smoke.sh gradio6 birefnet
#   tests/gradio/smoke.sh VENV proxy    fault_proxy plans in front of a blocks_png app
#   tests/gradio/smoke.sh VENV faults   --quota-first / --fail-first / --delay / call counting
#   tests/gradio/smoke.sh all           every kind, proxy and faults on every venv
#
# VENV is gradio6, gradio5 or gradio4 (built by scripts/setup-gradio-env). For an app kind it does
# GET /config, GET {P}/info, POST {P}/upload, POST {P}/queue/join + GET {P}/queue/data,
# GET {P}/file=..., then POST {P}/call/NAME + GET {P}/call/NAME/ID, and checks the cut-outs have
# transparent pixels (login: 401 without the cookie; limits: 413 and 503 "Queue is full").
# Exits non-zero on the first failed check. SMOKE_VERBOSE=1 prints the raw responses.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ "${1:-}" = all ]; then
  rc=0
  for v in gradio6 gradio5 gradio4; do
    for k in blocks_png slider rmbg14 birefnet login limits noalpha faults proxy; do
      "$0" "$v" "$k" || rc=1
    done
  done
  exit "$rc"
fi

if [ $# -ne 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
venv=$1
kind=$2
py="$root/.venv/$venv/bin/python"
[ -x "$py" ] || {
  echo "smoke: $py missing, run scripts/setup-gradio-env $venv" >&2
  exit 2
}
export GRADIO_ANALYTICS_ENABLED=False

work=$(mktemp -d "${TMPDIR:-/tmp}/thumbgen-smoke.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say() { echo "smoke[$venv/$kind]: $*"; }
fail() {
  echo "smoke[$venv/$kind]: FAIL: $*" >&2
  for f in "$work"/*.err; do
    [ -f "$f" ] && {
      echo "--- $f (tail)" >&2
      tail -n 30 "$f" >&2
    }
  done
  exit 1
}
show() { if [ "${SMOKE_VERBOSE:-0}" = 1 ]; then echo "$*"; fi; }

# json EXPR FILE: evaluate a Python expression on the JSON document `j` loaded from FILE.
json() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[2])); print(eval(sys.argv[1]))' "$1" "$2"; }

# start_bg NAME CMD...: start a process printing "READY <port>"; sets $ready_port and $ready_secs.
start_bg() {
  local name=$1
  shift
  local t0 i
  t0=$(date +%s.%N)
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for ((i = 0; i < 1200; i++)); do
    if grep -q '^READY ' "$work/$name.out" 2>/dev/null; then
      ready_port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$work/$name.out")
      ready_secs=$("$py" -c "import sys,time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t0")
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || fail "$name exited before READY"
    sleep 0.1
  done
  fail "$name not READY after 120 s"
}

# synthetic studio shot: a coloured product on a light grey backdrop
make_png() { # FILE W H
  "$py" - "$@" <<'EOF'
import sys
from PIL import Image, ImageDraw
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
im = Image.new("RGB", (w, h), (232, 232, 230))
d = ImageDraw.Draw(im)
d.rectangle([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=(200, 40, 30))
d.ellipse([w // 3, h // 3, w // 2, h // 2], fill=(30, 60, 180))
im.save(path)
EOF
}

# check_image FILE WANT: WANT=alpha (RGBA with transparent and opaque pixels) or opaque (no alpha)
check_image() {
  "$py" - "$1" "$2" <<'EOF' || fail "image check failed for $1 (want $2)"
import sys
from PIL import Image
path, want = sys.argv[1], sys.argv[2]
im = Image.open(path)
im.load()
fmt, mode = im.format, im.mode
has_alpha = "A" in im.getbands() or "transparency" in im.info
desc = f"{fmt} {im.size[0]}x{im.size[1]} {mode}"
if want == "alpha":
    a = im.convert("RGBA").getchannel("A")
    lo, hi = a.getextrema()
    hist = a.histogram()
    clear = hist[0] / (im.size[0] * im.size[1])
    print(f"  {desc}: alpha min={lo} max={hi}, {clear:.0%} fully transparent")
    sys.exit(0 if has_alpha and lo == 0 and hi == 255 and 0.2 < clear < 0.9 else 1)
print(f"  {desc}: has_alpha={has_alpha}")
sys.exit(1 if has_alpha else 0)
EOF
}

curl_=(curl -sS --max-time 60)

run_app_kind() {
  local app_args=() api extras want=() auth=()
  case "$kind" in
    blocks_png | login | noalpha) api=remove ;;
    limits)
      api=remove
      app_args=(--delay 3 --max-file-size 200000)
      ;;
    slider | birefnet) api=image ;;
    rmbg14) api= ;; # resolved from /config
    *) fail "unknown kind $kind" ;;
  esac
  extras=""
  [ "$kind" = birefnet ] && extras=', "1024x1024", "General", false, "dice"'
  case "$kind" in
    noalpha) want=(opaque) ;;
    birefnet) want=(opaque alpha alpha) ;;
    slider) want=(alpha opaque) ;; # (cutout, original)
    *) want=(alpha) ;;
  esac

  start_bg app "$py" tests/gradio/app.py --kind "$kind" --port 0 --calls "$work/calls.txt" \
    "${app_args[@]}"
  local base="http://127.0.0.1:$ready_port"
  say "$("$py" -c 'import gradio; print("gradio", gradio.__version__)') READY on $ready_port after ${ready_secs}s"

  if [ "$kind" = login ]; then
    local code
    code=$("${curl_[@]}" -o "$work/noauth.json" -w '%{http_code}' "$base/config")
    [ "$code" = 401 ] || fail "GET /config without cookie gave $code, want 401"
    say "GET /config without cookie -> 401 $(cat "$work/noauth.json")"
    code=$("${curl_[@]}" -o /dev/null -w '%{http_code}' -d 'username=thumbgen&password=wrong' "$base/login")
    say "POST /login wrong password -> $code"
    code=$("${curl_[@]}" -c "$work/jar" -o "$work/login.json" -w '%{http_code}' \
      -d 'username=thumbgen&password=s3cret' "$base/login")
    [ "$code" = 200 ] || fail "POST /login gave $code"
    say "POST /login -> 200 $(cat "$work/login.json"), cookies: $(grep -o 'access-token[^[:space:]]*' "$work/jar" | tr '\n' ' ')"
    auth=(-b "$work/jar")
  fi

  "${curl_[@]}" "${auth[@]}" -o "$work/config.json" "$base/config"
  local P fn
  P=$(json 'j.get("api_prefix", "")' "$work/config.json")
  if [ -z "$api" ]; then
    api=$(json '[d["api_name"] for d in j["dependencies"] if d.get("api_name") in ("predict", "rmbg14")][0]' "$work/config.json")
  fi
  fn=$(json "[d['id'] for d in j['dependencies'] if d.get('api_name') == '$api'][0]" "$work/config.json")
  say "GET /config: version=$(json 'j["version"]' "$work/config.json") protocol=$(json 'j.get("protocol")' "$work/config.json") api_prefix='$P' max_file_size=$(json 'j.get("max_file_size")' "$work/config.json") deps=$(json '[(d["id"], d.get("api_name")) for d in j["dependencies"]]' "$work/config.json") -> $api = fn_index $fn"

  "${curl_[@]}" "${auth[@]}" -o "$work/info.json" "$base$P/info"
  say "GET $P/info: $(json '{k: ([p["component"] for p in v["parameters"]], [r["component"] for r in v["returns"]]) for k, v in j["named_endpoints"].items()}' "$work/info.json")"
  json "'/$api' in j['named_endpoints'] or sys.exit('no /$api in info')" "$work/info.json" >/dev/null

  make_png "$work/input.png" 96 64
  "${curl_[@]}" "${auth[@]}" -o "$work/upload.json" -F "files=@$work/input.png;type=image/png" "$base$P/upload"
  local path
  path=$(json 'j[0]' "$work/upload.json")
  say "POST $P/upload -> $path"

  local fdata sess
  fdata="{\"path\": \"$path\", \"orig_name\": \"input.png\", \"meta\": {\"_type\": \"gradio.FileData\"}}"
  sess=$("$py" -c 'import uuid; print(uuid.uuid4())')
  "${curl_[@]}" "${auth[@]}" -o "$work/join.json" -H 'Content-Type: application/json' \
    -d "{\"data\": [$fdata$extras], \"fn_index\": $fn, \"session_hash\": \"$sess\"}" "$base$P/queue/join"
  say "POST $P/queue/join -> $(cat "$work/join.json")"
  "${curl_[@]}" "${auth[@]}" -N -o "$work/queue.sse" "$base$P/queue/data?session_hash=$sess" ||
    fail "queue/data stream failed"
  show "$(cat "$work/queue.sse")"
  say "GET $P/queue/data msgs: $(sed -n 's/^data: //p' "$work/queue.sse" | "$py" -c 'import json,sys; print([json.loads(l)["msg"] for l in sys.stdin if l.strip()])')"
  sed -n 's/^data: //p' "$work/queue.sse" | grep '"process_completed"' >"$work/completed.json" ||
    fail "no process_completed"
  json 'j["success"] or sys.exit("success=false: %r" % (j["output"],))' "$work/completed.json" >/dev/null
  outputs_check queue "$(json 'json.dumps(j["output"]["data"])' "$work/completed.json")"

  # /call/NAME two-step variant
  "${curl_[@]}" "${auth[@]}" -o "$work/call.json" -H 'Content-Type: application/json' \
    -d "{\"data\": [$fdata$extras]}" "$base$P/call/$api"
  local ev
  ev=$(json 'j["event_id"]' "$work/call.json")
  "${curl_[@]}" "${auth[@]}" -N -o "$work/call.sse" "$base$P/call/$api/$ev" || fail "call stream failed"
  show "$(cat "$work/call.sse")"
  grep -q '^event: complete' "$work/call.sse" || fail "/call stream has no complete event: $(cat "$work/call.sse")"
  say "POST $P/call/$api + GET $P/call/$api/$ev -> events $(sed -n 's/^event: //p' "$work/call.sse" | tr '\n' ' ')"
  outputs_check call "$(sed -n '/^event: complete/{n;s/^data: //p}' "$work/call.sse")"

  local ncalls
  ncalls=$(wc -l <"$work/calls.txt")
  [ "$ncalls" = 2 ] || fail "calls file has $ncalls lines, want 2"
  say "calls file: $ncalls lines ($(head -n 1 "$work/calls.txt"))"

  if [ "$kind" = birefnet ]; then
    # a client that forgets the extra inputs, or sends a bad resolution, gets an error
    queue_call "[$fdata]" "$work/missing.json"
    json 'not j["success"] or sys.exit("succeeded")' "$work/missing.json" >/dev/null ||
      fail "call with only the image input succeeded"
    say "queue call with only the image input -> success=false output=$(json 'j["output"]' "$work/missing.json")"
    queue_call "[$fdata, \"big\", \"General\", false, \"dice\"]" "$work/badres.json"
    grep -q 'Invalid resolution' "$work/badres.json" || fail "bad resolution: $(cat "$work/badres.json")"
    say "queue call with resolution 'big' -> error $(json 'j["output"]["error"]' "$work/badres.json")"
    queue_call "[$fdata, \"512x512\", \"Anime\", true, \"iou\"]" "$work/badw.json"
    grep -q 'Anime' "$work/badw.json" || fail "bad weights: $(cat "$work/badw.json")"
    say "queue call with weights 'Anime' -> error $(json 'j["output"]["error"]' "$work/badw.json")"
    say "calls file after these 3 bad calls: $(wc -l <"$work/calls.txt") lines (2 good calls before)"
  fi

  if [ "$kind" = login ]; then
    local code
    code=$("${curl_[@]}" -o /dev/null -w '%{http_code}' -F "files=@$work/input.png" "$base$P/upload")
    [ "$code" = 401 ] || fail "upload without cookie gave $code"
    code=$("${curl_[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      -d "{\"data\": [$fdata]}" "$base$P/call/$api")
    [ "$code" = 401 ] || fail "call without cookie gave $code"
    code=$("${curl_[@]}" -o /dev/null -w '%{http_code}' "$base$P/file=$path")
    [ "$code" = 401 ] || fail "file= without cookie gave $code"
    say "without cookie: upload, call and file= -> 401"
  fi

  if [ "$kind" = limits ]; then
    local code i codes=""
    make_png "$work/big.png" 1200 900
    "$py" -c 'import sys; open(sys.argv[1], "ab").write(bytes(300000))' "$work/big.png"
    code=$("${curl_[@]}" -o "$work/413.txt" -w '%{http_code}' -F "files=@$work/big.png;type=image/png" "$base$P/upload")
    [ "$code" = 413 ] || fail "oversized upload gave $code, want 413"
    say "upload of $(wc -c <"$work/big.png") bytes -> 413 $(cat "$work/413.txt")"
    local subs=()
    for i in 1 2 3 4; do
      "${curl_[@]}" -o "$work/sub$i.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"data\": [$fdata]}" "$base$P/call/$api" >"$work/sub$i.code" &
      subs+=($!)
    done
    wait "${subs[@]}"
    for i in 1 2 3 4; do codes="$codes $(cat "$work/sub$i.code")"; done
    grep -h 'Queue is full' "$work"/sub*.json >/dev/null || fail "no 503 Queue is full among:$codes"
    say "4 concurrent submits (delay 3 s, max_size=1) -> codes:$codes; 503 body: $(grep -h 'Queue is full' "$work"/sub*.json | head -n 1)"
  fi
  say OK
}

# queue_call DATA_JSON OUT: /queue/join + /queue/data with fn_index $fn; OUT = the process_completed msg
queue_call() {
  local s
  s=$("$py" -c 'import uuid; print(uuid.uuid4())')
  "${curl_[@]}" "${auth[@]}" -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"data\": $1, \"fn_index\": $fn, \"session_hash\": \"$s\"}" "$base$P/queue/join"
  "${curl_[@]}" "${auth[@]}" -N "$base$P/queue/data?session_hash=$s" |
    sed -n 's/^data: //p' | grep '"process_completed"' >"$2" || fail "queue_call: no process_completed"
}

# outputs_check LABEL JSON_LIST: download every output file and check it against want[]
outputs_check() {
  local label=$1 list=$2 i n p
  echo "$list" >"$work/out-$label.json"
  mapfile -t paths < <("$py" - "$work/out-$label.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
def walk(x):
    if isinstance(x, dict) and "path" in x:
        yield x["path"]
    elif isinstance(x, dict):
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)
for p in walk(data):
    print(p)
EOF
  )
  n=${#paths[@]}
  [ "$n" = "${#want[@]}" ] || fail "$label: $n output files, want ${#want[@]}: $list"
  for ((i = 0; i < n; i++)); do
    p=${paths[$i]}
    "${curl_[@]}" "${auth[@]}" -o "$work/$label-$i.img" "$base$P/file=$p" ||
      fail "download $p"
    say "$label output $i: GET $P/file=$p (want ${want[$i]})"
    check_image "$work/$label-$i.img" "${want[$i]}"
  done
}

run_faults() {
  # --quota-first 1 --fail-first 1 --delay 1: call 1 quota gr.Error, call 2 RuntimeError, call 3 ok
  start_bg app "$py" tests/gradio/app.py --kind blocks_png --port 0 --calls "$work/calls.txt" \
    --quota-first 1 --fail-first 1 --delay 1
  local base="http://127.0.0.1:$ready_port" P fn path fdata i sess
  say "READY after ${ready_secs}s"
  "${curl_[@]}" -o "$work/config.json" "$base/config"
  P=$(json 'j.get("api_prefix", "")' "$work/config.json")
  fn=$(json "[d['id'] for d in j['dependencies'] if d.get('api_name') == 'remove'][0]" "$work/config.json")
  make_png "$work/input.png" 96 64
  "${curl_[@]}" -o "$work/upload.json" -F "files=@$work/input.png" "$base$P/upload"
  path=$(json 'j[0]' "$work/upload.json")
  fdata="{\"path\": \"$path\", \"orig_name\": \"input.png\", \"meta\": {\"_type\": \"gradio.FileData\"}}"
  for i in 1 2 3; do
    sess=$("$py" -c 'import uuid; print(uuid.uuid4())')
    "${curl_[@]}" -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"data\": [$fdata], \"fn_index\": $fn, \"session_hash\": \"$sess\"}" "$base$P/queue/join"
    "${curl_[@]}" -N -o "$work/q$i.sse" "$base$P/queue/data?session_hash=$sess"
    say "queue call $i: $(grep -o '"msg": *"process_completed".*' "$work/q$i.sse" | cut -c1-220)"
  done
  grep -q 'exceeded your free ZeroGPU quota' "$work/q1.sse" || fail "call 1 lacks the quota text"
  grep -q '"success": *false' "$work/q2.sse" || fail "call 2 did not fail"
  grep -q '"success": *true' "$work/q3.sse" || fail "call 3 did not succeed"
  # same faults over /call on a fresh process are covered by the counters being per process
  [ "$(wc -l <"$work/calls.txt")" = 3 ] || fail "calls file: $(cat "$work/calls.txt")"
  say "calls file has 3 lines (failed calls counted)"
  # kill mid-job: the call is recorded before the work
  sess=$("$py" -c 'import uuid; print(uuid.uuid4())')
  "${curl_[@]}" -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"data\": [$fdata], \"fn_index\": $fn, \"session_hash\": \"$sess\"}" "$base$P/queue/join"
  sleep 0.5
  kill -9 "${pids[0]}"
  wait "${pids[0]}" 2>/dev/null || true
  [ "$(wc -l <"$work/calls.txt")" = 4 ] || fail "call in flight at SIGKILL not recorded"
  say "SIGKILL mid-call: calls file has 4 lines"
  say OK
}

run_proxy() {
  start_bg app "$py" tests/gradio/app.py --kind blocks_png --port 0 --calls "$work/calls.txt" --delay 2
  local app_port=$ready_port
  say "app READY after ${ready_secs}s"
  start_bg proxy "$py" tests/gradio/fault_proxy.py --listen 0 --target "http://127.0.0.1:$app_port" \
    --plan drop_sse:1,stall_sse:1,http5xx:1,http429:1 --log "$work/proxy.log"
  local base="http://127.0.0.1:$ready_port" P fn path fdata code ev rc t0 t1
  "${curl_[@]}" -o "$work/config.json" "$base/config"
  P=$(json 'j.get("api_prefix", "")' "$work/config.json")
  fn=$(json "[d['id'] for d in j['dependencies'] if d.get('api_name') == 'remove'][0]" "$work/config.json")
  make_png "$work/input.png" 96 64

  # http5xx:1 -> first upload 502, second passes
  code=$("${curl_[@]}" -o "$work/u1.txt" -w '%{http_code}' -F "files=@$work/input.png" "$base$P/upload")
  [ "$code" = 502 ] || fail "first upload through http5xx:1 gave $code"
  "${curl_[@]}" -o "$work/upload.json" -F "files=@$work/input.png" "$base$P/upload"
  path=$(json 'j[0]' "$work/upload.json")
  say "http5xx:1: upload -> 502 ($(cat "$work/u1.txt")), then 200 $path"
  fdata="{\"path\": \"$path\", \"orig_name\": \"input.png\", \"meta\": {\"_type\": \"gradio.FileData\"}}"

  # http429:1 -> first submit 429 + Retry-After, second passes
  code=$("${curl_[@]}" -D "$work/h429" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"data\": [$fdata]}" "$base$P/call/remove")
  if [ "$code" != 429 ] || ! grep -qi '^retry-after: 1' "$work/h429"; then
    fail "first submit gave $code"
  fi
  say "http429:1: POST $P/call/remove -> 429 with $(grep -i retry-after "$work/h429" | tr -d '\r')"

  # drop_sse:1 -> the queue stream gets its first messages (estimation, process_starts), then is
  # cut after ~1 s without a clean chunked end and without process_completed
  local sess
  sess=$("$py" -c 'import uuid; print(uuid.uuid4())')
  "${curl_[@]}" -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"data\": [$fdata], \"fn_index\": $fn, \"session_hash\": \"$sess\"}" "$base$P/queue/join"
  t0=$(date +%s.%N)
  rc=0
  : >"$work/drop.sse"
  "${curl_[@]}" -N -o "$work/drop.sse" "$base$P/queue/data?session_hash=$sess" 2>"$work/drop.curl.err" || rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" = 0 ] || grep -q process_completed "$work/drop.sse"; then
    fail "drop_sse: stream completed (rc=$rc)"
  fi
  say "drop_sse:1: GET $P/queue/data ended after $("$py" -c "print('%.1f' % ($t1 - $t0))") s, curl rc=$rc ($(tr -d '\n' <"$work/drop.curl.err")), got: $(sed -n 's/^data: //p' "$work/drop.sse" | cut -c1-40 | tr '\n' ' ')"

  # stall_sse:1 -> headers, then silence until our own timeout (28)
  "${curl_[@]}" -o "$work/call2.json" -H 'Content-Type: application/json' -d "{\"data\": [$fdata]}" "$base$P/call/remove"
  ev=$(json 'j["event_id"]' "$work/call2.json")
  rc=0
  curl -sS -N --max-time 6 -D "$work/stall.h" -o "$work/stall.sse" "$base$P/call/remove/$ev" 2>/dev/null || rc=$?
  if [ "$rc" != 28 ] || [ -s "$work/stall.sse" ]; then
    fail "stall_sse: rc=$rc body=$(cat "$work/stall.sse")"
  fi
  say "stall_sse:1: got '$(head -n 1 "$work/stall.h" | tr -d '\r')', then nothing for 6 s (curl rc=28)"

  # transparent afterwards: a full /call and a full queue round trip
  "${curl_[@]}" -o "$work/call3.json" -H 'Content-Type: application/json' -d "{\"data\": [$fdata]}" "$base$P/call/remove"
  ev=$(json 'j["event_id"]' "$work/call3.json")
  "${curl_[@]}" -N -o "$work/ok.sse" "$base$P/call/remove/$ev"
  grep -q '^event: complete' "$work/ok.sse" || fail "call after the faults did not complete: $(cat "$work/ok.sse")"
  say "after the plan is used up: /call completes"
  say "proxy log:"
  sed 's/^/    /' "$work/proxy.log"
  say OK
}

case "$kind" in
  proxy) run_proxy ;;
  faults) run_faults ;;
  *) run_app_kind ;;
esac
