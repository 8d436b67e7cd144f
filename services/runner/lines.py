"""Splitting plakar's output into lines of bounded size (pure).

A line longer than MAX_LINE_BYTES is cut there and ends with a marker saying how many
bytes were left out, so one huge line (a path of thousands of characters, a binary
blob) can neither exhaust memory nor make an event too large to publish.
"""

from __future__ import annotations

MAX_LINE_BYTES = 8192


def cut_marker(dropped: int) -> str:
    return f" [line cut: {dropped} more bytes]"


class LineSplitter:
    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_bytes
        self._kept = bytearray()
        self._dropped = 0

    def feed(self, data: bytes) -> list[str]:
        """The lines that `data` completes."""
        lines = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._take(data[start:end])
            lines.append(self._line())
            start = end + 1
        self._take(data[start:])
        return lines

    def finish(self) -> list[str]:
        """The last line, when the output did not end with a newline."""
        return [self._line()] if self._kept or self._dropped else []

    def _take(self, chunk: bytes) -> None:
        room = self._max - len(self._kept)
        self._kept += chunk[: max(room, 0)]
        self._dropped += max(len(chunk) - room, 0)

    def _line(self) -> str:
        text = self._kept.decode("utf-8", errors="replace").removesuffix("\r")
        if self._dropped:
            text += cut_marker(self._dropped)
        self._kept, self._dropped = bytearray(), 0
        return text
