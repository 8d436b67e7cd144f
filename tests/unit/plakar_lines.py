"""Lines that plakar v1.1.4 printed here, without a terminal (its line renderer)."""

BACKUP = """\
d8378df7: OK ✓ /tmp/cap
d8378df7: OK ✓ /tmp
d8378df7: OK ✓ /
d8378df7: OK ✓ /tmp/cap/src
d8378df7: OK ✓ /tmp/cap/src/a.txt
d8378df7: OK ✓ /tmp/cap/src/dangling
d8378df7: OK ✓ /tmp/cap/src/fifo
d8378df7: OK ✓ /tmp/cap/src/sub
d8378df7: OK ✓ /tmp/cap/src/sub/b.bin
d8378df7: backup completed without errors in 31.605764ms (in: 0 B, out: 1.2 MiB)"""

CHECK = """\
d8378df7: OK ✓ /tmp/cap/src
d8378df7: OK ✓ /tmp/cap/src/a.txt
d8378df7: check completed without errors in 5.963357ms (in: 2.9 KiB, out: 0 B)"""

CHECK_CORRUPT = "/work/main/.venv/bin/plakar: check failed for 1 snapshot"

SYNC = """\
info: Synchronizing snapshot d8378df7a4e2eef4c9a2d832d3d7b507f47b058fd05134cc86704f3651933782 \
from localhost to localhost
info: Synchronization of d8378df7a4e2eef4c9a2d832d3d7b507f47b058fd05134cc86704f3651933782 finished
info: sync: synchronization from localhost to localhost completed: 1 snapshots synchronized"""

RESTORE = """\
d8378df7: OK ✓ /
d8378df7: OK ✓ /a.txt
d8378df7: OK ✓ /sub"""

LS = """\
2026-11-24T05:12:04Z d8378df7a4e2eef4c9a2d832d3d7b507f47b058fd05134cc86704f3651933782 \
   98 KiB        0s /tmp/cap/src tags=t1
2026-11-24T04:56:26Z 52e0e95afaebc3041fdf4c10821bfa9c668c48ab4cda01b7d5e19db007ac6798 \
  195 KiB        0s /tmp/pk/src"""

OPEN_FAILED = (
    "/work/main/.venv/bin/plakar: failed to open the repository at fs:///tmp/pk/nostore: "
    "open /tmp/pk/nostore/CONFIG: no such file or directory"
)
WRONG_PASSPHRASE = "/work/main/.venv/bin/plakar: failed to unlock repository"
