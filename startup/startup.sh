#!/bin/bash
# wfgen VM agent: the startup script of a throw-away Container-Optimized OS VM.
# It runs the one container job described in metadata and POSTs one JSON report
# to the workflow's callback, whatever happens; see docs/vm-agent.md.
#
# Metadata (instance/attributes/...): wfgen-image (text), wfgen-command and
# wfgen-args (JSON arrays of strings), wfgen-env (JSON object string->string),
# wfgen-accelerator-count ("0" = no GPU), wfgen-callback-url. The container runs
# as `docker run [--entrypoint=COMMAND[0]] IMAGE COMMAND[1:] ARGS`; script jobs
# arrive as command ["sh", "-c", SCRIPT, NAME] with their args as positional
# parameters ("$@" sees them byte for byte) and need nothing special.
# Optional: wfgen-stop-grace (seconds the container gets between SIGTERM and
# SIGKILL when the VM stops; 25), wfgen-execution-id, wfgen-attempt and
# wfgen-checkpoint-dir, passed to the container as WFGEN_EXECUTION_ID,
# WFGEN_ATTEMPT and WFGEN_CHECKPOINT_DIR beside WFGEN_RESTARTS.
#
# Knobs (environment; defaults for a real VM): GCE_METADATA_HOST (host:port),
# WFGEN_POWEROFF (command run when no report could be delivered: systemctl
# poweroff), WFGEN_STATE_DIR (/var/lib/wfgen), WFGEN_REPORT_DEADLINE (s of callback
# retries, 600), WFGEN_BACKOFF_MS (1000, doubling) up to WFGEN_BACKOFF_MAX_MS
# (30000), WFGEN_STOP_DEADLINE (s of retries for a stop report, 20),
# WFGEN_TAIL_BYTES (4096), WFGEN_PULL_TRIES (5), WFGEN_NVIDIA_REMOUNT (1: make
# /var/lib/nvidia exec). docker, toolbox, cos-extensions, docker-credential-gcr
# come from PATH.
# State in WFGEN_STATE_DIR survives reboots (docs/vm-agent.md lists it).
set -euo pipefail
export LC_ALL=C TZ=UTC  # byte-wise string handling; timestamps in UTC

MD=http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1
STATE=${WFGEN_STATE_DIR:-/var/lib/wfgen}
DEADLINE=${WFGEN_REPORT_DEADLINE:-600}
BACKOFF=${WFGEN_BACKOFF_MS:-1000}
BACKOFF_MAX=${WFGEN_BACKOFF_MAX_MS:-30000}
STOP_DEADLINE=${WFGEN_STOP_DEADLINE:-20}
TAIL_BYTES=${WFGEN_TAIL_BYTES:-4096}
BS=\\ RS=$'\x1e' US=$'\x1f' GS=$'\x1d'  # never raw in JSON: safe placeholders

now() { printf -v "$1" '%(%Y-%m-%dT%H:%M:%SZ)T' -1; }  # now VAR: RFC 3339, UTC
log() { local t; now t; printf '%s wfgen-agent: %s\n' "$t" "$*" >&2; }

# md PATH: one metadata value on stdout (fails on 404 or when unreachable).
md() {
  curl -sSf --connect-timeout 2 --max-time 10 --retry 3 --retry-connrefused \
    --retry-delay 1 -H 'Metadata-Flavor: Google' "$MD/$1"
}

# --- JSON in: decode arrays/objects of strings in pure bash ---

