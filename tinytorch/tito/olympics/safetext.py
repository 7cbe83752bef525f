"""Text that came from a submission, made safe for the place it is shown: a terminal, Markdown, CSV, a plot.

Everything a student controls (student id, name, techniques) and everything a submission's code can make
the grader say (an exception message, a stderr tail, a reason that quotes a file) is hostile until it has
passed through one of these functions. They are pure (no I/O, no global state) and never raise on the text
they are given: str, bytes, None, numbers or any object (whose str() is used; a str() that raises gives
"[unprintable value]").

clean(text, limit) is the base of all of them, for one line of text:
  1. bytes are decoded as UTF-8 (bad bytes become U+FFFD); None becomes "";
  2. terminal escape sequences are removed WHOLE: CSI (ESC [ ... final byte, and the 8-bit CSI 0x9B), the
     string sequences OSC/DCS/SOS/PM/APC (ESC ] P X ^ _ and 0x9D 0x90 0x98 0x9E 0x9F) up to their BEL or ST
     (ESC \\ or 0x9C) terminator, or to the end of the text when unterminated (a terminal would swallow that
     much too), and every other ESC sequence (ESC, intermediates 0x20-0x2F, one final byte);
  3. line breaks (LF, CR, VT, FF, NEL, U+2028, U+2029) and tabs become a space;
  4. every remaining control character is removed: C0, DEL, C1 (category Cc), every format character
     (category Cf: the bidi controls U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C, zero-width
     spaces and joiners, soft hyphens, the BOM, tag characters ...) and lone surrogates (category Cs, which
     could not even be written as UTF-8);
  5. runs of combining marks longer than MAX_MARKS are cut to MAX_MARKS ("Zalgo" text that spills over the
     lines above and below);
  6. with a limit, the text is cut to `limit` characters and a visible marker says how many were cut:
     "… [+123 chars]".
clean_block(text, limit) does the same but keeps line breaks (normalised to "\\n") and tabs, for multi-line
detail such as a traceback.

markdown(text) escapes for CommonMark/GFM, csv_cell(value) defuses spreadsheet formulas, terminal(text) is
clean() for printing and plot_label(text) escapes matplotlib's mathtext '$'. HTML: pass clean()ed text to an
escaping writer (reporting.html_page escapes every text it is given).
"""
from __future__ import annotations

import re
import unicodedata

MAX_MARKS = 4              # combining marks kept after one base character
UNPRINTABLE = "[unprintable value]"
ELLIPSIS = "\u2026"        # "…"

# Terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1 introducers). Order matters: the string
# sequences and CSI before the generic two-byte ESC sequence.
_ST = r"(?:\x1b\\|\x9c|\x07)"                                      # string terminator (BEL accepted, as xterm does)
_ESCAPES = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])(?:(?!" + _ST + r").)*?(?:" + _ST + r"|\Z)"   # OSC, DCS, SOS, PM, APC
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"                               # CSI (final byte optional at the end)
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",                                                     # any other ESC sequence, or a lone ESC
    re.DOTALL)
_BREAKS = "\n\r\x0b\x0c\x85\u2028\u2029"
_BLOCK_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")


def _as_text(value) -> str:
    """value as a str: bytes decoded as UTF-8 (U+FFFD for bad bytes), None as "", anything else its str()."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)              # a plain str even for a subclass with its own __str__
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        text = str(value)
    except Exception:
        return UNPRINTABLE
    return str.__str__(text) if isinstance(text, str) else UNPRINTABLE


def _strip(text: str, keep_lines: bool) -> str:
    """Steps 2-5 of clean(): escapes, breaks, control and format characters, long runs of combining marks."""
    text = _ESCAPES.sub("", text)
    if keep_lines:
        text = _BLOCK_BREAKS.sub("\n", text)
    if text.isascii() and (text.isprintable() or all(c.isprintable() or c in "\n\t" for c in text)):
        return text if keep_lines else text.replace("\n", " ").replace("\t", " ")
    out, marks = [], 0
    for char in text:
        if char == "\n" or char == "\t":
            out.append(char if keep_lines else " ")
            marks = 0
            continue
        if char in _BREAKS:
            out.append(" ")
            marks = 0
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs"):
            continue
        if category in ("Mn", "Me"):
            marks += 1
            if marks > MAX_MARKS:
                continue
        else:
            marks = 0
        out.append(char)
    return "".join(out)


def _cut(text: str, limit) -> str:
    """text, or its first `limit` characters and "… [+N chars]"."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}{ELLIPSIS} [+{len(text) - limit} chars]"


def _check_limit(limit):
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")


