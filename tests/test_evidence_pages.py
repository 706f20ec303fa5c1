"""The evidence pages read at a glance (issue 11, part 3): charts without overlapping or cut-off
labels, full value labels and integer batch axes; an empty result says "none found"; status
lines in characters every font has. Charts are drawn with matplotlib's Agg backend and measured;
the tables' rendering is that of a notebook executed by papermill and exported to HTML. What a
spec words (the status line, a real stage's page) is checked once per app (Data Hub, the projects
app); the charts and tables are drawn from made-up frames, whatever the spec."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import papermill
import pytest
from conftest import notebook_text
from matplotlib.text import Text
from nbconvert import HTMLExporter   # as the run's pages are exported (pages.export_stage)

from tenancy_runbook import nb
from tenancy_runbook.stages import check_backfill

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("Connection", "MetricDaily", "Insight", "ChatMessage")
STEPS = ("add CHECK NOT VALID", "validate CHECK", "SET NOT NULL", "drop CHECK")


@pytest.fixture
def plt():
    """pyplot on the Agg backend (what the inline backend draws with), every figure closed after."""
    import matplotlib.pyplot as pyplot
    before = matplotlib.get_backend()
    pyplot.switch_backend("Agg")
    pyplot.close("all")
    yield pyplot
    pyplot.close("all")
    pyplot.switch_backend(before)


def drawn(pyplot):
    """The figure nb.bar / nb.line just drew (Agg's show() leaves it open), drawn."""
    assert len(pyplot.get_fignums()) == 1, "one figure per chart"
    fig = pyplot.gcf()
    fig.canvas.draw()
    return fig, fig.axes[0], fig.canvas.get_renderer()


def shown(axis) -> list[Text]:
    """The tick labels ``axis`` draws: those within its view (it keeps spare ones it does not draw)."""
    low, high = sorted(axis.get_view_interval())
    locs = list(axis.get_majorticklocs())
    ticks = axis.get_major_ticks(len(locs))
    margin = (high - low) * 1e-9
    return [t.label1 for loc, t in zip(locs, ticks) if low - margin <= loc <= high + margin and t.label1.get_text()]


def overlaps(texts, renderer) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]


def cut_off(fig, renderer) -> bool:
    """Whether anything drawn reaches beyond the figure's edge (a hundredth of an inch allowed)."""
    drawn_box = fig.get_tightbbox(renderer)            # inches
    width, height = fig.get_size_inches()
    return (drawn_box.x0 < -0.01 or drawn_box.y0 < -0.01 or drawn_box.x1 > width + 0.01
            or drawn_box.y1 > height + 0.01)


def ddl_steps() -> pd.DataFrame:
    """What DDLLog.frame() holds after 40_enforce_not_null: 16 steps with long names (fillna(0)
    as the notebooks give it to nb.bar)."""
    rows = [{"step": f"{t}: {s}", "table": t, "attempts": 1, "waited_ms": 1234 if s == "SET NOT NULL" else 3,
             "held_ms": 4.8 if s == "SET NOT NULL" else 0.25, "result": "ok"} for t in TABLES for s in STEPS]
    return pd.DataFrame(rows)


def test_a_bar_chart_of_sixteen_long_labels_has_none_overlapping_or_cut_off(plt):
    nb.bar(ddl_steps(), x="step", y=["waited_ms", "held_ms"],
           title="Each DDL step: time spent waiting for its lock, and holding it", ylabel="ms")
    fig, ax, renderer = drawn(plt)

    for axis in (ax.xaxis, ax.yaxis):
        assert not overlaps(shown(axis), renderer), overlaps(shown(axis), renderer)
    steps = [f"{t}: {s}" for t in TABLES for s in STEPS]
    names = [t.get_text() for t in shown(ax.yaxis) + shown(ax.xaxis)]
    assert all(step in names for step in steps), names                   # every step named, in full
    assert sum(len(shown(axis)) >= 3 for axis in (ax.xaxis, ax.yaxis)) == 2, "a value axis with ticks"
    assert not cut_off(fig, renderer), fig.get_tightbbox(renderer)
    # every value label lies inside the axes, none over another
    inside = ax.get_window_extent(renderer)
    for label in ax.texts:
        box = label.get_window_extent(renderer)
        assert box.x1 <= inside.x1 + 1 and box.y0 >= inside.y0 - 1, label.get_text()
    assert not overlaps(ax.texts, renderer), overlaps(ax.texts, renderer)


