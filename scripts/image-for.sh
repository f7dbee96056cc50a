#!/usr/bin/env bash
# Print the image to use for a Debian suite: the user's override when set,
# otherwise a locally built one (built on first use, then cached by hash).
set -euo pipefail
suite="${1:?usage: image-for.sh bookworm|trixie}"
case "$suite" in
  bookworm) override="${COLLISION_GUARD_IMAGE_DEBIAN12:-}" ;;
  trixie) override="${COLLISION_GUARD_IMAGE_DEBIAN13:-}" ;;
  *) echo "image-for.sh: unknown suite '$suite'" >&2; exit 2 ;;
esac
if [ -n "$override" ]; then
  echo "$override"
  exit 0
fi
here="$(cd "$(dirname "$0")" && pwd)"
"$here/ensure-docker.sh" debootstrap
"$here/build-image.sh" "$suite"
