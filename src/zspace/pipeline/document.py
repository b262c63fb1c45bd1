"""A tiny document model rendered twice: Markdown (figures linked) and self-contained HTML
(figures embedded as data URIs, no external resources, opens offline)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Document:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def table(self, headers: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", headers, [[str(c) for c in row] for row in rows]))

    def code(self, text: str, language: str = "") -> None:
        self.blocks.append(("code", text, language))

    def image(self, path: str, caption: str) -> None:
        """`path` relative to the folder the report is written into."""
        self.blocks.append(("image", path, caption))

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                lines += [f"{'#' * block[1]} {block[2]}", ""]
            elif kind == "text":
                lines += [block[1], ""]
            elif kind == "table":
                headers, rows = block[1], block[2]
                lines.append("| " + " | ".join(headers) + " |")
                lines.append("|" + "|".join("---" for _ in headers) + "|")
                lines += ["| " + " | ".join(row) + " |" for row in rows]
                lines.append("")
            elif kind == "code":
                lines += [f"```{block[2]}", block[1].rstrip(), "```", ""]
            elif kind == "image":
                lines += [f"![{block[2]}]({block[1]})", f"*{block[2]}*", ""]
        return "\n".join(lines)

    def to_html(self, root: Path) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "text":
                body.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                rows = "".join(
                    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in block[2]
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "code":
                body.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
            elif kind == "image":
                body.append(_figure(root / block[1], block[2]))
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n"
        )


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans."""
    escaped = html.escape(text)
    parts = escaped.split("`")
    escaped = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _figure(path: Path, caption: str) -> str:
    if not path.is_file():
        return f"<p><em>missing figure: {html.escape(str(path.name))}</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:960px;margin:0 auto;padding:24px 32px;background:#fff}
h1{border-bottom:2px solid #333;padding-bottom:6px}h2{margin-top:36px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:12px 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f0f0}
figure{margin:16px 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}
"""
