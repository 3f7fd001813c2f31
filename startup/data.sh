#!/bin/bash
# wfgen VM agent: a job's data in and out (inputs, outputs), sourced by
# startup.sh (and shutdown.sh) from the metadata wfgen-data-script of a job that
# has them; it uses startup.sh's md, log, fail, json_strings, json_quote and
# DATA_DIR. See docs/vm-agent.md.
#
# wfgen-inputs / wfgen-outputs: JSON objects NAME -> gs:// URI; wfgen-sync: NAME ->
# seconds (outputs uploaded while the container runs). Each NAME is DATA_DIR/NAME
# (a folder for a folder or wildcard URI, else a file), mounted into the container
# at the same path, its path in $NAME. The transfer step: WFGEN_TRANSFER (a
# command: the local runtime's host step, wfgen.backends.cloud_transfer), else
# `gcloud storage` in Google's cloud-sdk image pinned by digest (TRANSFER_IMAGE),
# with the VM's service account (metadata server) and the Storage endpoint of the
# project attribute wfgen-storage-endpoint (the local runtime's), else Google's.
TRANSFER_IMAGE=${WFGEN_TRANSFER_IMAGE:-gcr.io/google.com/cloudsdktool/google-cloud-cli@sha256:39f4c48c083fb1d8d182eedc7de97545980afb646b1afdfec61a3f560969bc96}
URI_RE='^gs://[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]/[^[:cntrl:]]*$'

