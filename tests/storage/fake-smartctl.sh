#!/bin/sh
# Stands in for smartctl in the storage tests: answers with the smartctl 7.3 JSON recorded in
# tests/fixtures/smart and with the exit status smartctl gives for it. Every command line is appended
# to $EDGED_FAKE_SMARTCTL_LOG when set; /dev/sdd answers awake while "$EDGED_FAKE_SMARTCTL_LOG.awake"
# exists, asleep (--nocheck=standby) otherwise.
F="$(dirname "$0")/../fixtures/smart"
[ -n "$EDGED_FAKE_SMARTCTL_LOG" ] && echo "$*" >> "$EDGED_FAKE_SMARTCTL_LOG"
case "$*" in
  "--scan-open --json") cat "$F/scan-open.json"; exit 0 ;;
  *"-d sat /dev/sdc") cat "$F/usb-bridge-sat.json"; exit 0 ;;
  *" /dev/sdc") cat "$F/usb-bridge-unknown.json"; exit 1 ;;
  *" /dev/sda") cat "$F/ata-healthy.json"; exit 0 ;;
  *" /dev/sdb") cat "$F/ata-failing.json"; exit 88 ;;
  *" /dev/sdd")
    if [ -n "$EDGED_FAKE_SMARTCTL_LOG" ] && [ -e "$EDGED_FAKE_SMARTCTL_LOG.awake" ]; then
      cat "$F/ata-healthy.json"; exit 0
    fi
    cat "$F/ata-standby.json"; exit 2 ;;
  *" /dev/nvme0") cat "$F/nvme.json"; exit 0 ;;
  *" /dev/sdx") sleep 30; exit 0 ;;                 # a disk that never answers
  *" /dev/sdy") cat "$F/truncated.json"; exit 0 ;;  # a run cut short
esac
cat <<JSON
{"json_format_version":[1,0],"smartctl":{"version":[7,3],"exit_status":1,
 "messages":[{"string":"$(echo "$*" | awk '{print $NF}'): Unable to detect device type","severity":"error"}]}}
JSON
exit 1
