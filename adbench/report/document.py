"""A tiny document model rendered to Markdown (figures as PNG files) and self-contained HTML
(figures embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))

    def figure(self, name: str, figure: Any, caption: str) -> None:
        """Render the matplotlib figure now (PNG bytes) and close it."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        self.blocks.append(("figure", (name, buffer.getvalue(), caption)))

    def write_markdown(self, path: Path) -> Path:
        assets = path.parent / f"{path.stem}_files"
        lines = [f"# {self.title}", ""]
        for kind, content in self.blocks:
            if kind == "heading":
                lines += [f"## {content}", ""]
            elif kind == "paragraph":
                lines += [content, ""]
            elif kind == "table":
                header, rows = content
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
                lines.append("")
            elif kind == "figure":
                name, png, caption = content
                assets.mkdir(parents=True, exist_ok=True)
                (assets / f"{name}.png").write_bytes(png)
                lines += [f"![{caption}]({assets.name}/{name}.png)", "", f"*{caption}*", ""]
        path.write_text("\n".join(lines))
        return path

    def write_html(self, path: Path) -> Path:
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%}figcaption{font-style:italic;color:#444}code{background:#f4f4f4}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        for kind, content in self.blocks:
            if kind == "heading":
                parts.append(f"<h2>{html.escape(content)}</h2>")
            elif kind == "paragraph":
                parts.append(f"<p>{_inline(content)}</p>")
            elif kind == "table":
                header, rows = content
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
                parts.append("</table>")
            elif kind == "figure":
                name, png, caption = content
                data = base64.b64encode(png).decode()
                parts.append(
                    f"<figure id='{html.escape(name)}'><img alt='{html.escape(caption)}' "
                    f"src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        path.write_text("\n".join(parts))
        return path


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    escaped = html.escape(text)
    pieces = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