def clean(text, limit=None) -> str:
    """One line of text, safe to show anywhere: see the module docstring for each step. limit (None or an
    int >= 0; anything else is a ValueError, a bug in the caller): at most that many characters of the text
    are kept, then "… [+N chars]" with N the number cut. Never raises on `text`."""
    _check_limit(limit)
    try:
        return _cut(_strip(_as_text(text), keep_lines=False), limit)
    except Exception:          # pragma: no cover - nothing above should raise; the promise holds regardless
        return UNPRINTABLE


def clean_block(text, limit=None) -> str:
    """Like clean(), but line breaks are kept (CR LF, CR, VT, FF, NEL, U+2028 and U+2029 become "\\n") and so
    are tabs: for multi-line detail such as a traceback. Never raises on `text`."""
    _check_limit(limit)
    try:
        return _cut(_strip(_as_text(text), keep_lines=True), limit)
    except Exception:          # pragma: no cover
        return UNPRINTABLE


def terminal(text, limit=None) -> str:
    """clean(text, limit), for printing to a terminal: no escape sequence, control or bidi character is left
    that could move the cursor, erase a line, set a title, make a hyperlink or reorder what is shown."""
    return clean(text, limit)


# Markdown. Every ASCII punctuation character that means something to CommonMark or GFM (or to GitHub's
# math) is backslash-escaped; CommonMark guarantees that a backslash before ANY ASCII punctuation character
# stands for that character literally. '@' is the exception: GFM's e-mail autolinks (and "mailto:" /
# "xmpp:") are found AFTER inline parsing, on the merged text, so "a\@b\.org" still becomes a mailto link
# in cmark-gfm; an '@' is therefore written as the code span `@`, which no autolink can cross.
MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>&~=:$^\"'")
INTRAWORD_SAFE = frozenset("_-")   # left as they are between two letters or digits ("latency_sprint", "s1-2")


def markdown(text, limit=None) -> str:
    """clean(text, limit) as inline Markdown text that renders exactly as that text, whatever the renderer
    (CommonMark, GFM, GitHub): no link, image, autolink, emphasis, code, HTML, entity, math, heading, list or
    table cell break can come out of it.

    How: runs of whitespace become one space and the ends are stripped (so no indented code block or hard
    line break); each of  \\ ` * _ { } [ ] ( ) # + - . ! | < > & ~ = : $ ^ " '  is escaped with a backslash
    (CommonMark: any ASCII punctuation may be escaped and then stands for itself), except a single '_' or '-'
    between two letters or digits ("latency_sprint", "s1-2"): such an '_' is both left- and right-flanking
    and preceded and followed by alphanumerics, so CommonMark lets it neither open nor close emphasis, and
    a '-' inside a word cannot start a list, a setext underline or a table delimiter row, which all need the
    line to hold nothing but dashes, colons, pipes and spaces there. The escaping stops links, images,
    HTML, entities, emphasis, strikethrough, code spans, pipes, headings, lists, setext underlines and math,
    and GFM's URL autolinks: "http://evil" is written "http\\://evil", and an escaped ':' is not a scheme
    separator; "www.evil.com" becomes "www\\.evil\\.com", and an escaped '.' does
    not complete the "www." trigger. GFM's e-mail autolinks are different: cmark-gfm finds them on the text
    after escapes are resolved, so '@' is written as the code span `@` (its content is a single '@', so
    the backticks of the text, all escaped, cannot close or open it). Checked against cmark-gfm (GitHub's
    renderer) and markdown-it-py with linkify."""
    text = " ".join(clean(text, limit).split())
    out = []
    for i, char in enumerate(text):
        if char == "@":
            out.append("`@`")
        elif char in INTRAWORD_SAFE and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            out.append(char)
        elif char in MARKDOWN_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


# CSV (OWASP "CSV injection"): a cell that a spreadsheet could read as a formula or a DDE call starts with
# one of these after any leading spaces; the fullwidth forms are included because some spreadsheets fold them.
FORMULA_START = frozenset("=+-@\t\r|%\uff1d\uff0b\uff0d\uff20")


def csv_cell(value) -> str:
    """One CSV cell. An int or a float (not a bool) is written as the number it is (repr for floats: full
    precision; a negative number stays a number). Anything else is clean()ed to one line, and when it then
    starts, after any leading spaces, with = + - @ (or | %, tab or CR, or a fullwidth = + - @) it gets a
    leading single quote, so a spreadsheet shows it as text instead of evaluating it (OWASP CSV injection
    guidance). None is the empty cell. Never raises."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    text = clean(value)
    if text.lstrip(" ")[:1] in FORMULA_START:
        return "'" + text
    return text


def plot_label(text, limit=None) -> str:
    """clean(text, limit) for a matplotlib text (a tick label, title or legend): every '$' is escaped as
    '\\$', so mathtext is never parsed (no parse error can break the figure, no formula is drawn)."""
    return clean(text, limit).replace("$", r"\$")
