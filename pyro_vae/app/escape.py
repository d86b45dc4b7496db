"""Text a run contributes (its name, its configuration's strings, its result files' names),
escaped for where it is shown: one function per medium, used everywhere.

* :func:`terminal_text`: control and format characters (ESC, newline, carriage return, bidi
  overrides, undecodable bytes of a file name) shown as escapes (``\\x1b``, ``\\n``,
  ``\\u202e``, ``\\udcff``), so a run name cannot move the cursor, clear the screen, retitle
  the window or reorder what follows it.
* :func:`markdown_text` / :func:`markdown_code`: text that Markdown shows as written: no link,
  image, raw HTML, emphasis or code span can start inside it, and no line break (a heading or
  list needs one); ``|`` escaped inside a table. Works with CommonMark, GitHub and
  Python-Markdown alike.
* :func:`html_text` / :func:`html_code`: HTML-escaped (``< > & " '``).
"""

from __future__ import annotations

import html
import re
import unicodedata

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories shown as escapes: control, format (bidi overrides, zero-width),
surrogates (undecodable bytes of a file name), line and paragraph separators."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_text(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character shown as an escape (repr-style);
    ``keep_newlines``: line breaks stay (a message of several lines pyro-vae wrote)."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(
        ch
        if (keep_newlines and ch == "\n") or unicodedata.category(ch) not in _INVISIBLE
        else _escaped(ch)
        for ch in s
    )


_MD_SPECIAL = re.compile(r"([\\`*\[\]]|(?<![^\W_])_|_(?![^\W_]))")
"""Backslash-escaped: ``\\ ` * [ ]``, and ``_`` unless inside a word (``data_dir`` stays as it
is: no Markdown takes an underscore inside a word for emphasis)."""
_MD_LINE_START = re.compile(r"^(\s*)([#>+-])")
_MD_LIST_NUMBER = re.compile(r"^(\s*\d+)([.)])")


def markdown_text(text: object, table: bool = False) -> str:
    """``text`` for Markdown, shown as written: control characters (line breaks too) as
    escapes, ``& < >`` as entities, ``\\ ` * _ [ ]`` backslash-escaped (so no link, image,
    code span or emphasis starts; ``_`` inside a word is left alone); ``table``: ``|``
    escaped (a cell of a table), otherwise a leading ``#``, ``>``, ``+``, ``-`` or list
    number (no heading, quote or list)."""
    s = terminal_text(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    if table:  # a cell: no block starts there, but "|" would end it
        return s.replace("|", "\\|")
    s = _MD_LINE_START.sub(r"\1\\\2", s, count=1)
    return _MD_LIST_NUMBER.sub(r"\1\\\2", s, count=1)


def markdown_code(text: object, table: bool = False) -> str:
    """``text`` as a Markdown code span (shown literally): fenced by more backticks than any
    run inside it, control characters as escapes; ``table``: ``|`` escaped."""
    s = terminal_text(text)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s[:1] in ("`", " ") or s[-1:] in ("`", " ") else ""
    if table:
        s = s.replace("|", "\\|")
    return f"{fence}{pad}{s}{pad}{fence}"


def html_text(text: object) -> str:
    """``text`` for HTML: control characters as escapes, then ``< > & " '`` escaped."""
    return html.escape(terminal_text(text), quote=True)


def html_code(text: object) -> str:
    """``text`` as an HTML ``<code>`` element."""
    return f"<code>{html_text(text)}</code>"
