#!/bin/bash
# wfgen VM agent: the shutdown script. Compute Engine runs it, best effort and
# with about 30 s, when the VM stops or is preempted. It tells the workflow at
# once instead of leaving it to notice the VM is gone; see docs/vm-agent.md.
#
# - marks the state dir "stopping", so startup.sh does not report the container
#   that the shutdown stops as a failed (or finished) job;
# - a running container gets SIGTERM and its grace (wfgen-stop-grace, 25 s) to
#   exit, e.g. to save a checkpoint, then SIGKILL (startup.sh's stop_container);
# - does nothing if a report was already delivered ("reported"), or when the
#   VM reboots (systemd has a reboot.target job): the job resumes after boot;
# - a finished job whose report is still being retried: sends that report;
# - else (unless startup.sh already claimed it) POSTs {"status": "preempted"}
#   when instance/preempted is TRUE, else "stopped", with exit_code null, the
#   job's last output and whether the container exited within its grace.
# Shares only the state dir with startup.sh. Knobs, as in startup.sh:
# GCE_METADATA_HOST, WFGEN_STATE_DIR, WFGEN_STOP_DEADLINE (seconds, 20),
# WFGEN_BACKOFF_MS, WFGEN_BACKOFF_MAX_MS.
set -euo pipefail
export LC_ALL=C TZ=UTC

MD=http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1
STATE=${WFGEN_STATE_DIR:-/var/lib/wfgen}
DELAY=${WFGEN_BACKOFF_MS:-1000}

log() { printf 'wfgen-shutdown: %s\n' "$*" >&2; }
md() { curl -sSf --connect-timeout 2 --max-time 5 -H 'Metadata-Flavor: Google' "$MD/$1"; }

mkdir -p "$STATE"
: >"$STATE/stopping"
[[ ! -e $STATE/reported ]] || { log "already reported"; exit 0; }
# The container's grace, by startup.sh's code (sourced in a subshell, which
# defines its functions only): the message's ending, a newline, report fields.
grace=''
if [[ ! -e $STATE/report.json ]]; then
  # shellcheck disable=SC1090
  grace=$(source <(md instance/attributes/startup-script) && stop_container &&
    grace_report && printf '%s\n%s' "$REPLY" "$GRACE_JSON") || grace=''
  # the container is gone: let startup.sh write the last of its output (<= 2 s)
  for _ in {1..20}; do [[ -z $grace || -e $STATE/container.rc ]] && break; sleep 0.1; done
fi
# The outputs after the grace (data.sh's stop_data): the message's ending, the data.
# shellcheck disable=SC1090
data=$(source <(md instance/attributes/startup-script) && data stop_data) || data=''
upload_note=${data%%$'\n'*} data=${data#*$'\n'}
upload_note=${upload_note//[^a-zA-Z0-9 .,:;\/_*?=()-]/}
[[ $data =~ ^(,\ \"data\":\ \{[a-z0-9\"\ :,.{}]*\})?$ ]] || data=''
END=$((SECONDS + ${WFGEN_STOP_DEADLINE:-20}))  # report retries start after the grace
# A guest reboot is no stop: the job resumes at the next boot (restarts + 1).
if timeout 3 systemctl list-jobs --no-legend 2>/dev/null | grep -q '^ *[0-9]* *reboot\.target'; then
  log "rebooting: the job runs again after the boot"; exit 0
fi
if [[ -e $STATE/report.json ]]; then
  body=$STATE/report.json  # finished; its delivery may not be done yet
elif mkdir "$STATE/stop-claim" 2>/dev/null; then
  st=stopped
  [[ $(md instance/preempted || true) != TRUE ]] || st=preempted
  name=$(md instance/name || true) zone=$(md instance/zone || true)
  printf -v now '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  started=$(cat "$STATE/started" 2>/dev/null || echo "$now")
  # The job's last output, as a JSON string: startup.sh (sourced in a subshell,
  # which defines its functions only) keeps and quotes it.
  # shellcheck disable=SC1090,SC2154
  tail=$(source <(md instance/attributes/startup-script) && last_output t && json_quote "$t" &&
    printf '%s' "$REPLY") || true
  [[ $tail == \"*\" && $tail != *$'\n'* ]] || tail='""'
  note=${grace%%$'\n'*} extra=${grace#*$'\n'}
  [[ $note =~ ^[a-zA-Z0-9.,:\;\ ]*$ && $extra =~ ^(, \"[a-z_]+\": [a-z0-9]+)*$ ]] ||
    note='' extra=''
  # Instance and zone names are [a-z0-9-]: no JSON escaping needed.
  printf '{"status": "%s", "exit_code": null, "started_at": "%s", "finished_at": "%s",
 "instance": "%s", "zone": "%s", "restarts": %d, "output_tail": %s, "message": "VM %s%s%s"%s%s}\n' \
    "$st" "$started" "$now" "${name//[^a-z0-9-]/}" "${zone##*/}" \
    "$(cat "$STATE/restarts" 2>/dev/null || echo 0)" "$tail" "$st" "$note" "$upload_note" \
    "$extra" "$data" \
    >"$STATE/stop.json"
  body=$STATE/stop.json
else
  log "startup.sh is reporting the stop"; exit 0
fi

# post: a fresh token (in this subshell only, never traced, never on a command
# line) and one POST; prints the HTTP status.
post() {
  set +x
  local j
  j=$(md instance/service-accounts/default/token) || return 0
  [[ $j =~ \"access_token\"[[:space:]]*:[[:space:]]*\"([[:alnum:]._~+/=-]+)\" ]] || return 0
  printf 'Authorization: Bearer %s\n' "${BASH_REMATCH[1]}" | curl -sS -o /dev/null \
    -w '%{http_code}' --connect-timeout 3 --max-time 10 -H @- \
    -H 'Content-Type: application/json' --data-binary "@$body" "$url"
}

url=$(md instance/attributes/wfgen-callback-url)
while [[ ! -e $STATE/reported ]]; do
  code=$(post) || true
  if [[ $code == 2?? ]]; then : >"$STATE/reported"; log "reported"; exit 0; fi
  [[ $code != 404 ]] || { log "callback gone (404): the execution ended"; exit 1; }
  ((SECONDS + DELAY / 1000 < END)) || { log "report NOT delivered (${code:-000})"; exit 1; }
  printf -v s '%d.%03d' $((DELAY / 1000)) $((DELAY % 1000)); sleep "$s"
  DELAY=$((DELAY * 2 > ${WFGEN_BACKOFF_MAX_MS:-30000} ? ${WFGEN_BACKOFF_MAX_MS:-30000} : DELAY * 2))
done
