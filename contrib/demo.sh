#!/usr/bin/env bash
# make run: a volume in ./demo.store mounted on ./demo.mnt, shown working.
# Run again, it reuses the volume (mounting it if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
SNAPFS=${SNAPFS:-$PWD/build/release/snapfs}
STORE=$PWD/demo.store
MNT=$PWD/demo.mnt

if mountpoint -q "$MNT"; then
    echo "snapfs: $MNT is already mounted"
else
    if [ ! -e "$STORE/data.mdb" ]; then
        "$SNAPFS" mkfs "$STORE" --size 8G
    fi
    mkdir -p "$MNT"
    "$SNAPFS" mount "$STORE" "$MNT"
    echo "snapfs: mounted $STORE on $MNT"
fi

echo
echo "Writing a few files:"
mkdir -p "$MNT/docs"
seq 1 200000 >"$MNT/docs/numbers.txt"
cp "$MNT/docs/numbers.txt" "$MNT/docs/copy-of-numbers.txt"
head -c 4M /dev/urandom >"$MNT/random.bin"
ln -sf docs/numbers.txt "$MNT/link-to-numbers"
setfattr -n user.comment -v "written by make run" "$MNT/docs/numbers.txt" 2>/dev/null || true
ls -la "$MNT" "$MNT/docs"
echo
echo "What the volume holds (the copy is deduplicated, the text compressed):"
"$SNAPFS" info "$MNT"
echo
echo "The volume stays mounted.  Unmount it with:"
echo "    $SNAPFS umount $MNT"
