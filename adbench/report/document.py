"""A tiny document model rendered to Markdown (figures as PNG and PDF files) and to one self-contained
HTML file (figures embedded as base64 PNG, tables sortable by a few lines of inline script, no CDN).

Text conventions inside paragraphs and table cells: `code` spans and **bold**.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Resolution of the PNG figures (the HTML shows them at most 1360 px wide).
PNG_DPI = 110
#: Table cells longer than this may wrap in the HTML.
WRAP_AFTER = 40

_STYLE = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1360px;margin:1.5em auto;
 padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.3em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.3em}
.scroll{overflow-x:auto;margin:.8em 0}
table{border-collapse:collapse;font-size:.86em;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap}
td.n{text-align:right}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:normal;max-width:13em;vertical-align:bottom}
th:hover{background:#e2e8f0}th.asc:after{content:' \\25B2'}th.desc:after{content:' \\25BC'}
td.wrap{white-space:normal;min-width:14em;max-width:40em;text-align:left}
tr:nth-child(even) td{background:#fafafa}
.note{background:#fff7e0;border-left:4px solid #e6a700;padding:.4em .8em}
figure{margin:1.2em 0}img{max-width:100%;height:auto}
figcaption{font-style:italic;color:#444;margin-top:.3em}code{background:#f4f4f4;padding:0 2px}
nav{font-size:.9em;columns:3}nav a{display:block}
"""

# Click a header to sort by that column (numbers by their leading value, then text; '-' last).
_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var dir = th.classList.contains('asc') ? -1 : 1;
      table.querySelectorAll('th').forEach(function(h){ h.classList.remove('asc', 'desc'); });
      th.classList.add(dir > 0 ? 'asc' : 'desc');
      function key(row){
        var text = row.cells[col].textContent.trim();
        var num = parseFloat(text.replace(/^[^0-9.+-]+/, ''));
        return isNaN(num) ? [1, text] : [0, num];
      }
      rows.sort(function(a, b){
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];
        return (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) * dir;
      });
      rows.forEach(function(row){ body.appendChild(row); });
    });
  });
});
"""


@dataclass
class Figure:
    """A rendered figure: PNG and PDF bytes."""

    name: str
    png: bytes
    pdf: bytes
    caption: str


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (text, level)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def note(self, text: str) -> None:
        """A paragraph that warns (dropped records, mixed datasets, missing errors)."""
        self.blocks.append(("note", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("bullets", items))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))

    def figure(self, name: str, figure: Any, caption: str) -> None:
        """Render the matplotlib figure now (PNG and PDF) and close it."""
        import matplotlib.pyplot as plt

        rendered = {}
        for fmt in ("png", "pdf"):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_metadata(fmt))
            rendered[fmt] = buffer.getvalue()
        plt.close(figure)
        self.blocks.append(("figure", Figure(name, _compact_png(rendered["png"]), rendered["pdf"], caption)))

    @property
    def figures(self) -> list[Figure]:
        return [content for kind, content in self.blocks if kind == "figure"]

    # ------------------------------------------------------------------ markdown
    def write_markdown(self, path: Path) -> Path:
        """Write ``path`` and its figures into ``<stem>_files/`` (PNG and PDF); figures of an earlier
        report there that this one no longer has are removed, so the folder matches the report."""
        assets = path.parent / f"{path.stem}_files"
        written = {f"{fig.name}.{ext}" for fig in self.figures for ext in ("png", "pdf")}
        if assets.is_dir():
            for stale in assets.iterdir():
                if stale.suffix in (".png", ".pdf") and stale.name not in written:
                    stale.unlink()
        lines = [f"# {self.title}", ""]
        for kind, content in self.blocks:
            if kind == "heading":
                text, level = content
                lines += [f"{'#' * level} {text}", ""]
            elif kind == "paragraph":
                lines += [content, ""]
            elif kind == "note":
                lines += [f"> **Note:** {content}", ""]
            elif kind == "bullets":
                lines += [f"- {item}" for item in content] + [""]
            elif kind == "table":
                header, rows = content
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
                lines.append("")
            elif kind == "figure":
                assets.mkdir(parents=True, exist_ok=True)
                (assets / f"{content.name}.png").write_bytes(content.png)
                (assets / f"{content.name}.pdf").write_bytes(content.pdf)
                lines += [f"![{content.caption}]({assets.name}/{content.name}.png)", "",
                          f"*{content.caption}* ([PDF]({assets.name}/{content.name}.pdf))", ""]
        path.write_text("\n".join(lines))
        return path

    # ------------------------------------------------------------------ html
    def write_html(self, path: Path) -> Path:
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        sections = [content[0] for kind, content in self.blocks if kind == "heading" and content[1] == 2]
        if len(sections) > 3:
            parts.append("<nav>" + "".join(f"<a href='#{_anchor(s)}'>{html.escape(s)}</a>" for s in sections)
                         + "</nav>")
        for kind, content in self.blocks:
            if kind == "heading":
                text, level = content
                parts.append(f"<h{level} id='{_anchor(text)}'>{_inline(text)}</h{level}>")
            elif kind == "paragraph":
                parts.append(f"<p>{_inline(content)}</p>")
            elif kind == "note":
                parts.append(f"<p class='note'><b>Note:</b> {_inline(content)}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in content) + "</ul>")
            elif kind == "table":
                header, rows = content
                parts.append("<div class='scroll'><table class='sortable'><thead><tr>"
                             + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead><tbody>")
                parts += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows]
                parts.append("</tbody></table></div>")
            elif kind == "figure":
                data = base64.b64encode(content.png).decode()
                parts.append(
                    f"<figure id='{html.escape(content.name)}'><img alt='{html.escape(content.caption)}' "
                    f"src='data:image/png;base64,{data}'><figcaption>{_inline(content.caption)}</figcaption></figure>"
                )
        parts.append(f"<script>{_SCRIPT}</script></body></html>")
        path.write_text("\n".join(parts))
        return path


def _compact_png(png: bytes) -> bytes:
    """The PNG with a 256-colour palette: about a quarter of the bytes for line plots, no visible
    change (Pillow comes with matplotlib)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    """No creation date in the files, so that an unchanged report rewrites identical bytes."""
    return {"CreationDate": None} if fmt == "pdf" else {"Software": None}


def _cell(text: str) -> str:
    """A table cell: numbers right-aligned and never wrapped; long text (reasons, commands, version
    lists) may wrap."""
    if re.match(r"^\**[-+≈]?\d+(\.\d+)?(%|\*|\s|$)", text):
        return f"<td class='n'>{_inline(text)}</td>"
    return f"<td class='wrap'>{_inline(text)}</td>" if len(text) > WRAP_AFTER else f"<td>{_inline(text)}</td>"


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code> and **bold** into <b>."""
    escaped = html.escape(text)
    pieces = escaped.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
