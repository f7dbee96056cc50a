#!/usr/bin/env bash
# Build a Debian systemd image from Debian's own packages, for test and demo
# fleets on machines that reach no container registry.
#
#   scripts/build-image.sh SUITE [plain]    prints the image tag
#
# The test images carry sudo, since the Molecule scenarios switch to
# unprivileged users with become_user. "plain" leaves it out, as a minimal
# Debian install does: the demo and the fleet benchmark connect as root
# without become.
#
# The tag carries a hash of this recipe, so a changed recipe builds a new
# image and an unchanged one is never rebuilt.
set -euo pipefail

suite="${1:?usage: build-image.sh SUITE (bookworm|trixie) [plain]}"
flavour="${2:-}"
case "$suite" in
  bookworm|trixie) ;;
  *) echo "build-image.sh: unknown suite '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac
case "$flavour" in
  "") name="collision-guard-${suite}" ;;
  plain) name="collision-guard-${suite}-plain" ;;
  *) echo "build-image.sh: unknown flavour '$flavour' (plain, or none)" >&2; exit 2 ;;
esac

# psmisc (fuser) is left out on purpose: the harden role must install it.
packages="systemd,systemd-sysv,python3,python3-apt,sudo,iproute2,procps,dbus,ca-certificates"
if [ "$flavour" = plain ]; then
  packages="${packages/,sudo/}"
fi

recipe_hash="$( { cat "$0"; echo "$suite $packages"; } | sha256sum | cut -c1-12)"
tag="${name}:${recipe_hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

rootfs="$(mktemp -d)"
cleanup() {
  # An interrupted debootstrap can leave /proc and /sys mounted in the tree.
  umount -R "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true
  rm -rf "$rootfs"
}
trap cleanup EXIT

echo "build-image.sh: building $tag with debootstrap (about a minute)" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" >&2
# Package lists inside the image, so the role can install packages in check
# mode and on first run without a cache refresh of its own.
chroot "$rootfs" apt-get update >&2
# Units that make no sense in a container and only slow boot down.
rm -f "$rootfs"/etc/systemd/system/getty.target.wants/* \
      "$rootfs"/lib/systemd/system/multi-user.target.wants/getty.target
echo 'collision-guard-test' > "$rootfs/etc/hostname"

tar -C "$rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$tag" >&2
echo "$tag"
