"""Charts and tables for the evidence pages, readable at a glance: bars that never overlap
(horizontal and taller when labels are many or long), values in full, integer batch axes, UTC
time axes, and an empty table that reads "none found". The notebooks call them as nb.bar and
nb.line; importing this module in a kernel registers the empty-table display."""

from __future__ import annotations

import html
import math
import numbers
import textwrap

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator
import numpy as np
import pandas as pd


def number(value) -> str:
    """A value as a chart labels it: a whole number whole, with thousands separators (1,234),
    any other with the digits it has (4.8, 0.25, 1,234.5; at most 6 decimals, so that a sum's
    float noise reads 0.3, not 0.30000000000000004); None or NaN: ""."""
    if value is None:
        return ""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    text = f"{v:,.6f}".rstrip("0").rstrip(".")
    return f"{v:.3g}" if text in ("0", "-0") else text     # smaller than a millionth


def bar(frame: pd.DataFrame, x: str, y: str | list[str], title: str, ylabel: str = "rows"):
    """A bar chart of ``frame`` (one bar, or one per column of ``y``, per row; shown inline).

    Each bar is labelled with its full value (number()); zero bars are drawn as zero. Few short
    labels: upright bars; many or long ones: horizontal bars, the figure as tall as its bars
    need, so that no two labels overlap and none is cut off (checked on the drawn figure)."""
    ys = [y] if isinstance(y, str) else list(y)
    names = [_wrap(v, BAR_LABEL_WIDTH) for v in frame[x]]
    upright = len(names) <= MAX_UPRIGHT_BARS and all(
        len(line) <= MAX_UPRIGHT_LABEL for name in names for line in name.split("\n"))
    key = not isinstance(y, str)          # a legend when y names columns (as before)
    if not (upright and _bar_figure(frame, names, ys, title, ylabel, key, horizontal=False)):
        _bar_figure(frame, names, ys, title, ylabel, key, horizontal=True)   # (upright ones would overlap)
    plt.show()
    return None


MAX_UPRIGHT_BARS = 8      # more bars than this, or a longer label: horizontal bars
MAX_UPRIGHT_LABEL = 14
BAR_LABEL_WIDTH = 36      # a longer category label is wrapped onto lines of this many characters
LABEL_GAP = 4             # pixels at least between two tick labels
NICE_STEPS = [1, 2, 2.5, 5, 10]   # value ticks: 0, 250, 500; never 150, 300


def _wrap(value, width: int) -> str:
    return "\n".join(textwrap.wrap(str(value), width, break_on_hyphens=False)) or str(value)


def _bar_figure(frame, names, ys, title, ylabel, key: bool, horizontal: bool):
    """The drawn figure; None for upright bars whose labels would overlap."""
    n, groups = len(names), len(ys)
    values = frame[ys].apply(pd.to_numeric, errors="coerce").astype(float).to_numpy() if n else None
    if horizontal:
        lines = max((name.count("\n") + 1 for name in names), default=1)
        slot = max(0.15 + 0.15 * groups, 0.17 * lines + 0.12)    # inches per row of the frame
        size = (7.0, 1.3 + slot * max(n, 1))
    else:
        size = (7.0, 3.0)
    for _ in range(6):
        fig, ax = plt.subplots(figsize=size)
        fig.suptitle(_wrap(title, 80))    # centred on the figure: the axes may sit far to the right
        if not n:
            _none_found(ax)
            fig.tight_layout()
            return fig
        width = 0.8 / groups
        positions = np.arange(n)
        for k, column in enumerate(ys):
            where = positions - 0.4 + width * (k + 0.5)
            draw = ax.barh if horizontal else ax.bar
            bars = draw(where, np.nan_to_num(values[:, k]), width, label=column)
            ax.bar_label(bars, labels=[number(v) for v in frame[column]], padding=3)
        value_axis, category_axis = (ax.xaxis, ax.yaxis) if horizontal else (ax.yaxis, ax.xaxis)
        category_axis.set_ticks(positions, names)
        category_axis.set_tick_params(length=0)
        if horizontal:
            ax.invert_yaxis()              # the frame's first row at the top
            ax.set_xlabel(ylabel)
        else:
            ax.set_ylabel(ylabel)
        finite = values[np.isfinite(values)]
        low = min(0.0, float(finite.min()) * 1.15) if finite.size else 0.0
        high = max(1.0, float(finite.max()) * 1.15) if finite.size else 1.0   # all zeros still reads as zero
        (ax.set_xlim if horizontal else ax.set_ylim)(low, high)
        integral = bool(finite.size) and bool(np.all(finite == np.round(finite)))
        value_axis.set_major_locator(MaxNLocator(integer=integral, steps=NICE_STEPS))
        value_axis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
        if key:                            # the key above the bars, under the title
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=groups, frameon=False,
                      borderaxespad=0.2)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        _fit(fig, ax, horizontal)
        renderer = fig.canvas.get_renderer()
        if not overlapping(tick_labels(category_axis), renderer, gap=LABEL_GAP):
            return fig
        plt.close(fig)
        if not horizontal:
            return None
        size = (size[0], size[1] * 1.3)      # taller, until the rows' labels clear each other
    return fig