# json_strings JSON KIND: decode a JSON array of strings (KIND "[") or an object
# of string values (KIND "{", giving key, value, key, value...) into array J.
# With \\ and \" hidden behind placeholders every remaining '"' delimits a
# string, so splitting at '"' leaves strings at odd indexes and the structure
# (brackets, commas, colons, whitespace) at even ones, where it is checked.
json_strings() {
  local t=$1 open=$2 close=']' want i n p
  [[ $open == '{' ]] && close='}'
  [[ $t != *[$RS$US$GS]* ]] || return 1  # raw control bytes: not JSON
  t=${t//"$BS$BS"/"$RS"}; t=${t//"$BS\""/"$US"}
  mapfile -d '"' -t p <<<"$t"
  n=${#p[@]} J=()
  ((n % 2 == 1)) || return 1
  [[ $open == '[' ]] || (((n - 1) % 4 == 0)) || return 1
  for ((i = 0; i < n; i += 2)); do
    if ((i == 0)); then want=$open; elif [[ $open == '{' ]] && ((i % 4 == 2)); then
      want=:; else want=,; fi
    if ((i == n - 1)); then ((i == 0)) || want=; want+=$close; fi
    [[ ${p[i]//[$' \t\r\n']/} == "$want" ]] || return 1
    if ((i + 1 < n)); then json_unescape "${p[i + 1]}" || return 1; J+=("$REPLY"); fi
  done
}

# json_unescape RAW: the text of one JSON string body (placeholders for \\ and
# \") into REPLY. Each \uXXXX becomes a GS byte to split at: the loop runs once
# per \u escape on short pieces.
json_unescape() {
  local s=$1 p i c f
  s=${s//"$BS/"/"/"}; s=${s//"${BS}n"/$'\n'}; s=${s//"${BS}t"/$'\t'}
  s=${s//"${BS}r"/$'\r'}; s=${s//"${BS}b"/$'\b'}; s=${s//"${BS}f"/$'\f'}
  s=${s//"${BS}u"/"$GS"}
  [[ $s != *"$BS"* ]] || return 1  # an unknown escape
  s=${s//"$RS"/"$BS"}; s=${s//"$US"/\"}
  if [[ $s != *"$GS"* ]]; then REPLY=$s; return 0; fi  # no \u: done
  mapfile -d "$GS" -t p <<<"$s"
  p[-1]=${p[-1]%$'\n'} REPLY=${p[0]}
  for ((i = 1; i < ${#p[@]}; i++)); do
    [[ ${p[i]} =~ ^[0-9a-fA-F]{4} ]] || return 1
    c=$((16#${p[i]:0:4}))
    if ((c >> 10 == 54 && ${#p[i]} == 4)) && [[ ${p[i + 1]-} =~ ^[dD][c-fC-F][0-9a-fA-F]{2} ]]; then
      c=$((0x10000 + ((c - 0xD800) << 10) + 16#${p[i + 1]:0:4} - 0xDC00)) i=$((i + 1))
    elif ((c >> 11 == 27)); then c=0xFFFD  # a lone surrogate
    fi
    ((c)) || return 1  # NUL cannot travel in argv or env
    if [[ -z ${UTF8[c]-} ]]; then
      if ((c < 0x80)); then printf -v f '\\x%02x' "$c"
      elif ((c < 0x800)); then printf -v f '\\x%02x\\x%02x' $((192 | c >> 6)) $((128 | (c & 63)))
      elif ((c < 0x10000)); then
        printf -v f '\\x%02x\\x%02x\\x%02x' $((224 | c >> 12)) $((128 | (c >> 6 & 63))) \
          $((128 | (c & 63)))
      else
        printf -v f '\\x%02x\\x%02x\\x%02x\\x%02x' $((240 | c >> 18)) \
          $((128 | (c >> 12 & 63))) $((128 | (c >> 6 & 63))) $((128 | (c & 63)))
      fi
      printf -v 'UTF8[c]' '%b' "$f"
    fi
    REPLY+=${UTF8[c]}${p[i]:4}
  done
}
UTF8=()  # code point -> its UTF-8 bytes, filled as met

# --- JSON out: a string literal, valid UTF-8 whatever the bytes --------------

# U8: one UTF-8 character (RFC 3629: no overlongs, no surrogates), byte-wise.
printf -v B '%b' '[\x80-\xbf]'
printf -v U8 '%b' "([\\x01-\\x7f]|[\\xc2-\\xdf]$B|\\xe0[\\xa0-\\xbf]$B|[\\xe1-\\xec\\xee\\xef]$B$B|" \
  "\\xed[\\x80-\\x9f]$B|\\xf0[\\x90-\\xbf]$B$B|[\\xf1-\\xf3]$B$B$B|\\xf4[\\x80-\\x8f]$B$B)"

# json_quote TEXT: TEXT as a JSON string literal in REPLY; bytes that are not
# UTF-8 become U+FFFD (output tails may hold anything).
json_quote() {
  local s=$1 c h out=
  s=${s//"$BS"/"$BS$BS"}; s=${s//\"/"$BS\""}; s=${s//$'\n'/'\n'}
  s=${s//$'\t'/'\t'}; s=${s//$'\r'/'\r'}
  while [[ $s =~ [$'\x01'-$'\x1f'] ]]; do
    c=${BASH_REMATCH[0]}; printf -v h '\\u%04x' "'$c"; s=${s//"$c"/"$h"}
  done
  if ! [[ $s =~ ^$U8*$ ]]; then
    while [[ -n $s ]]; do
      [[ $s =~ ^$U8+ ]] && out+=${BASH_REMATCH[0]} s=${s:${#BASH_REMATCH[0]}}
      [[ -z $s ]] || out+='\ufffd' s=${s:1}
    done
    s=$out
  fi
  REPLY=\"$s\"
}

# --- the report ---

# last_output VAR: the last TAIL_BYTES of output, kept live (see "Run"), into VAR
# (shutdown.sh sources this script for it).
last_output() {
  local -n out=$1
  out=$(cat "$STATE/tail.prev" "$STATE/tail.cur" 2>/dev/null | tail -c "$TAIL_BYTES" | tr -d '\000'
    echo .)
  out=${out%.}
  [[ $out =~ ^$B+ ]] && out=${out:${#BASH_REMATCH[0]}}  # a character cut in two
  return 0
}


# report_json FILE STATUS EXIT_CODE MESSAGE: write the report atomically.
report_json() {
  local tail='' k json t
  now t
  last_output tail
  json="{\"status\": \"$2\", \"exit_code\": $3"
  for k in started_at:"${STARTED_AT:-$t}" finished_at:"$t" instance:"${NAME:-}" \
    zone:"${ZONE:-}" restarts:"${RESTARTS:-0}" output_tail:"$tail" message:"$4"; do
    if [[ $k == restarts:* ]]; then json+=", \"restarts\": ${k#*:}"; continue; fi
    json_quote "${k#*:}"; json+=", \"${k%%:*}\": $REPLY"
  done
  data data_json  # the transfers' tallies
  printf '%s%s%s}\n' "$json" "${REPORT_EXTRA:-}" "$REPLY" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# fresh_token: a new access token of the VM's service account into REPLY.
# jq (from toolbox) parses it once ready, else a regex does: access tokens are
# [A-Za-z0-9._~+/=-], never escaped. Callers run it in a $(...) subshell with
# tracing off, so the token never outlives the request it is for.
fresh_token() {
  local j t=''
  j=$(md instance/service-accounts/default/token) || return 1
  if [[ -e $STATE/jq.ready ]]; then
    t=$(timeout 10 toolbox jq -r .access_token <<<"$j" 2>/dev/null) || t=''
  fi
  [[ $t =~ ^[[:alnum:]._~+/=-]+$ ]] || t=''  # toolbox may have printed more
  if [[ -z $t && $j =~ \"access_token\"[[:space:]]*:[[:space:]]*\"([[:alnum:]._~+/=-]+)\" ]]; then
    t=${BASH_REMATCH[1]}
  fi
  [[ -n $t ]] || { log "no usable token"; return 1; }
  REPLY=$t
}

# post FILE: fetch a fresh token and POST FILE to the callback; prints the
# HTTP status (000: no answer). Run as $(post FILE): the token lives only in
# that subshell, with tracing off, and reaches curl on stdin, never on a
# command line.
post() {
  set +x
  fresh_token || { echo 000; return; }
  printf 'Authorization: Bearer %s\n' "$REPLY" | curl -sS -o /dev/null -w '%{http_code}' \
    --connect-timeout 5 --max-time 30 -H @- -H 'Content-Type: application/json' \
    --data-binary "@$1" "$CALLBACK"
}

# send FILE SECONDS: post FILE until the callback accepts it (2xx) or SECONDS
# pass, backing off from WFGEN_BACKOFF_MS up to WFGEN_BACKOFF_MAX_MS.
send() {
  local end=$((SECONDS + $2)) delay=$BACKOFF code s
  while [[ ! -e $STATE/reported ]]; do
    code=$(post "$1") || true
    if [[ $code == 2?? ]]; then : >"$STATE/reported"; log "report delivered"; return 0; fi
    [[ $code != 404 ]] || { log "callback gone (404): the execution ended"; return 1; }
    if ((SECONDS + delay / 1000 >= end)); then log "report NOT delivered"; return 1; fi
    log "callback answered ${code:-000}; retrying in ${delay}ms"
    printf -v s '%d.%03d' $((delay / 1000)) $((delay % 1000)); sleep "$s"
    delay=$((delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay * 2))
  done
}

# stop_report: the VM is stopping. shutdown.sh reports once it has started;
# before that, whoever takes stop-claim first sends "preempted" or "stopped".
stop_report() {
  [[ ! -e $STATE/stopping ]] || { log "VM stopping: shutdown.sh reports"; return 0; }
  mkdir "$STATE/stop-claim" 2>/dev/null || return 0
  local st=stopped
  [[ $(md instance/preempted 2>/dev/null) != TRUE ]] || st=preempted
  grace_report
  local note=$REPLY
  data upload_outputs || note+="; $REPLY"
  REPORT_EXTRA=$GRACE_JSON report_json "$STATE/stop.json" "$st" null \
    "VM $st while the job ran$note"
  send "$STATE/stop.json" "$STOP_DEADLINE"
}

# --- the stop grace ---

# stop_container: the VM stops while the container runs: SIGTERM, up to GRACE
# (wfgen-stop-grace, 25) seconds to exit (a checkpoint), then SIGKILL. The first
# script to mkdir term-sent signals, another only waits. Sets GRACE_KEPT (true:
# exited within the grace; false: killed; empty: no container) and GRACE_TOOK.
stop_container() {
  local cid rc=0 t0 took
  GRACE=25 GRACE_KEPT='' GRACE_TOOK=0
  read -r GRACE 2>/dev/null <"$STATE/md.stop-grace" || true
  [[ $GRACE =~ ^[0-9]{1,4}$ ]] || GRACE=25
  GRACE=$((10#$GRACE))
  cid=$(cat "$STATE/container.id" 2>/dev/null) || return 0  # no container started
  [[ -n $cid && ! -e $STATE/container.rc ]] || return 0  # none, or it has ended
  t0=${EPOCHREALTIME/[.,]/}
  if mkdir "$STATE/term-sent" 2>/dev/null; then
    log "SIGTERM to the container: it has ${GRACE}s to exit"
    docker kill --signal=TERM "$cid" >/dev/null 2>&1 || true
  fi
  if ((GRACE > 0)); then timeout "$GRACE" docker wait "$cid" >/dev/null 2>&1 || rc=$?
  else rc=124; fi
  if ((rc == 124)); then  # timeout's status: the grace is over
    GRACE_KEPT=false
    log "the container did not exit within ${GRACE}s: SIGKILL"
    docker kill --signal=KILL "$cid" >/dev/null 2>&1 || true
  else
    GRACE_KEPT=true
  fi
  took=$((${EPOCHREALTIME/[.,]/} - t0))
  printf -v GRACE_TOOK '%d.%01d' $((took / 1000000)) $((took / 100000 % 10))
  log "container stopped ${GRACE_TOOK}s after SIGTERM (within the grace: $GRACE_KEPT)"
}

# grace_report: stop_container's outcome for a stop report: the message's ending
# in REPLY, report fields in GRACE_JSON (both empty without a container).
grace_report() {
  REPLY='' GRACE_JSON=''
  [[ -n ${GRACE_KEPT:-} ]] || return 0
  GRACE_JSON=", \"stop_grace_s\": $GRACE, \"exited_in_grace\": $GRACE_KEPT"
  if [[ $GRACE_KEPT == true ]]; then
    REPLY="; the container exited ${GRACE_TOOK}s after SIGTERM, within its ${GRACE}s grace"
  else
    REPLY="; the container did not exit within its ${GRACE}s grace after SIGTERM: killed"
  fi
}

# --- secrets (container.secret_env) ---

# wfgen-secret-env maps env names to projects/P/secrets/S/versions/V (or a
# secret's short name: its latest version in the VM's project). Each value
# is read with the VM's token into SECRET_VALUES (shell memory only: never a
# file, a log line, a command line or the report) and reaches docker through
# its environment (docker_run). Secret Manager: the project attribute
# wfgen-secretmanager-endpoint (the local runtime's), else Google's.
declare -A SECRET_VALUES=()
SECRET_REF='^projects/[A-Za-z0-9._:-]+/secrets/[A-Za-z0-9_-]+/versions/[A-Za-z0-9_-]+$'

# secret_access URL: GET URL with a fresh token; prints the body, a newline and
# the HTTP status (000: no answer). Run as $(secret_access URL), like post.
secret_access() {
  set +x
  fresh_token || { printf '\n000'; return; }
  printf 'Authorization: Bearer %s\n' "$REPLY" | curl -sS --connect-timeout 5 --max-time 30 \
    -H @- -w '\n%{http_code}' "$1" || true
}

# secret_failure NAME REF CODE BODY: the sentence a failed read ends the job with.
secret_failure() {
  local why='' st=''
  [[ $4 =~ \"status\"[[:space:]]*:[[:space:]]*\"([A-Z_]+)\" ]] && st=" ${BASH_REMATCH[1]}"
  if [[ $4 =~ \"message\"[[:space:]]*:[[:space:]]*\"(([^\"\\]|\\.)*)\" ]] \
    && json_unescape "${BASH_REMATCH[1]}"; then why=": $REPLY"; fi
  case $3 in
    403) why=": the VM's service account needs roles/secretmanager.secretAccessor on it" ;;
    404) why=": no such secret or version$why" ;;
    000) why=": no answer from Secret Manager at $SM_URL" ;;
  esac
  REPLY="secret $1 ($2) could not be read: HTTP $3$st$why"
}

# read_secrets: fill SECRET_VALUES and add --env=NAME to run for each secret;
# fail the job (exit 125 path) naming the first one that cannot be read.
read_secrets() {
  local code i name ref out body b64 value want delay tries
  code=$(curl -sS --connect-timeout 2 --max-time 30 --retry 5 --retry-connrefused \
    --retry-delay 1 -H 'Metadata-Flavor: Google' -o "$STATE/md.secret-env" -w '%{http_code}' \
    "$MD/instance/attributes/wfgen-secret-env") || code=000
  [[ $code != 404 ]] || return 0
  [[ $code == 200 ]] || fail "metadata secret-env unreadable (HTTP $code)"
  IFS= read -r -d '' out <"$STATE/md.secret-env" || true
  json_strings "$out" '{' || fail "bad wfgen-secret-env: not a JSON object of strings"
  local refs=("${J[@]}")
  ((${#refs[@]})) || return 0
  set +x  # for good: `bash -x startup.sh` must not print a value either
  SM_URL=$(md project/attributes/wfgen-secretmanager-endpoint 2>/dev/null) \
    || SM_URL=https://secretmanager.googleapis.com
  SM_URL=${SM_URL%/}
  [[ $SM_URL =~ ^https?://[A-Za-z0-9.:-]+$ ]] || fail "bad wfgen-secretmanager-endpoint"
  for ((i = 0; i < ${#refs[@]}; i += 2)); do
    name=${refs[i]} ref=${refs[i + 1]}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "bad wfgen-secret-env: name $name"
    if [[ $ref =~ ^[A-Za-z0-9_-]+$ ]]; then
      [[ -n ${PROJECT_ID:-} ]] || PROJECT_ID=$(md project/project-id) || fail "metadata project-id missing"
      ref=projects/$PROJECT_ID/secrets/$ref/versions/latest
    fi
    [[ $ref =~ $SECRET_REF ]] || fail "bad wfgen-secret-env: $name is not a secret version"
    delay=$BACKOFF
    for ((tries = 1; ; tries++)); do
      out=$(secret_access "$SM_URL/v1/$ref:access")
      code=${out##*$'\n'} body=${out%$'\n'*}
      [[ $code =~ ^[0-9]{3}$ ]] || code=000
      if [[ $code != 000 && $code != 429 && $code != 5?? ]] || ((tries >= 5)); then break; fi
      log "Secret Manager answered $code for $name; retrying in ${delay}ms"
      printf -v out '%d.%03d' $((delay / 1000)) $((delay % 1000)); sleep "$out"
      delay=$((delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay * 2))
    done
    if [[ $code != 200 || $body != *\"payload\"* ]]; then
      secret_failure "$name" "$ref" "$code" "$body"; fail "$REPLY"
    fi
    body=${body//'\u003d'/=} b64=''
    [[ $body =~ \"data\"[[:space:]]*:[[:space:]]*\"([A-Za-z0-9+/=]*)\" ]] && b64=${BASH_REMATCH[1]}
    { value=$(printf '%s' "$b64" | base64 -d && echo .); } 2>/dev/null \
      || fail "secret $name ($ref): the payload is not base64"
    value=${value%.}
    want=${b64%%=*} want=$(((${#b64} * 3 / 4) - ${#b64} + ${#want}))
    ((${#value} == want)) || fail "secret $name ($ref) holds a NUL byte, which an environment variable cannot carry"
    SECRET_VALUES[$name]=$value
    run+=("--env=$name")
  done
  log "read ${#SECRET_VALUES[@]} secret(s) from Secret Manager"
}

# docker_run ARGS...: exec docker with the secrets exported into its own
# environment only (`docker run --env=NAME` takes the value from there). Run
# in the background job's subshell: the agent's own environment stays clean.
docker_run() {
  set +x
  local k
  for k in "${!SECRET_VALUES[@]}"; do export "$k=${SECRET_VALUES[$k]}"; done
  exec docker "$@"
}

# --- data in and out: startup/data.sh (wfgen-data-script) of a job with inputs or
# outputs; DATA_DIR is where they are (scratch_volume: on the Local SSDs).

DATA_DIR=${WFGEN_DATA_DIR:-/var/lib/wfgen-data}
# data FUNCTION ARGS...: data.sh's FUNCTION; nothing (REPLY empty) for other jobs.
data() {
  REPLY=''
  [[ -s $STATE/md.data-script ]] || return 0
  # shellcheck disable=SC1091
  declare -F stop_data >/dev/null || source "$STATE/md.data-script"
  "$@"
}

# --- exits and signals ---

STEP=starting STATUS='' CODE='' MSG='' STOP='' DOCKER_PID='' CALLBACK=''

fail() { STATUS=error CODE=125 MSG=$1; exit 1; }

# on_signal NAME NUMBER: the agent is stopped; the container gets its grace here
# unless shutdown.sh (started first) gives it.
on_signal() {
  STOP=$1
  trap '' TERM INT HUP  # a second signal does not cut the grace short
  [[ -z $DOCKER_PID || -e $STATE/stopping ]] || stop_container
  exit $((128 + $2))
}

# on_exit: the one place a report is made, whatever ended the script.
on_exit() {
  local rc=$?
  set +e  # a signal now (the VM stops) ends the retries; shutdown.sh takes over
  trap 'log "stopped while reporting"; exit 143' TERM INT HUP
  [[ -n $CALLBACK ]] || CALLBACK=$(md instance/attributes/wfgen-callback-url)
  if [[ -n $STOP ]]; then stop_report; return; fi
  [[ -n $STATUS ]] || STATUS=error CODE=125 MSG="agent failed while $STEP (exit $rc)"
  log "job $STATUS: $MSG"
  report_json "$STATE/report.json" "$STATUS" "$CODE" "$MSG"
  send "$STATE/report.json" "$DEADLINE" || give_up
}

# give_up: the report could not be delivered (say, the VM's service account may
# not send callbacks). Power off, so that the workflow's next heartbeat finds the
# VM stopped, a lost attempt, instead of waiting for a report until its timeout.
give_up() {
  local off
  read -ra off <<<"${WFGEN_POWEROFF:-systemctl poweroff}"
  log "powering off: the workflow will see a lost attempt"
  "${off[@]}" || log "power-off failed"
}

# gang_env: a multi-node job's node metadata as WFGEN_NODE_* container env
# (docs/vm-agent.md); nothing without wfgen-num-nodes.
gang_env() {
  local c r m p b h='' i a=instance/attributes/wfgen- n1='^(0|[1-9][0-9]{0,4})$'
  c=$(md ${a}num-nodes 2>/dev/null) || return 0
  if ! { r=$(md ${a}node-rank) && m=$(md ${a}master-addr) && p=$(md ${a}master-port); } \
    || ! [[ $c =~ $n1 && $r =~ $n1 && $p =~ $n1 && $m =~ ^[a-z][-a-z0-9]*-0(\.[-a-z0-9]+)+$ ]] \
    || ((r >= c)); then fail "bad or missing node metadata"; fi
  # node i's name: the master's first label with rank i, then the master's domain
  # (a project id may itself end in -0: cut at the first dot, never search for -0.)
  b=${m%%.*}
  for ((i = 0; i < c; i++)); do h+=${WFGEN_NODE_ADDRESS:-${b%-0}-$i.${m#*.}}$'\n'; done
  m=${WFGEN_NODE_ADDRESS:-$m}
  log "node $r of $c (master $m:$p)"
  run+=("--env=WFGEN_NODE_RANK=$r" "--env=WFGEN_NUM_NODES=$c" "--env=WFGEN_MASTER_ADDR=$m"
    "--env=WFGEN_MASTER_PORT=$p" "--env=WFGEN_NODE_HOSTS=${h%$'\n'}"
    "--env=WFGEN_GPUS_PER_NODE=$n")
}

# scratch_volume: wfgen-local-ssd N Local SSDs (RAID 0 if N > 1) as /scratch
# and DATA_DIR; a local VM gives a directory (WFGEN_SCRATCH_ROOT).
scratch_volume() {
  local n d=${WFGEN_SCRATCH_ROOT:-/mnt/disks/scratch} v=/dev/md/scratch s=()
  [[ -f $STATE/md.local-ssd ]] || return 0
  n=$(<"$STATE/md.local-ssd")
  [[ $n =~ ^[1-9][0-9]?$ ]] || fail "bad wfgen-local-ssd"
  if [[ -z ${WFGEN_SCRATCH_ROOT:-} ]] && ! mountpoint -q "$d"; then
    s=(/dev/disk/by-id/google-local-nvme-ssd-*)
    ((${#s[@]} == n)) || fail "expected $n Local SSDs, found ${#s[@]}"
    ((n > 1)) || v=${s[0]}
    [[ -e $v ]] || mdadm -C "$v" -l 0 -n "$n" --run "${s[@]}" >&2 || fail "mdadm failed"
    blkid "$v" >/dev/null || mkfs.ext4 -Fq "$v" >&2 || fail "mkfs failed"
    { mkdir -p "$d" && mount -o discard "$v" "$d"; } || fail "could not mount $v"
    # and DATA_DIR
    { mkdir -p "$d/.data" "$DATA_DIR" && mount --bind "$d/.data" "$DATA_DIR"; } \
      || fail "could not put $DATA_DIR on the Local SSDs"
  fi
  { mkdir -p "$d" && chmod 1777 "$d"; } || fail "could not make $d"
  run+=("--volume=$d:/scratch" --env=WFGEN_SCRATCH_DIR=/scratch)
}

# workdir_volume: wfgen-workdir (a tar.gz) by the data step, unpacked at /workdir.
workdir_volume() {
  local u w=$DATA_DIR/.workdir
  [[ -f $STATE/md.workdir ]] || return 0
  u=$(<"$STATE/md.workdir")
  [[ $u =~ ^gs://[a-z0-9][-a-z0-9_.]+/[^[:cntrl:]]*[^/]$ && -s $STATE/md.data-script ]] \
    || fail "bad wfgen-workdir"
  data json_map .workdir.tgz "$u"
  data transfer download "$REPLY" || fail "workdir: $REPLY"
  { rm -rf "$w" && mkdir -p "$w" && tar -xzf "$DATA_DIR/.workdir.tgz" -C "$w" \
    --no-same-owner && rm -f "$DATA_DIR/.workdir.tgz"; } || fail "could not unpack $u"
  log "workdir: $u"
  run+=("--volume=$w:/workdir" --workdir=/workdir)
}

# --- the job ---

# identity_env: docker --env flags in IDENTITY: WFGEN_EXECUTION_ID and
# WFGEN_CHECKPOINT_DIR (the same on every attempt), WFGEN_ATTEMPT (1, 2, ...),
# WFGEN_RESTARTS (reboots within this attempt).
identity_env() {
  local k v
  IDENTITY=("--env=WFGEN_RESTARTS=$RESTARTS")
  for k in execution-id:WFGEN_EXECUTION_ID attempt:WFGEN_ATTEMPT \
    checkpoint-dir:WFGEN_CHECKPOINT_DIR; do
    [[ -f $STATE/md.${k%%:*} ]] || continue
    IFS= read -r -d '' v <"$STATE/md.${k%%:*}" || true
    v=${v%$'\n'}
    [[ -n $v ]] && IDENTITY+=("--env=${k#*:}=$v")
  done
  return 0
}

main() {
  mkdir -p "$STATE"
  rm -rf "$STATE/stopping" "$STATE/stop-claim" "$STATE/jq.ready"
  if [[ -e $STATE/reported ]]; then log "already reported; nothing to do"; return 0; fi
  [[ -n ${HOME:-} && -w $HOME ]] || export HOME=$STATE/home  # COS: /root is read-only
  mkdir -p "$HOME"
  { toolbox apt-get install -y jq && : >"$STATE/jq.ready"; } </dev/null >&2 2>&1 &
  if [[ -e $STATE/report.json ]]; then  # finished before a reboot: deliver, never rerun
    CALLBACK=$(md instance/attributes/wfgen-callback-url)
    send "$STATE/report.json" "$DEADLINE" || give_up; return
  fi
  trap on_exit EXIT
  trap 'on_signal TERM 15' TERM; trap 'on_signal INT 2' INT; trap 'on_signal HUP 1' HUP

  STEP="reading metadata"
  local k a=() v image n i run=(run --rm --network=host --ipc=host) rc=0
  local -A m=()
  for k in image command args env accelerator-count callback-url; do
    a+=("$MD/instance/attributes/wfgen-$k" -o "$STATE/md.$k")
  done
  rm -f "$STATE"/md.*
  curl -sS --connect-timeout 2 --max-time 30 --retry 5 --retry-connrefused --retry-delay 1 \
    -f -H 'Metadata-Flavor: Google' "${a[@]}" "$MD/instance/name" -o "$STATE/md.name" \
    "$MD/instance/zone" -o "$STATE/md.zone" || true
  a=()  # optional: absent (a quiet 404) when the workflow does not set them
  for k in stop-grace execution-id attempt checkpoint-dir inputs outputs sync local-ssd \
    data-script workdir; do
    a+=("$MD/instance/attributes/wfgen-$k" -o "$STATE/md.$k")
  done
  curl -sf --connect-timeout 2 --max-time 10 -H 'Metadata-Flavor: Google' "${a[@]}" || true
  for k in image command args env accelerator-count callback-url name zone; do
    [[ -f $STATE/md.$k ]] || fail "metadata $k missing"
    IFS= read -r -d '' v <"$STATE/md.$k" || true
    m[$k]=$v
  done
  CALLBACK=${m[callback-url]%$'\n'} NAME=${m[name]%$'\n'} ZONE=${m[zone]##*/}
  image=${m[image]%$'\n'}
  RESTARTS=$(cat "$STATE/restarts" 2>/dev/null || echo 0)
  if [[ -e $STATE/started ]]; then RESTARTS=$((RESTARTS + 1)); echo "$RESTARTS" >"$STATE/restarts"; fi
  identity_env

  STEP="decoding the container description"
  [[ -n $image && $image != -* ]] || fail "bad wfgen-image"
  json_strings "${m[env]}" '{' || fail "bad wfgen-env: not a JSON object of strings"
  for ((i = 0; i < ${#J[@]}; i += 2)); do
    [[ -n ${J[i]} && ${J[i]} != *=* ]] || fail "bad wfgen-env: key ${J[i]}"
    run+=("--env=${J[i]}=${J[i + 1]}")
  done
  json_strings "${m[command]}" '[' || fail "bad wfgen-command: not a JSON array of strings"
  local cmd=("${J[@]}")
  json_strings "${m[args]}" '[' || fail "bad wfgen-args: not a JSON array of strings"
  local args=("${J[@]}")
  run+=("${IDENTITY[@]}")  # after the job's own env: these win
  ((${#cmd[@]} == 0)) || run+=("--entrypoint=${cmd[0]}")
  n=${m[accelerator-count]//[$' \t\r\n']/}
  [[ $n =~ ^[0-9]+$ ]] || fail "bad wfgen-accelerator-count"
  gang_env
  STEP="mounting the Local SSD scratch"
  scratch_volume

  STEP="reading secrets"
  read_secrets  # before the driver and the pull: a wrong secret fails in seconds

  STEP="downloading the workdir"
  workdir_volume
  STEP="downloading inputs"
  data download_inputs  # a missing input fails before anything runs
  data output_flags

  if ((n > 0)); then
    STEP="installing the GPU driver"
    cos-extensions install gpu >&2 || fail "cos-extensions install gpu failed"
    if [[ ${WFGEN_NVIDIA_REMOUNT:-1} == 1 ]]; then
      { mount --bind /var/lib/nvidia /var/lib/nvidia && mount -o remount,exec /var/lib/nvidia; } \
        || fail "could not mount /var/lib/nvidia"
    fi
    run+=(--volume=/var/lib/nvidia/lib64:/usr/local/nvidia/lib64
      --volume=/var/lib/nvidia/bin:/usr/local/nvidia/bin
      --device=/dev/nvidia-uvm --device=/dev/nvidiactl)
    for ((i = 0; i < n; i++)); do run+=("--device=/dev/nvidia$i"); done
  fi

  STEP="pulling the image"
  k=${image%%/*}
  if [[ $image == */* && ($k == gcr.io || $k == *.gcr.io || $k == *-docker.pkg.dev) ]]; then
    docker-credential-gcr configure-docker --registries="$k" >&2 \
      || fail "docker-credential-gcr configure-docker failed for $k"
  fi
  for ((i = 1; ; i++)); do
    docker pull "$image" >&2 && break
    ((i < ${WFGEN_PULL_TRIES:-5})) || fail "docker pull failed: $image"
    sleep $((i * i))  # 1, 4, 9, 16 s: the network may still be coming up
  done

  # Run. Output goes to our stdout (the VM's log) through tee and a FIFO to
  # split: live pieces of TAIL_BYTES, tail.cur and the one before, tail.prev.
  # docker runs in the background so that `wait` returns at once on a signal.
  STEP="running the container"
  rm -f "$STATE/out.fifo" "$STATE"/tail.* "$STATE/container.id" "$STATE/container.rc"
  rm -rf "$STATE/term-sent"
  mkfifo "$STATE/out.fifo"
  # shellcheck disable=SC2016
  WFGEN_TAIL_DIR=$STATE split -b "$TAIL_BYTES" -a 9 --filter='mv -f "$WFGEN_TAIL_DIR/tail.cur" \
    "$WFGEN_TAIL_DIR/tail.prev" 2>/dev/null; exec cat >"$WFGEN_TAIL_DIR/tail.cur"' \
    - "$STATE/piece." <"$STATE/out.fifo" &
  local tail_pid=$!
  now STARTED_AT
  echo "$STARTED_AT" >"$STATE/started"
  log "docker run (restarts: $RESTARTS)"
  data sync_outputs
  docker_run "${run[@]}" --cidfile="$STATE/container.id" "$image" "${cmd[@]:1}" \
    "${args[@]}" > >(exec tee "$STATE/out.fifo") 2>&1 &
  DOCKER_PID=$!
  wait "$DOCKER_PID" || rc=$?
  DOCKER_PID=
  wait "$tail_pid" || true
  echo "$rc" >"$STATE/container.rc"  # its output is all in the tail now
  log "container exited $rc"

  if [[ -e $STATE/stopping ]] && { ((rc != 0)) || [[ -e $STATE/term-sent ]]; }; then
    STOP=shutdown; exit 0  # stopped by the shutdown (even if it then exited 0): it reports
  fi
  if ((rc > 128)) && [[ $(md instance/preempted 2>/dev/null) == TRUE ]]; then
    STOP=preempted; exit 0
  fi
  STEP="uploading outputs"
  CODE=$rc
  if ! data upload_outputs; then  # the job fails, naming the object, even after exit 0
    STATUS=failed MSG="container exited $rc; $REPLY"
    ((rc)) || STATUS=error CODE=125 MSG="container exited 0, but $REPLY"
    return
  fi
  case $rc in
    0) STATUS=succeeded MSG="container exited 0" ;;
    125) STATUS=error MSG="docker run could not run the container (exit 125)" ;;
    *) STATUS=failed MSG="container exited $rc"
      ((rc <= 128 || rc > 128 + 64)) || MSG+=" (killed by signal $((rc - 128)))" ;;
  esac
}

# Sourcing (tests) defines the functions only; running it (as a file, with
# bash -c or on stdin) runs the job.
if [[ ${BASH_SOURCE[0]:-$0} == "$0" ]]; then main "$@"; fi
