"""Names the chain itself stores (a bank's name in a governance action): which text is one.

Whether a transaction decodes must not depend on the interpreter: Python's
``str.isprintable`` follows the Unicode tables of its version, and a name
with a character one version knows and the other does not would split
validators running both.  So the characters are listed here, by code point:
printable ASCII, the Latin-1 letters and guillemets, all of Cyrillic (Kyrgyz
and Russian), and a few typographic marks a bank's registered name uses.
"""

from __future__ import annotations

MAX_NAME_CHARS = 100
_RANGES = (
    (0x20, 0x7E),  # printable ASCII, space included
    (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0xFF),  # Latin-1 letters
    (0xAB, 0xAB), (0xBB, 0xBB),  # « »
    (0x0400, 0x04FF),  # Cyrillic
    (0x2013, 0x2014), (0x2018, 0x2019), (0x201C, 0x201D), (0x2116, 0x2116),  # – — ‘ ’ “ ” №
)
_ALLOWED = frozenset(chr(code) for low, high in _RANGES for code in range(low, high + 1))


def name_error(name: str) -> str | None:
    """Why ``name`` is not a name the chain stores, or None when it is."""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        return f"a name is 1..{MAX_NAME_CHARS} characters"
    if name != name.strip(" "):
        return "a name does not start or end with a space"
    if not _ALLOWED.issuperset(name):
        bad = next(char for char in name if char not in _ALLOWED)
        return (f"a name holds letters, digits, punctuation and spaces (Latin or Cyrillic); "
                f"U+{ord(bad):04X} is not among them")
    return None
