"""``report.html``: the run's ``report.md`` as one self-contained page.

The Markdown is rendered with markdown-it-py (CommonMark plus tables) and every figure it
links (PNG, SVG, JPEG) is embedded as a ``data:`` URI, so the page opens anywhere, from a mail
attachment or a copied folder, with no network and no other file. Raw HTML in the Markdown is
not passed through (the report holds user-given names: cohort and gene names are text, never
markup). A linked figure that is not there is shown as a line saying so, not as a broken image.

    html = render_html(Path("report.md").read_text(), base_dir=Path("runs/x/report"))
"""

from __future__ import annotations

import base64
import html as html_lib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

HTML_REPORT_FILE = "report.html"

#: the figure types the page embeds, by file suffix
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg", ".gif": "image/gif"}

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em 2em 4em; color: #1f2328; line-height: 1.5;
       background: #ffffff; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: left; }
th { background: #f6f8fa; }
tr:nth-child(2n) td { background: #fbfcfd; }
img { max-width: 100%; height: auto; display: block; margin: .8em 0; }
code { background: #f6f8fa; padding: .1em .3em; border-radius: 4px; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; }
.missing-figure { color: #9a6700; font-style: italic; }
footer { margin-top: 3em; color: #57606a; font-size: .85em; }
"""


def _data_uri(path: Path) -> str | None:
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _embed_images(body: str, base_dir: Path) -> tuple[str, int, list[str]]:
    """Replace every ``<img src="relative">`` by an embedded copy; returns the new body, the
    number embedded and the sources that could not be read."""
    missing: list[str] = []
    embedded = 0

    def repl(match: re.Match) -> str:
        nonlocal embedded
        attrs = match.group(1)
        src_m = re.search(r'\ssrc="([^"]*)"', attrs)
        if not src_m:
            return match.group(0)
        src = html_lib.unescape(src_m.group(1))
        if src.startswith("data:"):
            return match.group(0)
        parsed = urlparse(src)
        if parsed.scheme not in ("", "file"):  # no network: remote figures are not fetched
            missing.append(src)
            return f'<span class="missing-figure">[figure not embedded: {html_lib.escape(src)}]</span>'
        path = Path(unquote(parsed.path))
        if not path.is_absolute():
            # lexically: the report's own folder may not exist yet (it is staged and renamed
            # into place), and "report/../evaluate" needs "report" to exist for the OS
            path = Path(os.path.normpath(base_dir / path))
        uri = _data_uri(path)
        if uri is None:
            missing.append(src)
            alt = re.search(r'\salt="([^"]*)"', attrs)
            label = alt.group(1) if alt and alt.group(1) else src
            return (f'<span class="missing-figure">[figure missing: {label} '
                    f'({html_lib.escape(src)})]</span>')
        embedded += 1
        return "<img" + attrs.replace(src_m.group(0), f' src="{uri}"') + ">"

    body = re.sub(r"<img(\s[^>]*?)\s*/?>", repl, body)
    return body, embedded, missing


def render_html(markdown_text: str, base_dir, title: str = "amu-tf report") -> str:
    """The page for ``markdown_text``, whose relative figure links resolve against
    ``base_dir`` (the folder the Markdown file lives in)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(markdown_text)
    body, _, _ = _embed_images(body, Path(base_dir))
    heading = re.search(r"^#\s+(.+)$", markdown_text, flags=re.M)
    page_title = heading.group(1).strip() if heading else title
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html_lib.escape(page_title)}</title>\n<style>{_STYLE}</style>\n"
            "</head>\n<body>\n<main>\n" + body + "</main>\n"
            "<footer>Written by amu-tf from report.md; every figure is embedded, so this "
            "file is complete on its own.</footer>\n</body>\n</html>\n")


def write_html_report(markdown_path, html_path, base_dir=None) -> Path:
    """Render ``markdown_path`` into ``html_path`` (figures resolved against ``base_dir``,
    by default the Markdown file's folder)."""
    markdown_path, html_path = Path(markdown_path), Path(html_path)
    base = Path(base_dir) if base_dir is not None else markdown_path.parent
    html_path.write_text(render_html(markdown_path.read_text(encoding="utf-8"), base),
                         encoding="utf-8")
    return html_path


__all__ = ["HTML_REPORT_FILE", "render_html", "write_html_report"]
