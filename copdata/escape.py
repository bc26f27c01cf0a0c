"""Text from inputs (folder names, results files, remote page titles) made safe
for the tables and cards we publish.

- :func:`md_text`: one line of Markdown that renders as the literal text: HTML
  is escaped (``<img onerror>`` shows as text), the Markdown characters that
  change structure are backslash-escaped (``|`` cannot add a table column,
  ``[x](javascript:)`` cannot become a link, a backtick cannot open code), and
  newlines/control characters become spaces (no new heading or row). ``_`` and
  ``*`` stay: inside a word (``si_sdr``) they do not format.
- :func:`csv_cell`: a spreadsheet cell that is never a formula: a string
  starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
  prefixed with ``'`` (OWASP's CSV injection advice); numbers stay numbers.
- :func:`code_fence`: a backtick fence longer than any run of backticks in a
  code block's text, so the text cannot close the block.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`\[\]|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_text(value) -> str:
    """``value`` as literal one-line Markdown/HTML text (see the module doc)."""
    text = _CONTROL.sub(" ", str(value))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


def csv_cell(value):
    """``value`` for a CSV cell; strings that a spreadsheet would run are defused."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def code_fence(text: str) -> str:
    """A backtick fence (at least three) that ``text`` cannot close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
