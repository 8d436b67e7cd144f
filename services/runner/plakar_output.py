"""Reading what plakar v1.1.4 prints (pure).

Without a terminal plakar uses its line renderer: one `<id8>: OK ✓ <path>` line
per item, `<id8>: KO ✘ <path>: <error>` per failure, and for backup and check a
final `<id8>: <workflow> completed without errors|with N errors in <dur> (in: X, out: Y)`.
Logger lines carry `info:`, `warn:` or `error:` prefixes. plakar exits 0 even when
items failed, so the control plane counts failures from these lines.
With `-trace snapshotBuilder` (backup) or `-trace snapshot` (check, restore) plakar prints
`trace: <subsystem>: <64 hex>: Close(): <id8>` as it closes a snapshot: the full id, read
in the same run (plakar prints it nowhere else without a terminal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.models import FileKind

_OK = re.compile(r"^(?P<id>[0-9a-f]{8}): OK \u2713 (?P<path>.*)$")
_KO = re.compile(r"^(?P<id>[0-9a-f]{8}): KO \u2718 (?P<what>.*)$")
_RESULT = re.compile(
    r"^(?P<id>[0-9a-f]{8}): (?P<workflow>\w+) completed "
    r"(?:without errors|with (?P<errors>\d+) errors?) in (?P<duration>\S+)"
    r"(?: \(in: (?P<bytes_in>[^,]+), out: (?P<bytes_out>[^)]+)\))?$"
)
_SYNC_FAIL = re.compile(r"^error: failed to synchronize snapshot")
_ERROR = re.compile(r"^error: ")
# plakar asks on its terminal; without one it asks again forever.
_PROMPT = re.compile(r"^(?P<what>[\w ]*passphrase): ?$")
_TRACE = "trace: "
CLOSED = re.compile(
    r"^trace: snapshot(?:Builder)?: (?P<full>[0-9a-f]{64}): Close\(\): (?P<id>[0-9a-f]{8})$"
)
_LS = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\s+(?P<id>[0-9a-f]{64})\s+"
    r"(?P<size>\S+ \S+)\s+(?P<duration>\S+)\s+(?P<root>.*?)(?: tags=(?P<tags>\S+))?$"
)

_UNITS = {
    "B": 1,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
    "PiB": 1 << 50,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
}


def parse_size(text: str) -> int | None:
    """'2.2 MiB' -> 2306867; None when it is not a size."""
    parts = text.strip().split()
    if len(parts) != 2 or parts[1] not in _UNITS:
        return None
    try:
        return int(float(parts[0]) * _UNITS[parts[1]])
    except ValueError:
        return None


@dataclass
class OutputState:
    """What the lines of one plakar run said so far."""

    ok_items: int = 0
    failed_items: int = 0
    short_id: str | None = None
    result_seen: bool = False
    result_errors: int = 0
    # What the run wrote to the store (`out:`): the bytes a backup added to it.
    bytes_out: int | None = None
    sync_failures: int = 0
    error_lines: list[str] = field(default_factory=list)
    prompt: str | None = None
    ok_paths_tail: str | None = None
    # Short ids of the snapshots the lines were about (a check may cover several).
    short_ids: set[str] = field(default_factory=set)
    # Full ids of the snapshots plakar closed, by short id (trace lines).
    full_ids: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Errors plakar reported, whichever way it reported them."""
        return max(self.result_errors, self.failed_items) + self.sync_failures

    def feed(self, line: str) -> None:
        if m := _OK.match(line):
            self.ok_items += 1
            self._about(m["id"])
            self.ok_paths_tail = m["path"]
        elif m := _KO.match(line):
            self.failed_items += 1
            self._about(m["id"])
            self.error_lines.append(line)
        elif m := _RESULT.match(line):
            self.result_seen = True
            self._about(m["id"])
            self.result_errors = int(m["errors"] or 0)
            if m["bytes_out"]:
                self.bytes_out = parse_size(m["bytes_out"])
        elif _SYNC_FAIL.match(line):
            self.sync_failures += 1
            self.error_lines.append(line)
        elif m := _PROMPT.match(line):
            self.prompt = m["what"]
        elif line.startswith(_TRACE):
            if m := CLOSED.match(line):
                self.full_ids[m["id"]] = m["full"]
        elif _ERROR.match(line) or (": " in line and not line.startswith(("info:", "warn:"))):
            self.error_lines.append(line)

    def _about(self, short_id: str) -> None:
        self.short_id = short_id
        self.short_ids.add(short_id)


def snapshot_of(task_type: str, out: OutputState) -> str | None:
    """The full id of the snapshot a backup made, once plakar committed it (it prints its
    result line after the commit), or of the one snapshot a check checked or a restore
    restored (the snapshot its item lines are about)."""
    if task_type == "backup" and out.result_seen:
        short = out.short_id
    elif task_type in ("check", "restore") and len(out.short_ids) == 1:
        short = next(iter(out.short_ids))
    else:
        return None
    return out.full_ids.get(short) if short else None


@dataclass(frozen=True)
class SnapshotEntry:
    id: str
    created_at: str
    size: int | None
    root: str
    tags: tuple[str, ...]


_ENTRY = re.compile(
    r"^(?P<mtime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<mode>\S+)\s+\S+\s+\S+\s+"
    r"(?P<size>\S+ \S+) (?P<name>.*?)(?: -> (?P<target>.*))?$"
)


_KINDS: dict[str, FileKind] = {"d": "directory", "L": "symlink", "-": "file"}


@dataclass(frozen=True)
class DirEntry:
    name: str
    mode: str
    size: int | None
    modified_at: str
    target: str | None

    @property
    def kind(self) -> FileKind:
        return _KINDS.get(self.mode[:1], "other")


def parse_dir(lines: list[str]) -> list[DirEntry]:
    """Entries from `plakar ls SNAPSHOT:PATH` output."""
    found = []
    for line in lines:
        if m := _ENTRY.match(line):
            found.append(
                DirEntry(m["name"], m["mode"], parse_size(m["size"]), m["mtime"], m["target"])
            )
    return found


def parse_ls(lines: list[str]) -> list[SnapshotEntry]:
    """Snapshots from `plakar ls -uuid` output, in plakar's order: newest first, by the
    full-precision timestamp (the printed one has only seconds)."""
    found = []
    for line in lines:
        if m := _LS.match(line.strip()):
            tags = tuple(m["tags"].split(",")) if m["tags"] else ()
            found.append(SnapshotEntry(m["id"], m["ts"], parse_size(m["size"]), m["root"], tags))
    return found
