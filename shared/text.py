"""One line of text: what names, locations, option values and labels must be, since they
end up in logs, plakar's arguments and its config file. No control character (C0, DEL,
C1) and no line or paragraph separator; anything else, any script, is allowed.

The rules are regular expressions so that the OpenAPI document states exactly what the
api checks."""

from __future__ import annotations

import re

# Inside a character class.
CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
ONE_LINE = rf"^[^{CONTROL}]*$"
# One line with something other than blanks on it.
NOT_BLANK = rf"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$"


def is_one_line(text: str) -> bool:
    return re.fullmatch(ONE_LINE, text) is not None


def is_not_blank(text: str) -> bool:
    return re.fullmatch(NOT_BLANK, text) is not None
