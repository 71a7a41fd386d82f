"""How the report's static figures look and travel: a colour-blind-safe palette with markers
and dashes, PNG data URIs, and hover points (transparent spots placed over the image in
percent, each with a tooltip — no JavaScript library, works offline)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogFormatterSciNotation,
    LogLocator,
    NullFormatter,
    NullLocator,
)

sns.set_theme(style="whitegrid", context="notebook",
              rc={"legend.fontsize": 9, "legend.title_fontsize": 9, "xtick.labelsize": 10,
                  "ytick.labelsize": 10})

#: Okabe & Ito's palette: distinguishable under the common colour-vision deficiencies
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
#: at most this many series in one panel (more are split into further panels)
MAX_SERIES = 6
DPI = 96


#: more distinguishable colours (Paul Tol's muted set) so that every optimizer has its own
OPTIMIZER_COLOURS = [*OKABE_ITO[:6], "#000000", "#882255", "#44AA99", "#999933", "#AA4499",
                     "#6699CC"]
#: the smallest text in a figure, in points: 9 pt is 12 px at the report's 96 DPI
SMALL_PT = 9


def optimizer_style(name: str) -> dict:
    """One colour, marker and dash per optimizer family (``sgd[lr=0.1]`` → ``sgd``) in every
    figure, from its place in the optimizer registry."""
    from mlpbench.optimizers import REGISTRY

    names = list(REGISTRY)
    base = str(name).split("[")[0]
    i = names.index(base) if base in names else len(names) + sum(map(ord, base))
    return {"color": OPTIMIZER_COLOURS[i % len(OPTIMIZER_COLOURS)],
            "marker": MARKERS[i % len(MARKERS)], "linestyle": DASHES[i % len(DASHES)]}


def series_style(i: int) -> dict:
    """Colour, marker and line style of the i-th series of a panel."""
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": DASHES[i % len(DASHES)]}


def axes_or_new(ax, size=(7.5, 4.2)):
    """``ax``, or a new constrained-layout Axes of ``size`` inches (for figure functions that
    take ``ax=None``, the seaborn convention)."""
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def new_axes(size=(8.5, 4.2), ncols: int = 1, nrows: int = 1, *,
             margins: tuple[float, float, float, float] = (0.85, 0.2, 0.6, 0.4), **kw):
    """A figure with fixed margins in inches ``(left, right, bottom, top)`` (constrained
    layout costs as much as drawing); one Axes or a flat array of them."""
    fig, ax = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)
    w, h = size
    left, right, bottom, top = margins
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=0.12 if kw.get("sharey") else 0.28, hspace=0.5)
    fig._hover = []  # (Axes, x, y, text) in data coordinates
    return ax[0, 0] if ax.size == 1 else ax.ravel()


def panel_grid(n: int, width: float = 4.0, height: float = 3.1):
    """``n`` panels (phases) with shared axes, at most three per row, room for a legend on
    the right: ``(flat array of Axes, columns)``."""
    ncols = min(3, n)
    nrows = -(-n // ncols)
    axes = new_axes((width * ncols + 2.6, height * nrows + 0.4), ncols=ncols, nrows=nrows,
                    sharex=True, sharey=True, margins=(0.85, 2.5, 0.6, 0.35))
    return np.atleast_1d(axes), ncols


def label_bottoms(axes, n: int, ncols: int, xlabel: str) -> None:
    """x tick labels and ``xlabel`` on every used panel with no used panel below it (with a
    shared x axis, matplotlib labels only the last row, leaving a panel above an empty cell
    without ticks)."""
    for j, ax in enumerate(axes[:n]):
        if j + ncols >= n:
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(xlabel)


def hover(ax, xs, ys, texts) -> None:
    """Register tooltips for points of ``ax`` (data coordinates)."""
    fig = ax.figure
    if not hasattr(fig, "_hover"):
        fig._hover = []
    for x, y, t in zip(xs, ys, texts, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            fig._hover.append((ax, float(x), float(y), str(t)))


def legend_outside(ax, title: str | None = None, x: float = 1.01) -> None:
    """A legend to the right of the axes, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(x, 1.0),
                  frameon=False, fontsize=SMALL_PT, title_fontsize=SMALL_PT)


_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si_tick(value: float, _pos=None) -> str:
    """A log-axis tick as plain text: 1k, 10M, 0.01 (no mathtext)."""
    if value <= 0 or not np.isfinite(value):
        return ""
    for scale, suffix in _SI:
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def sci_tick(value: float, _pos=None) -> str:
    """A log-axis tick of a quantity with a unit of its own (seconds): 0.01, 100, 1e6."""
    if value <= 0 or not np.isfinite(value):
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    exp = int(np.floor(np.log10(value)))
    mant = value / 10.0 ** exp
    return f"{mant:g}e{exp}" if round(mant, 6) != 1 else f"1e{exp}"


@dataclass
class Rendered:
    """A figure as a PNG data URI and its hover spots ``(left %, top %, text)``."""

    uri: str
    spots: list[tuple[float, float, str]]


def render(ax_or_fig) -> Rendered:
    """PNG of the figure as a data URI plus hover spots; the figure is closed."""
    fig = getattr(ax_or_fig, "figure", ax_or_fig)
    if isinstance(ax_or_fig, np.ndarray):
        fig = ax_or_fig.ravel()[0].figure
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":  # no minor ticks, plain-text major labels: the
                # tick machinery and mathtext were two thirds of the report's build time
                axis.set_minor_locator(NullLocator())
                lo, hi = sorted(axis.get_view_interval())
                # under two decades: label 1-2-5 steps too (never replacing chosen ticks)
                if isinstance(axis.get_major_locator(), LogLocator) and lo > 0 and hi / lo < 100:
                    axis.set_major_locator(LogLocator(10, subs=(1.0, 2.0, 5.0)))
                if isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                    label = axis.get_label_text().lower()
                    seconds = "second" in label or "(s)" in label
                    axis.set_major_formatter(FuncFormatter(sci_tick if seconds else si_tick))
            else:
                axis.set_minor_formatter(NullFormatter())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width, height = fig.get_size_inches() * DPI
    spots = []
    for ax, x, y, text in getattr(fig, "_hover", []):
        px, py = ax.transData.transform((x, y)) * DPI / fig.dpi
        if 0 <= px <= width and 0 <= py <= height:
            spots.append((100 * px / width, 100 * (1 - py / height), text))
    plt.close(fig)
    spots = merge_spots(spots, width, height)
    return Rendered("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
                    spots)


def merge_spots(spots: list[tuple[float, float, str]], width: float, height: float,
                radius: float = 7.0) -> list[tuple[float, float, str]]:
    """Spots closer than ``radius`` pixels to an earlier one join it: one spot whose tooltip
    lists every point under it (a spot hidden under another could never be reached)."""
    kept: list[list] = []
    for x, y, text in spots:
        for k in kept:
            if abs(k[0] - x) * width / 100 < radius and abs(k[1] - y) * height / 100 < radius:
                if text not in k[2]:
                    k[2].append(text)
                break
        else:
            kept.append([x, y, [text]])
    return [(x, y, "\n".join(t)) for x, y, t in kept]


def to_data_uri(ax) -> str:
    """PNG of the Axes' figure as a data URI; the figure is closed."""
    return render(ax).uri