def _fit(fig, ax, horizontal: bool) -> None:
    """Lay out the figure so that every bar's value label lies inside the axes (the value axis
    as long as the longest label needs) and no text is cut off by the figure's edge, with no
    more value ticks than fit side by side."""
    for _ in range(4):
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = ax.get_window_extent(renderer)
        low, high = ax.get_xlim() if horizontal else ax.get_ylim()
        length = box.width if horizontal else box.height
        need = high
        for text in ax.texts:                               # the bars' value labels
            if not text.get_text():
                continue
            extent = text.get_window_extent(renderer)
            far = (extent.x1 - box.x0) if horizontal else (extent.y1 - box.y0)   # px from the axis start
            anchor = text.xy[0] if horizontal else text.xy[1]                     # the bar's end (data)
            beyond = far - (anchor - low) / (high - low) * length               # the label past its bar, px
            if far > length - 2 and beyond < length - 4:
                need = max(need, low + (anchor - low) * length / (length - beyond - 4))
        if need <= high * 1.0001:
            break
        (ax.set_xlim if horizontal else ax.set_ylim)(low, need * 1.02)
    _thin_ticks(fig, ax.xaxis if horizontal else ax.yaxis)


def _thin_ticks(fig, axis) -> None:
    """Fewer ticks on ``axis`` until their labels stand clear of each other (laid out again)."""
    for _ in range(4):
        fig.tight_layout()
        fig.canvas.draw()
        labels = tick_labels(axis)
        if not overlapping(labels, fig.canvas.get_renderer(), gap=LABEL_GAP):
            return
        fewer = max(2, len(labels) // 2)
        locator = axis.get_major_locator()
        if isinstance(locator, MaxNLocator):
            locator.set_params(nbins=fewer)
        elif isinstance(locator, mdates.AutoDateLocator):
            locator = mdates.AutoDateLocator(minticks=2, maxticks=fewer)
            axis.set_major_locator(locator)
            axis.set_major_formatter(_date_formatter(locator))
        else:
            return
    fig.tight_layout()


def _date_formatter(locator):
    """Times as 12:00:05, the date once at the axis' end."""
    return mdates.ConciseDateFormatter(locator, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"],
                                       zero_formats=["", "%Y", "%b", "%b-%d", "%H:%M", "%H:%M:%S"])


def tick_labels(axis) -> list:
    """The labels of the ticks ``axis`` draws (those within its view; the axis keeps others,
    spare or stale, that are not drawn), once the figure has been drawn."""
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-9
    locs = axis.get_majorticklocs()
    return [tick.label1 for loc, tick in zip(locs, axis.get_major_ticks(len(locs)))
            if low - slack <= loc <= high + slack and tick.label1.get_visible() and tick.label1.get_text()]


def overlapping(labels, renderer=None, gap: float = 0) -> bool:
    """Whether any two of these drawn texts (tick_labels()) overlap on the figure, or come
    closer than ``gap`` pixels."""
    boxes = [t.get_window_extent(renderer).padded(gap / 2) for t in labels
             if t.get_visible() and t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _none_found(ax) -> None:
    ax.text(0.5, 0.5, NONE_FOUND, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def line(frame: pd.DataFrame, x: str, y: str, title: str, ylabel: str, by: str | None = None):
    """A line chart of ``frame`` (one line per value of ``by``), shown inline.

    An integer ``x`` (a batch number) has integer ticks only; a date ``x`` reads as dates and
    times (UTC when it has a time zone); values on the axes have thousands separators."""
    frame, xlabel = _x_axis(frame, x)
    fig, ax = plt.subplots(figsize=(7, 3))
    fig.suptitle(_wrap(title, 80))
    if not len(frame):
        _none_found(ax)
        fig.tight_layout()
        plt.show()
        return None
    groups = frame.groupby(by) if by else [(y, frame)]
    for name, part in groups:
        ax.plot(part[x].to_numpy(), part[y].to_numpy(), marker=".", linewidth=1, label=str(name))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    if by:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
    column = frame[x]
    if pd.api.types.is_datetime64_any_dtype(column):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(_date_formatter(locator))
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        known = column.dropna().to_numpy(dtype=float)
        if pd.api.types.is_integer_dtype(column) or (known.size and np.all(known == np.round(known))):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=NICE_STEPS, min_n_ticks=1))   # a count: batch 1, 2, 3, never 1.5
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _thin_ticks(fig, ax.xaxis)
    plt.show()
    return None


def _x_axis(frame: pd.DataFrame, x: str) -> tuple[pd.DataFrame, str]:
    """The frame with a time-zoned ``x`` in UTC without its zone (matplotlib's dates), and the label."""
    column = frame[x] if len(frame.columns) else None
    if column is not None and isinstance(column.dtype, pd.DatetimeTZDtype):
        frame = frame.assign(**{x: column.dt.tz_convert("UTC").dt.tz_localize(None)})
        return frame, f"{x} (UTC)"
    return frame, x


# --------------------------------------------------------------------------- empty results
NONE_FOUND = "none found"


def frame_html(frame: pd.DataFrame) -> str | None:
    """A DataFrame's HTML in the notebook: pandas' own, or for one without rows a table of its
    column names over a row saying "none found" (pandas shows the names alone, which reads as
    a table that failed to load)."""
    if len(frame):
        return frame._repr_html_()
    if not len(frame.columns):
        return f"<p><em>{NONE_FOUND}</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    return ('<div>\n<table border="1" class="dataframe">\n'
            f'  <thead>\n    <tr style="text-align: right;">{head}</tr>\n  </thead>\n'
            f'  <tbody>\n    <tr><td colspan="{len(frame.columns)}" style="text-align: left;">'
            f'<em>{NONE_FOUND}</em></td></tr>\n  </tbody>\n</table>\n</div>')


def frame_text(frame: pd.DataFrame) -> str | None:
    """A DataFrame without rows as text: "none found (columns: a, b)"; None for one with rows."""
    if len(frame):
        return None
    if not len(frame.columns):
        return NONE_FOUND
    return f"{NONE_FOUND} (columns: {', '.join(str(c) for c in frame.columns)})"


def _pretty_frame(frame: pd.DataFrame, printer, cycle: bool) -> None:
    from IPython.lib.pretty import _repr_pprint

    text = frame_text(frame)
    if text is None:
        _repr_pprint(frame, printer, cycle)    # what IPython prints for it anyway
    else:
        printer.text(text)


def show_empty_frames(ip=None) -> bool:
    """Make every DataFrame the kernel displays without rows read "none found", naming its
    columns, in the notebook's HTML and text outputs (and so in the HTML export); frames with
    rows are shown exactly as before. Done when this module is imported in a kernel; False
    outside IPython."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return False
    formatters = ip.display_formatter.formatters
    formatters["text/html"].for_type(pd.DataFrame, frame_html)
    formatters["text/plain"].for_type(pd.DataFrame, _pretty_frame)
    return True


show_empty_frames()
