"""report.html: the report's Markdown as one self-contained page (figures embedded), checked
as text and in a real browser."""

import base64
import re

import numpy as np
import pytest


def _png(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.arange(10), np.arange(10) ** 2)
    fig.savefig(path)
    plt.close(fig)
    return path


def _page(tmp_path):
    from amu_tf.evaluation.html_report import write_html_report

    (tmp_path / "figs").mkdir()
    png = _png(tmp_path / "figs" / "curve.png")
    (tmp_path / "figs" / "mark.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="#1f77b4"/></svg>')
    md = tmp_path / "report" / "report.md"
    md.parent.mkdir()
    md.write_text("# Run <b>x</b>\n\n| model | AUC |\n|---|---|\n| logreg | 0.70 |\n\n"
                  "![ROC](../figs/curve.png)\n\n![mark](../figs/mark.svg)\n\n"
                  "![gone](../figs/missing.png)\n", encoding="utf-8")
    return write_html_report(md, md.parent / "report.html"), png


def test_figures_are_embedded_and_text_is_escaped(tmp_path):
    html_path, png = _page(tmp_path)
    page = html_path.read_text()
    uris = re.findall(r'src="data:image/(png|svg\+xml);base64,([^"]+)"', page)
    assert [kind for kind, _ in uris] == ["png", "svg+xml"]
    assert base64.b64decode(uris[0][1]) == png.read_bytes()
    assert "figure missing: gone" in page and "<table>" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # names are text
    assert "<title>Run &lt;b&gt;x&lt;/b&gt;</title>" in page
    assert not re.search(r'src="(?!data:)', page)  # nothing to fetch


def test_links_resolve_while_the_report_folder_is_staged(tmp_path):
    """A run's report links ../evaluate/...; the HTML is written before the report's own
    folder exists (staged, then renamed into place), so the links resolve lexically."""
    from amu_tf.evaluation.html_report import render_html

    (tmp_path / "evaluate").mkdir()
    _png(tmp_path / "evaluate" / "roc.png")
    page = render_html("![ROC](../evaluate/roc.png)\n", base_dir=tmp_path / "report")
    assert not (tmp_path / "report").exists() and "data:image/png;base64," in page


def test_the_page_opens_in_a_browser(tmp_path, browser_check):
    html_path, _ = _page(tmp_path)
    shot = browser_check(html_path, min_images=2)
    if shot is None:
        pytest.skip("no chromium here (apt-get install chromium; CI installs it)")
    assert shot.stat().st_size > 1000