def test_bar_values_are_labelled_in_full(plt):
    nb.bar(ddl_steps(), x="step", y=["waited_ms", "held_ms"], title="Each DDL step", ylabel="ms")
    _, ax, _ = drawn(plt)
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("4.8") == 4 and labels.count("0.25") == 12, labels
    assert labels.count("1,234") == 4 and labels.count("3") == 12, labels

    plt.close("all")
    counts = pd.DataFrame({"table": list(TABLES), "nulls": [0, 1234567, 3, 0]})
    nb.bar(counts, x="table", y="nulls", title="NULL workspaceId per table")
    fig, ax, renderer = drawn(plt)
    assert [t.get_text() for t in ax.texts] == ["0", "1,234,567", "3", "0"]
    assert [t.get_text() for t in shown(ax.xaxis)] == list(TABLES)        # four short names: upright bars
    assert "1,000,000" in [t.get_text() for t in shown(ax.yaxis)]
    for axis in (ax.xaxis, ax.yaxis):
        assert not overlaps(shown(axis), renderer), overlaps(shown(axis), renderer)
    assert not cut_off(fig, renderer), fig.get_tightbbox(renderer)


@pytest.mark.parametrize("value, text", [(4.8, "4.8"), (0.25, "0.25"), (1234, "1,234"), (1234.5, "1,234.5"),
                                         (3.0, "3"), (0.1 + 0.2, "0.3"), (float("nan"), ""), (None, "")])
def test_number(value, text):
    assert nb.number(value) == text


def test_a_batch_line_chart_has_integer_ticks_only(plt):
    batches = pd.DataFrame({"table": ["Connection"] * 3 + ["Insight"] * 2, "batch": [1, 2, 3, 1, 2],
                            "ms": [10.5, 20.0, 30.0, 5.0, 7.0]})
    nb.line(batches, x="batch", y="ms", by="table", title="Duration of each batch transaction", ylabel="ms")
    fig, ax, renderer = drawn(plt)
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert [t.get_text() for t in shown(ax.xaxis)] == [str(int(t)) for t in ticks]
    assert not cut_off(fig, renderer), fig.get_tightbbox(renderer)

    plt.close("all")                      # one batch: batch 1, not 0.96 0.98 1 1.02 1.04
    nb.line(batches.head(1), x="batch", y="ms", title="Duration of each batch transaction", ylabel="ms")
    _, ax, _ = drawn(plt)
    assert [t.get_text() for t in shown(ax.xaxis)] == ["1"]


def test_a_date_line_chart_reads_as_times(plt):
    at = pd.Timestamp("2024-06-01T12:00:00Z") + pd.to_timedelta(range(0, 25, 1), unit="s")
    nb.line(pd.DataFrame({"at": at, "replica_lag_mb": [0.5] * len(at)}), x="at", y="replica_lag_mb",
            title="Replica lag read between batches", ylabel="MB behind")
    fig, ax, renderer = drawn(plt)
    labels = [t.get_text() for t in shown(ax.xaxis)]
    assert len(labels) >= 2 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in labels), labels
    assert ax.get_xlabel() == "at (UTC)"
    assert not overlaps(shown(ax.xaxis), renderer)


# --------------------------------------------------------------------------- tables, in a kernel
SHOW = """
import pandas as pd
full = pd.DataFrame({"table": ["Connection", "Insight"], "rows": [1234, 5]})
empty = pd.DataFrame(columns=["script", "line", "rule", "statement"])
full
"""
IMPORT = "from tenancy_runbook import nb"


