"""Writing a report: its blocks (headings, paragraphs, lists, tables, figures) rendered as
Markdown (figures linked) and as one self-contained HTML page (figures embedded).

A block's text is ``pyro-vae``'s own words and code spans (:class:`Code`); both are escaped for
the medium (see :mod:`.escape`), so what a run contributes (a name, a configuration string) is
shown as written, never as markup or a link.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .escape import html_code, html_text, markdown_code, markdown_text
from .run_files import FIGURE, read_bytes


@dataclass(frozen=True)
class Code:
    """A code span of a block's text: shown literally (``pyro-vae``'s own words around it are
    plain text; both are escaped for the medium when rendered)."""

    text: str


Text = str | Code | list[str | Code]
"""A block's text: plain text, a code span, or a sequence of both."""


@dataclass
class Block:
    """One element of a report: its ``kind`` says which of the other fields it uses."""

    kind: str  # "h1", "h2", "p", "ul", "table", "figure"
    text: Text = ""
    items: list[Any] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    src: str = ""


def _pieces(text: Text) -> list[str | Code]:
    return text if isinstance(text, list) else [text]


def _md(text: Text, table: bool = False) -> str:
    """A block's text for Markdown: everything shown as written (see :mod:`.escape`)."""
    return "".join(
        markdown_code(p.text, table) if isinstance(p, Code) else markdown_text(p, table)
        for p in _pieces(text)
    )


def _plain(text: Text) -> str:
    return "".join(p.text if isinstance(p, Code) else p for p in _pieces(text))


def render_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            lines += [f"# {_md(b.text)}", ""]
        elif b.kind == "h2":
            lines += [f"## {_md(b.text)}", ""]
        elif b.kind == "p":
            lines += [_md(b.text), ""]
        elif b.kind == "ul":
            lines += [f"- {_md(item)}" for item in b.items] + [""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md(h, table=True) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_md(c, table=True) for c in row) + " |" for row in b.items]
            lines.append("")
        elif b.kind == "figure":
            lines += [f"![{Path(b.src).stem}]({b.src})", "", _md(b.text), ""]
    return "\n".join(lines)


def _inline(text: Text) -> str:
    """A block's text for HTML: escaped, code spans as <code>."""
    return "".join(
        html_code(p.text) if isinstance(p, Code) else html_text(p) for p in _pieces(text)
    )


def render_html(blocks: list[Block], base_dir: Path) -> str:
    """The page; each figure is read from ``base_dir`` (the run) as a bounded regular file,
    never through a link (see :mod:`.run_files`), and embedded."""
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{_inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.items
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "figure":
            png = read_bytes(Path(base_dir) / b.src, FIGURE, root=base_dir)
            data = base64.b64encode(png).decode("ascii")
            body.append(
                f'<figure><img alt="{html_text(Path(b.src).stem)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{_inline(b.text)}'
                "</figcaption></figure>"
            )
    title = html_text(_plain(blocks[0].text) if blocks else "pyro-vae report")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}"
        "figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#444;margin-top:.4em}"
        "code{background:#f3f3f3;padding:0 .2em}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
