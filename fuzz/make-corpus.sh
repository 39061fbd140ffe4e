#!/usr/bin/env bash
# Regenerates the committed seed corpus (fuzz/corpus/<target>/) from the repository's own
# fixtures. Small seeds only: libFuzzer mutates them, size buys nothing.
set -euo pipefail
cd "$(dirname "$0")"
root=..
rm -rf corpus/nal corpus/segment corpus/chain
mkdir -p corpus/nal corpus/segment corpus/chain corpus/recipients corpus/s3_listing corpus/pairing corpus/config

# NAL: the first 3 KiB of every test stream (parameter sets, SEI, the IDR's first slices).
for f in "$root"/pipeline/tests/data/streams/*.{h264,264,h265,hevc}; do
  head -c 3072 "$f" >"corpus/nal/$(basename "$f")"
done

# Segment: byte 0 is the mode (0 raw, 1 header re-signed), then the file.
for f in "$root"/docs/vectors/*.cseg; do
  case "$f" in *kid9*) continue ;; esac # 14 KB: the others cover it
  n=$(basename "$f" .cseg)
  { printf '\x00'; cat "$f"; } >"corpus/segment/$n"
  { printf '\x01'; cat "$f"; } >"corpus/segment/$n-resigned"
done
# The negative testkit: a text head, a blank line, then the segment bytes.
for f in "$root"/pipeline/tests/testkit/*; do
  n=$(basename "$f")
  { printf '\x00'; sed -e '1,/^$/d' "$f"; } >"corpus/segment/testkit-$n"
done

# Chain: byte 0 picks vectors (bit i = vector i); 1f is the valid window.
printf '\x1f' >corpus/chain/window
printf '\x17' >corpus/chain/declared-crash-without-its-segment
printf '\x1f\x02\x00\x00\x00\x00\x08\x01\x03' >corpus/chain/copies-and-relinks

# Recipient lists: well-formed bodies (PROTOCOL.md) with a zero signature. The body is parsed
# before the signature is checked, so these reach every field.
list() { # version count
  python3 - "$@" <<'PY'
import struct, sys
version, count = int(sys.argv[1]), int(sys.argv[2])
body = b"CSRL" + struct.pack(">HQ", 1, version) + bytes(range(32)) + struct.pack(">H", count)
for i in range(count):
    label = ("phone%d" % i).encode()
    body += struct.pack(">HH", 0x0020, 32) + bytes([9 + i]) * 32 + bytes([len(label)]) + label
sys.stdout.buffer.write(body + bytes(64))
PY
}
list 1 1 >corpus/recipients/one
list 7 3 >corpus/recipients/three
# A mixed list: an X-Wing key (kem 0x647a, 1216 bytes: the first official X-Wing vector's
# public key) next to an X25519 one, so the fuzzer reaches the X-Wing key checks.
python3 - "$root/docs/vectors/xwing-kem.json" >corpus/recipients/mixed-xwing <<'PY'
import json, struct, sys
pk = bytes.fromhex(json.load(open(sys.argv[1]))[0]["pk"])
body = b"CSRL" + struct.pack(">HQ", 1, 2) + bytes(range(32)) + struct.pack(">H", 2)
body += struct.pack(">HH", 0x647a, len(pk)) + pk + bytes([6]) + b"tablet"
body += struct.pack(">HH", 0x0020, 32) + bytes([9]) * 32 + bytes([5]) + b"phone"
sys.stdout.buffer.write(body + bytes(64))
PY

# S3 ListObjectsV2 pages: keys that are segments, keys that are not, a continuation token.
cat >corpus/s3_listing/page <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>camseal-test</Name><Prefix>cams/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>cams/0123456789abcdef/2/000000000005.cseg</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"abc"</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>cams/0123456789abcdef/2/head</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"def"</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>0123456789abcdef/0/000000000000.cseg</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"0"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>
XML
cat >corpus/s3_listing/empty <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>
XML

# Pairing: byte 0 picks the step (src/lib.rs, `pairing`); no input after it is the honest
# message, which must pair.
printf '\x00\x00\x00\x00\x21 1234 5678' >corpus/pairing/frame-and-code
{ printf '\x01CSPK\x01'; head -c 33 /dev/zero | tr '\0' '\102'; } >corpus/pairing/hello
printf '\x02' >corpus/pairing/share-unchanged
printf '\x03' >corpus/pairing/list-unchanged
printf '\x04' >corpus/pairing/result-unchanged
printf '\x04\x00\x00\x00\x01' >corpus/pairing/result-changed
printf '\x05the list is signed by another account\n\x07\xc3\xa9' >corpus/pairing/refused
# Settings files: the shipped default, and one of each value shape and of each refusal.
cp "$root/board/rk3588/camseal.toml" corpus/config/default
printf 'home = "/h"\nrealtime = true\nsink = ["dir:/a", "s3://b/c?region=r"]\nbitrate = 0x10\nsegment_seconds = 2.5e0\n' >corpus/config/shapes
printf 'a = 1\n[run]\nwhen = 1979-05-27T07:32:00Z\nt = { x = [1, [2]] }\n' >corpus/config/refused
# Control objects (PROTOCOL.md §10.1) for camera 0123456789abcdef. Byte 0 bit 0 re-signs
# (the list and the object carry no signature; the target signs them with its account),
# bits 1-2 pick the installed list (none, version 1, version 3, another account pinned).
mkdir -p corpus/control
control() { # mode version kem-mix
  python3 - "$@" "$root/docs/vectors/xwing-kem.json" <<'PY'
import json, struct, sys
mode, version, mix, vectors = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
recipients = [(0x0020, bytes([9]) * 32, b"account")]
if mix == "xwing":
    recipients.append((0x647a, bytes.fromhex(json.load(open(vectors))[0]["pk"]), b"phone"))
lst = b"CSRL" + struct.pack(">HQ", 1, version) + bytes(32) + struct.pack(">H", len(recipients))
for kem, key, label in recipients:
    lst += struct.pack(">HH", kem, len(key)) + key + bytes([len(label)]) + label
if mode & 1 == 0:
    lst += bytes(64)
obj = b"CSCC" + struct.pack(">H", 1) + bytes.fromhex("0123456789abcdef") + struct.pack(">I", len(lst)) + lst
if mode & 1 == 0:
    obj += bytes(64)
sys.stdout.buffer.write(bytes([mode]) + obj)
PY
}
control 1 2 x25519 >corpus/control/resigned-new
control 3 1 x25519 >corpus/control/resigned-replayed
control 5 5 xwing >corpus/control/resigned-newer-mixed
control 7 5 x25519 >corpus/control/resigned-foreign-pin
control 0 2 x25519 >corpus/control/unsigned

# Shares (PROTOCOL.md §11) addressed to the target's keys: the X25519 key of RFC 7748 §6.1
# and the first X-Wing vector's. Byte 0 bit 0 re-signs (the body carries no signature).
mkdir -p corpus/share
share() { # mode kem
  python3 - "$@" "$root/docs/vectors/xwing-kem.json" <<'PY'
import json, struct, sys
mode, kem, vectors = int(sys.argv[1]), sys.argv[2], sys.argv[3]
v = json.load(open(vectors))[0]
if kem == "xwing":
    kem_id, key, enc = 0x647a, bytes.fromhex(v["pk"]), bytes.fromhex(v["ct"])
else:
    kem_id = 0x0020
    key = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    enc = bytes(range(32))
body = b"CSSH" + struct.pack(">H", 1) + bytes(32) + bytes([5]) * 32 + struct.pack(">I", 0)
body += struct.pack(">HH", kem_id, len(key)) + key + struct.pack(">H", 2)
for seq in (3, 4):
    body += struct.pack(">Q", seq) + bytes([seq]) * 32
    body += struct.pack(">H", len(enc)) + enc + struct.pack(">H", 48) + bytes([seq]) * 48
if mode & 1 == 0:
    body += bytes(64)
sys.stdout.buffer.write(bytes([mode]) + body)
PY
}
share 1 x25519 >corpus/share/resigned-x25519
share 1 xwing >corpus/share/resigned-xwing
share 0 x25519 >corpus/share/unsigned-x25519