# data_map KEY: the metadata map wfgen-KEY (saved by main) into array J; 1 if absent.
data_map() {
  local v i
  [[ -f $STATE/md.$1 ]] || return 1
  IFS= read -r -d '' v <"$STATE/md.$1" || true
  json_strings "$v" '{' || fail "bad wfgen-$1: not a JSON object of strings"
  for ((i = 0; i < ${#J[@]}; i += 2)); do
    [[ ${J[i]} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "bad wfgen-$1: name ${J[i]}"
    [[ $1 == sync ]] || [[ ${J[i + 1]} =~ $URI_RE && ${J[i + 1]} != *'/../'* ]] \
      || fail "bad wfgen-$1: ${J[i]} is not a gs:// URI"
  done
}

# storage_env: the transfer's endpoint: STORAGE_ENDPOINT (empty: Google's).
storage_env() {
  [[ -n ${STORAGE_ENDPOINT+set} ]] && return 0
  STORAGE_ENDPOINT=$(md project/attributes/wfgen-storage-endpoint 2>/dev/null) || STORAGE_ENDPOINT=
  STORAGE_ENDPOINT=${STORAGE_ENDPOINT%/}
  [[ -z $STORAGE_ENDPOINT || $STORAGE_ENDPOINT =~ ^https?://[A-Za-z0-9.:-]+$ ]] \
    || { log "bad wfgen-storage-endpoint: Google's is used"; STORAGE_ENDPOINT=; }
}

# json_map NAME URI...: a JSON object of the pairs into REPLY.
json_map() {
  local out='{' sep=''
  while (($#)); do
    json_quote "$1"; out+="$sep$REPLY: "; json_quote "$2"; out+=$REPLY sep=', '
    shift 2
  done
  REPLY="$out}"
}

# transfer DIRECTION MAP [MANIFEST]: one run of the step (download|upload; MAP a
# JSON object NAME -> URI); its tally {objects, bytes, seconds} into REPLY, or its
# error (naming the URI and the status) into REPLY and status 1. Logs the bytes
# moved every 5 s while it runs.
transfer() {
  local dir=$1 map=$2 out=$STATE/transfer.$BASHPID err=$STATE/transfer-err.$BASHPID rc=0
  local pid t0=$SECONDS
  storage_env
  mkdir -p "$DATA_DIR"
  if [[ -n ${WFGEN_TRANSFER:-} && -z ${WFGEN_GCLOUD:-} ]]; then
    local cmd; read -ra cmd <<<"$WFGEN_TRANSFER"
    STORAGE_EMULATOR_HOST=$STORAGE_ENDPOINT "${cmd[@]}" "$dir" "$DATA_DIR" "$map" ${3:+"$3"} \
      >"$out" 2>"$err" &
  else
    gcloud_transfer "$dir" "$map" >"$out" 2>"$err" &
  fi
  pid=$!
  while ! wait_for "$pid" 5; do
    files_in "$DATA_DIR"
    log "${dir}ing: ${REPLY#* } bytes in $DATA_DIR after $((SECONDS - t0))s"
  done
  wait "$pid" || rc=$?
  if ((rc == 0)) && [[ $(<"$out") =~ \"objects\":\ ([0-9]+),\ \"bytes\":\ ([0-9]+),\ \"seconds\":\ ([0-9.]+) ]]; then
    printf -v REPLY '{"objects": %d, "bytes": %d, "seconds": %s}' "${BASH_REMATCH[1]}" \
      "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    rm -f "$out" "$err"; return 0
  fi
  REPLY=$(tail -c 600 "$err" | tr '\n' ' ')
  REPLY=${REPLY#cloud_transfer: }
  [[ -n ${REPLY// /} ]] || REPLY="the transfer step exited $rc"
  rm -f "$out" "$err"; return 1
}

# files_in PATH: "FILES BYTES" of the regular files at or below PATH into REPLY.
files_in() {
  REPLY=$(find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{n++; s += $1} END {print n + 0, s + 0}')
}

# wait_for PID SECONDS: 0 once PID has ended, 1 after SECONDS while it runs.
wait_for() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# gcloud_transfer DIRECTION MAP: the step on a real VM, `gcloud storage` in the
# pinned cloud-sdk image (WFGEN_GCLOUD: a gcloud to run instead, for tests): cp
# for files and wildcards, cp -r (downloads) and rsync -r (uploads: changed files
# only) for folders. Prints the tally as transfer() reads it; errors name the URI.
gcloud_transfer() {
  local dir=$1 i name uri target files=0 bytes=0 t0=$SECONDS err last status
  local -a g
  if [[ -n ${WFGEN_GCLOUD:-} ]]; then read -ra g <<<"$WFGEN_GCLOUD"
  else
    g=(docker run --rm --network=host "--volume=$DATA_DIR:$DATA_DIR")
    [[ -z $STORAGE_ENDPOINT ]] || g+=("--env=CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=$STORAGE_ENDPOINT/storage/v1/")
    g+=("$TRANSFER_IMAGE" gcloud)
  fi
  [[ -z $STORAGE_ENDPOINT || -z ${WFGEN_GCLOUD:-} ]] \
    || export CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=$STORAGE_ENDPOINT/storage/v1/
  json_strings "$2" '{' || { echo "bad transfer map" >&2; return 2; }
  local pairs=("${J[@]}") failed=''
  err=$STATE/gcloud-err.$BASHPID
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    name=${pairs[i]} uri=${pairs[i + 1]} target=$DATA_DIR/$name
    if [[ $dir == download ]]; then
      if [[ $uri == */ ]]; then
        mkdir -p "$target"; "${g[@]}" storage cp -r "$uri*" "$target/" 2>"$err"
      elif [[ ${uri##*/} == *[*?[]* ]]; then
        mkdir -p "$target"; "${g[@]}" storage cp "$uri" "$target/" 2>"$err"
      else
        "${g[@]}" storage cp "$uri" "$target" 2>"$err"
      fi
    elif [[ $uri == */ ]]; then
      [[ -d $target ]] || continue
      "${g[@]}" storage rsync -r "$target" "$uri" 2>"$err"
    else
      [[ -f $target ]] || continue
      "${g[@]}" storage cp "$target" "$uri" 2>"$err"
    fi || {
      last=$(grep -m 1 ERROR "$err" || grep -v '^ *$' "$err" | tail -n 1)
      last=${last#ERROR: } last=${last%:}
      case $(<"$err") in
        *"matched no objects"* | *404* | *"not found"* | *NotFound*) status=404 ;;
        *403* | *AccessDenied* | *"does not have"* | *Forbidden*) status=403 ;;
        *) status='' ;;
      esac
      failed=${failed:-"$( [[ $dir == download ]] && echo input || echo output) $uri: ${status:+HTTP $status: }$last"}
      continue
    }
    [[ -e $target ]] || continue
    files_in "$target"
    files=$((files + ${REPLY% *})) bytes=$((bytes + ${REPLY#* }))
  done
  rm -f "$err"
  [[ -z $failed ]] || { echo "$failed" >&2; return 1; }
  printf '{"objects": %d, "bytes": %d, "seconds": %d}\n' "$files" "$bytes" $((SECONDS - t0))
}

# download_inputs: every input before the container starts; its volume and $NAME
# flags added to run; a missing input fails the job (exit 125 path) naming it.
download_inputs() {
  local i
  rm -rf "$STATE/upload-claim" "$STATE"/data.* "$STATE"/sync.*  # this boot's run
  data_map inputs || return 0
  local pairs=("${J[@]}")
  ((${#pairs[@]})) || return 0
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do run+=("--env=${pairs[i]}=$DATA_DIR/${pairs[i]}"); done
  run+=("--volume=$DATA_DIR:$DATA_DIR")
  log "downloading $((${#pairs[@]} / 2)) input(s) to $DATA_DIR"
  json_map "${pairs[@]}"
  transfer download "$REPLY" || fail "$REPLY"
  printf '%s\n' "$REPLY" >"$STATE/data.in"
  log "inputs downloaded: $REPLY"
}

# output_flags: the outputs' $NAME flags (and the data volume) added to run.
output_flags() {
  local i
  data_map outputs || return 0
  for ((i = 0; i < ${#J[@]}; i += 2)); do run+=("--env=${J[i]}=$DATA_DIR/${J[i]}"); done
  mkdir -p "$DATA_DIR"
  [[ " ${run[*]} " == *" --volume=$DATA_DIR:$DATA_DIR "* ]] || run+=("--volume=$DATA_DIR:$DATA_DIR")
}

# sync_outputs: for each output with a wfgen-sync interval, a background loop that
# uploads its changed files at that interval while the container runs (SYNC_PIDS).
SYNC_PIDS=()
sync_outputs() {
  local i name every
  data_map sync || return 0
  local syncs=("${J[@]}")
  data_map outputs || return 0
  local -A outs=()
  for ((i = 0; i < ${#J[@]}; i += 2)); do outs[${J[i]}]=${J[i + 1]}; done
  for ((i = 0; i < ${#syncs[@]}; i += 2)); do
    name=${syncs[i]} every=${syncs[i + 1]}
    [[ -n ${outs[$name]-} && $every =~ ^[1-9][0-9]{0,6}$ ]] || continue
    json_map "$name" "${outs[$name]}"
    local map=$REPLY
    (trap - EXIT; trap 'exit 0' TERM
      while sleep "$every"; do
        if transfer upload "$map" "$STATE/sync.$name"; then log "synced $name: $REPLY"
        else log "sync of $name failed (retried in ${every}s): $REPLY"; fi
      done) &
    SYNC_PIDS+=($!)
  done
}

# upload_outputs: every output, once (the first caller claims it: the agent after
# the container, or the shutdown script after the stop grace). data.out holds the
# tally; 1 with the error in REPLY when an upload failed.
upload_outputs() {
  local pid
  for pid in "${SYNC_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SYNC_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SYNC_PIDS=()
  [[ -f $STATE/md.outputs && -e $STATE/started ]] || return 0  # the container ran
  mkdir "$STATE/upload-claim" 2>/dev/null || return 0
  data_map outputs || return 0
  ((${#J[@]})) || return 0
  log "uploading $((${#J[@]} / 2)) output(s) from $DATA_DIR"
  local ups=("${J[@]}") i objects=0 bytes=0 t0=${EPOCHREALTIME/[.,]/} took failed=''
  for ((i = 0; i < ${#ups[@]}; i += 2)); do  # each with its manifest: what a sync sent
    json_map "${ups[i]}" "${ups[i + 1]}"
    if transfer upload "$REPLY" "$STATE/sync.${ups[i]}"; then
      [[ $REPLY =~ \"objects\":\ ([0-9]+),\ \"bytes\":\ ([0-9]+) ]]
      objects=$((objects + BASH_REMATCH[1])) bytes=$((bytes + BASH_REMATCH[2]))
    else
      failed=${failed:-$REPLY}
    fi
  done
  took=$((${EPOCHREALTIME/[.,]/} - t0))
  printf -v REPLY '{"objects": %d, "bytes": %d, "seconds": %d.%03d}' "$objects" "$bytes" \
    $((took / 1000000)) $((took / 1000 % 1000))
  printf '%s\n' "$REPLY" >"$STATE/data.out"
  if [[ -z $failed ]]; then log "outputs uploaded: $REPLY"; return 0; fi
  REPLY="upload failed: $failed"
  log "$REPLY"; return 1
}

# data_json: the report's data field (", \"data\": {...}") into REPLY, from the
# tallies the transfers left (empty for a job without inputs and outputs).
data_json() {
  local k v out='' sep=''
  REPLY=''
  [[ -f $STATE/md.inputs || -f $STATE/md.outputs ]] || return 0
  for k in in out; do
    v=$(cat "$STATE/data.$k" 2>/dev/null) || v=''
    [[ $v =~ ^\{\"objects\":\ [0-9]+,\ \"bytes\":\ [0-9]+,\ \"seconds\":\ [0-9.]+\}$ ]] \
      || v='{"objects": 0, "bytes": 0, "seconds": 0}'
    out+="$sep\"$k\": $v" sep=', '
  done
  REPLY=", \"data\": {$out}"
}

# stop_data: shutdown.sh's part after the stop grace: the outputs uploaded (when
# the job ran and has not reported), then two lines: the message's ending (the
# upload's failure) and the report's data field.
stop_data() {
  local note=''
  if [[ ! -e $STATE/report.json && -e $STATE/container.id ]]; then
    upload_outputs >&2 || note="; $REPLY"
  fi
  data_json
  printf '%s\n%s' "$note" "$REPLY"
}
