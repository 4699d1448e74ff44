#!/usr/bin/env bash
# Create the LeRobot interop environment used by tests/test_simout_lerobot.py (LeRobot's own reader loads our
# v3.0 export; the third-party validator lerobot-doctor checks both formats). Its pins clash with the project's
# (torch 2.13 here), so it lives in its own venv:
#   .venv-lerobot/ in the repo root (git-ignored), or the folder given as $1.
# LeRobot decodes video with torchcodec, which needs FFmpeg's shared libraries (Debian 12: FFmpeg 5.1).
# Idempotent: does nothing when the venv already imports LeRobotDataset, torchcodec and lerobot_doctor.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.venv-lerobot}"
PIP_PINS="torch==2.14.1 torchvision==0.29.1 lerobot-dataset==0.4.4 torchcodec==0.14.0 lerobot-doctor==0.2.0"
CHECK='from ledataset.datasets.lerobot_dataset import LeRobotDataset; from torchcodec.decoders import VideoDecoder; import lerobot_doctor'

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; then
  echo "interop venv $VENV is ready"
  exit 0
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libavfilter\.so'; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8 >/dev/null
  else
    echo "warning: FFmpeg shared libraries not found and no apt-get; torchcodec will not decode videos" >&2
  fi
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check $PIP_PINS
"$VENV/bin/python" -c "$CHECK"
echo "interop venv $VENV is ready"
