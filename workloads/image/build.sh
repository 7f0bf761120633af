#!/bin/sh
# Build the tiny image the image scenarios run, from local files only (no
# pull): a root filesystem holding Debian's static busybox, imported into
# podman's local store as localhost/oomsim-tiny:1.
#   workloads/image/build.sh [NAME]      (needs podman and busybox-static)
set -eu
name=${1:-localhost/oomsim-tiny:1}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "build.sh: busybox is not installed (Debian: busybox-static)" >&2; exit 3; }
command -v podman >/dev/null || { echo "build.sh: podman is not installed (Debian: podman runc)" >&2; exit 3; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
cp "$busybox" "$root/bin/busybox"
for tool in sh dd head tail cat sleep true echo; do ln -s busybox "$root/bin/$tool"; done
tar -C "$root" -cf "$root.tar" .
podman import --quiet --change 'ENV PATH=/bin' "$root.tar" "$name" >/dev/null
rm -f "$root.tar"
echo "$name"