def run(tmp_path: Path, *cells: str) -> nbformat.NotebookNode:
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source, out = tmp_path / "probe.ipynb", tmp_path / "executed.ipynb"
    nbformat.write(book, source)
    papermill.execute_notebook(str(source), str(out), kernel_name="python3", cwd=str(tmp_path),
                               progress_bar=False)
    return nbformat.read(out, as_version=4)


def data(cell) -> dict:
    [output] = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
    return output.data


def test_an_empty_result_says_none_found_and_a_full_one_shows_as_before(tmp_path):
    executed = run(tmp_path, SHOW, "empty", IMPORT, "display(empty)", "full",
                   "nb.bar(full, x='table', y='rows', title='Rows')")
    before, empty_before, _, empty_after, full_after, chart = executed.cells

    assert "none found" not in json.dumps(data(empty_before))        # pandas: the column names alone
    text, page = data(empty_after)["text/plain"], data(empty_after)["text/html"]
    assert text == "none found (columns: script, line, rule, statement)"
    assert "none found" in page and all(f"<th>{c}</th>" in page for c in ("script", "line", "rule", "statement"))
    assert data(full_after) == data(before), "a frame with rows renders exactly as before"
    assert "image/png" in data(chart) and not [o for o in chart.outputs if o.output_type == "execute_result"], \
        "a chart: an image, no <Axes ...> line"

    html, _ = HTMLExporter(mathjax_url="", require_js_url="", jquery_url="").from_notebook_node(executed)
    assert re.search(r"<th>statement</th>.*?none found", html, re.S)


# --------------------------------------------------------------------------- status lines
def renderable(text: str) -> list[str]:
    """Characters of ``text`` that are not plain text in every font: outside the Basic
    Multilingual Plane, an emoji or pictograph block, a variation selector, or missing from
    DejaVu Sans (matplotlib's own font and the fallback of most Linux browsers)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    font = FT2Font(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")))
    bad = []
    for ch in text:
        code = ord(ch)
        if (code > 0xFFFF or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF or 0xFE00 <= code <= 0xFE0F
                or (code >= 0x80 and font.get_char_index(code) == 0)):
            bad.append(f"U+{code:04X} {unicodedata.name(ch, '?')}")
    return bad


def test_the_status_line_renders_without_an_emoji_font(app):
    assert check_backfill.success() == f"PASSED: All {app.title} workspaceId values are backfilled (no NULLs)."
    assert not renderable(check_backfill.success()), renderable(check_backfill.success())
    assert renderable("✅ done") == ["U+2705 WHITE HEAVY CHECK MARK"]       # the check itself


def test_no_printed_text_in_the_code_or_notebooks_needs_an_emoji_font():
    sources = [*sorted((ROOT / "src" / "tenancy_runbook").rglob("*.py")), *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    assert len(sources) > 20
    found = {str(p.relative_to(ROOT)): renderable(p.read_text(encoding="utf-8")) for p in sources}
    assert not {p: chars for p, chars in found.items() if chars}


# --------------------------------------------------------------------------- a real stage's page
def test_the_preflight_page_says_none_found_for_what_it_found_none_of(app, seeded, tmp_path):
    """00_preflight on a database where the rule places every row and no two rows collide on the
    unique key: its tables of projected duplicates and of unplaceable users say so, in the notebook
    and its page."""
    url = seeded(shared_pairs=0, users_without_default=0)
    notebooks = ROOT / "notebooks"
    out = tmp_path / "00_preflight.ipynb"
    result = subprocess.run([sys.executable, "-m", "papermill", str(notebooks / "00_preflight.ipynb"), str(out),
                             "--no-progress-bar"], cwd=notebooks, env={**os.environ, "DATABASE_URL": url},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]

    text = notebook_text(out)
    assert "Empty DataFrame" not in text
    assert text.count("none found (columns: ") >= 2, text        # collisions, unplaceable users
    page, _ = HTMLExporter(mathjax_url="", require_js_url="", jquery_url="").from_notebook_node(
        nbformat.read(out, as_version=4))
    assert page.count("<em>none found</em>") >= 2
