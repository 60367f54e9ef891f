#!/usr/bin/env bash
# System packages gemwatch needs beyond PyPI: ffmpeg (ffprobe, the RTSP test server),
# npm (one-time model provisioning), opencv-doc (the demo's vtest.avi), chromium (browser tests).
set -euo pipefail
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v npm >/dev/null || need+=(npm)
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || need+=(opencv-doc)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "gemwatch: please install these system packages: ${need[*]}" >&2
  exit 0
fi
echo "gemwatch: installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
