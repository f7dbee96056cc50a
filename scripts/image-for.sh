#!/usr/bin/env bash
# Print the image to use for a Debian suite: the user's override when set,
# otherwise a locally built one (built on first use, then cached by hash).
#   image-for.sh SUITE          the test image, with sudo
#   image-for.sh SUITE plain    without sudo, as a minimal Debian install
set -euo pipefail
suite="${1:?usage: image-for.sh bookworm|trixie [plain]}"
flavour="${2:-}"
case "$suite/$flavour" in
  bookworm/) override="${COLLISION_GUARD_IMAGE_DEBIAN12:-}" ;;
  trixie/) override="${COLLISION_GUARD_IMAGE_DEBIAN13:-}" ;;
  bookworm/plain) override="${COLLISION_GUARD_PLAIN_IMAGE_DEBIAN12:-}" ;;
  trixie/plain) override="${COLLISION_GUARD_PLAIN_IMAGE_DEBIAN13:-}" ;;
  *) echo "image-for.sh: unknown suite or flavour '$suite' '$flavour'" >&2; exit 2 ;;
esac
if [ -n "$override" ]; then
  echo "$override"
  exit 0
fi
here="$(cd "$(dirname "$0")" && pwd)"
"$here/ensure-docker.sh" debootstrap
"$here/build-image.sh" "$suite" ${flavour:+"$flavour"}
