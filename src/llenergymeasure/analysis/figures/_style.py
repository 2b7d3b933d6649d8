"""Shared style, sizes, palette, labels and save helpers of the publication figures.

Nothing here changes matplotlib's global state: :func:`paper_style` applies the shipped
``paper.mplstyle`` inside a context manager (:func:`matplotlib.style.context`), which
restores every rcParam on exit, and the plot functions never call
:func:`matplotlib.style.use`.

The palette is Okabe and Ito's eight colours, distinguishable under the common colour
vision deficiencies; when more than eight series are drawn, :func:`series_styles` pairs
each colour with a marker and a line style so series stay distinguishable in greyscale.

References
----------
.. [1] M. Okabe and K. Ito, "Color Universal Design (CUD): how to make figures and
   presentations that are friendly to colorblind people", 2008,
   https://jfly.uni-koeln.de/color/.
.. [2] B. Wong, "Points of view: Color blindness", Nature Methods 8:441, 2011.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FORMATS",
    "OKABE_ITO",
    "ONE_COLUMN_IN",
    "TWO_COLUMN_IN",
    "FigureDataError",
    "cap_series",
    "figure_size",
    "new_axes",
    "paper_style",
    "place_legend",
    "require_columns",
    "save_figure",
    "series_styles",
    "setting_labels",
    "shorten",
    "show_in_notebook",
    "shows_in_notebook",
    "si_formatter",
    "signal_unit",
    "style_path",
    "unit_axis",
]

logger = logging.getLogger(__name__)

#: Width in inches of one journal column (IEEE, ACM and Elsevier two-column layouts).
ONE_COLUMN_IN = 3.5
#: Width in inches of a figure spanning both columns (IEEE ``\textwidth``).
TWO_COLUMN_IN = 7.16

#: Okabe–Ito colours, ordered so that the first ones have the best contrast on white.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "bluish_green": "#009E73",
    "reddish_purple": "#CC79A7",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}

#: File formats :func:`save_figure` writes.
FORMATS: tuple[str, ...] = ("pdf", "svg", "png")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")


class FigureDataError(ValueError):
    """A figure's data step got a frame it cannot use; the message names the column."""


def require_columns(frame: pd.DataFrame, *columns: str) -> None:
    """Raise :class:`FigureDataError` naming the first of ``columns`` that ``frame`` lacks."""
    for col in columns:
        if col not in frame.columns:
            raise FigureDataError(f"results frame lacks column {col!r}")


def style_path() -> Path:
    """Path of the shipped ``paper.mplstyle``."""
    ref = resources.files("llenergymeasure.analysis.figures").joinpath("paper.mplstyle")
    return Path(str(ref))


@contextlib.contextmanager
def paper_style(**overrides: Any) -> Iterator[None]:
    """Apply the shipped paper style (and ``overrides``) for the duration of a block.

    Parameters
    ----------
    **overrides
        rcParams set on top of the style, e.g. ``paper_style(**{"font.size": 9})``.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> before = mpl.rcParams["font.size"]
    >>> with paper_style():
    ...     mpl.rcParams["font.size"]
    8.0
    >>> mpl.rcParams["font.size"] == before
    True
    """
    import matplotlib.style

    with matplotlib.style.context([str(style_path()), overrides or {}]):
        yield


def figure_size(columns: float = 1, aspect: float = 0.68, *, height: float | None = None
                ) -> tuple[float, float]:
    """Figure size in inches for a width of one or two journal columns.

    Parameters
    ----------
    columns : {1, 2} or float
        1 gives :data:`ONE_COLUMN_IN`, 2 gives :data:`TWO_COLUMN_IN`; another positive
        number is a width in inches.
    aspect : float, default 0.68
        Height over width, used when ``height`` is None.
    height : float, optional
        Height in inches.

    Returns
    -------
    (float, float)
        ``(width, height)``.
    """
    if columns == 1:
        width = ONE_COLUMN_IN
    elif columns == 2:
        width = TWO_COLUMN_IN
    elif columns > 0:
        width = float(columns)
    else:
        raise ValueError(f"columns must be 1, 2 or a positive width in inches, got {columns!r}")
    if height is None:
        if not aspect > 0:
            raise ValueError(f"aspect must be > 0, got {aspect!r}")
        height = width * aspect
    return width, float(height)


def new_axes(ax: Axes | None, columns: float = 1, aspect: float = 0.68) -> Axes:
    """``ax`` itself, or the axes of a new figure of the given journal width."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figure_size(columns, aspect))
    return fig.add_subplot()


def series_styles(labels: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """A colour, marker and line style per label (stable in the order given).

    The first eight labels get the eight Okabe–Ito colours with solid lines and
    distinct markers; later ones reuse the colours with the next line style, so no two
    labels share all three.
    """
    colours = list(OKABE_ITO.values())
    out: dict[Any, dict[str, Any]] = {}
    for i, lab in enumerate(dict.fromkeys(labels)):
        cycle, pos = divmod(i, len(colours))
        out[lab] = {
            "color": colours[pos],
            "marker": _MARKERS[(pos + cycle) % len(_MARKERS)],
            "linestyle": _LINESTYLES[cycle % len(_LINESTYLES)],
        }
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:g}"
    return str(value)


def setting_labels(frame: pd.DataFrame) -> pd.Series:
    """Short, unique labels for the criterion settings of a replay frame.

    A criterion with one setting in ``frame`` is labelled by its name; a criterion with
    several settings by its name and the ``param_*`` values that differ between them,
    ``"rolling_cv(threshold=0.02, window=10)"``. Frames without ``criterion`` use
    ``spec``.

    Returns
    -------
    Series of str
        Aligned with ``frame``'s index.
    """
    if "spec" not in frame.columns:
        if "criterion" in frame.columns:
            return frame["criterion"].astype(str)
        raise FigureDataError("the frame needs a 'spec' or 'criterion' column")
    if "criterion" not in frame.columns:
        return frame["spec"].astype(str)
    labels = pd.Series(index=frame.index, dtype=object)
    pcols = [c for c in frame.columns if c.startswith("param_") and c != "param_signal"]
    for name, g in frame.groupby("criterion", sort=False):
        specs = pd.unique(g["spec"])
        if len(specs) == 1:
            labels.loc[g.index] = str(name)
            continue
        first = g.drop_duplicates("spec")
        varying = [c for c in pcols if first[c].nunique(dropna=False) > 1]
        by_spec: dict[str, str] = {}
        for _, row in first.iterrows():
            parts = [f"{c[len('param_'):]}={_short(row[c])}" for c in varying]
            by_spec[row["spec"]] = f"{name}({', '.join(parts)})" if parts else str(row["spec"])
        if len(set(by_spec.values())) < len(by_spec):
            by_spec = {s: str(s) for s in by_spec}
        labels.loc[g.index] = g["spec"].map(by_spec)
    return labels.astype(str)


# --- units and ticks ------------------------------------------------------------------

#: Column-name suffix -> (quantity, base unit, factor from the column's unit to the base).
_UNIT_SUFFIXES: dict[str, tuple[str, str, float]] = {
    "_ns": ("time", "s", 1e-9),
    "_us": ("time", "s", 1e-6),
    "_ms": ("time", "s", 1e-3),
    "_s": ("time", "s", 1.0),
    "_w": ("power", "W", 1.0),
    "_mj": ("energy", "J", 1e-3),
    "_j": ("energy", "J", 1.0),
    "_mhz": ("clock", "Hz", 1e6),
    "_c": ("temperature", "°C", 1.0),
}
_SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
                (1e-9, "n"), (1e-12, "p"))


def signal_unit(signal: str) -> tuple[str, str, float]:
    """``(name, base unit, factor)`` of a column named with its unit, e.g. ``latency_ms``.

    ``signal_unit("latency_ms") == ("latency", "s", 1e-3)``: values times ``factor`` are in
    the base unit. A name without a known suffix gives ``(name, "", 1.0)``.
    """
    low = signal.lower()
    for suffix, (_, unit, factor) in sorted(_UNIT_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if low.endswith(suffix) and len(low) > len(suffix):
            return signal[: -len(suffix)].replace("_", " "), unit, factor
    return signal.replace("_", " "), "", 1.0


def _si_prefix(magnitude: float, unit: str) -> tuple[float, str]:
    """(scale, prefix) so that ``magnitude / scale`` lies in [1, 1000)."""
    if unit in ("", "°C") or not math.isfinite(magnitude) or magnitude <= 0:
        return 1.0, ""
    for scale, prefix in _SI_PREFIXES:
        if magnitude >= scale * 0.9995:
            if unit == "s" and scale > 1:  # 1.5 ks reads worse than 1500 s
                return 1.0, ""
            return scale, prefix
    return _SI_PREFIXES[-1]


@functools.cache
def _si_formatter_class() -> type:
    from matplotlib.ticker import Formatter

    class _SIFormatter(Formatter):  # type: ignore[misc]
        def __init__(self, unit: str, factor: float, label: str | None,
                     per_tick: bool = False) -> None:
            self.per_tick = per_tick
            self.unit = unit
            self.factor = float(factor)
            self.label = label
            self._scale = 1.0
            self._prefix = ""
            self._decimals = 0

        def format_ticks(self, values: Any) -> list[str]:
            vals = np.asarray(list(values), dtype=np.float64) * self.factor
            if self.per_tick:  # log axes: each tick its own prefix (50 µs, 1 ms, 20 ms)
                if self.label is not None and getattr(self, "axis", None) is not None:
                    self.axis.set_label_text(self.label)
                return [self._one(v) for v in vals]
            nonzero = np.abs(vals[np.isfinite(vals) & (vals != 0)])
            top = float(nonzero.max()) if nonzero.size else 1.0
            self._scale, self._prefix = _si_prefix(top, self.unit)
            scaled = vals / self._scale
            self._decimals = _decimals_to_separate(scaled)
            if self.label is not None and getattr(self, "axis", None) is not None:
                unit = f"{self._prefix}{self.unit}"
                self.axis.set_label_text(f"{self.label} ({unit})" if unit else self.label)
            return [self._fmt(v) for v in scaled]

        def _fmt(self, v: float) -> str:
            if not math.isfinite(v):
                return ""
            text = f"{v:.{self._decimals}f}"
            if self.label is None and (self._prefix or self.unit):
                text = f"{text} {self._prefix}{self.unit}"
            return text

        def _one(self, v: float) -> str:
            if not math.isfinite(v):
                return ""
            scale, prefix = _si_prefix(abs(v), self.unit)
            text = f"{v / scale:.{_decimals_to_separate(np.array([v / scale]))}f}"
            return f"{text} {prefix}{self.unit}".rstrip()

        def __call__(self, x: float, pos: int | None = None) -> str:
            if self.per_tick:
                return self._one(x * self.factor)
            return self._fmt(x * self.factor / self._scale)

    return _SIFormatter


def si_formatter(unit: str, factor: float = 1.0, label: str | None = None, *,
                 per_tick: bool = False) -> Any:
    """A matplotlib `Formatter` writing ticks in an SI-prefixed unit chosen from the ticks
    shown (`2.01 µs`, not `2e-03`), with just enough decimals to tell neighbouring ticks
    apart.

    Parameters
    ----------
    unit : str
        Base unit (`"s"`, `"W"`, `"J"`, `"Hz"`; `""` for none).
    factor : float, default 1
        Multiplier from data values to the base unit (`1e-3` for milliseconds).
    label : str, optional
        Axis label; when given, the axis label is set to `"label (prefix unit)"` each time
        the ticks are formatted, and the tick labels carry numbers only.
    per_tick : bool, default False
        Give each tick its own prefix and unit (``50 µs``, ``1 ms``): for log axes that
        span decades; the axis label is then ``label`` alone.
    """
    return _si_formatter_class()(unit, factor, label, per_tick)


def _decimals_to_separate(values: np.ndarray) -> int:
    """Fewest decimals (0-6) that write every finite tick value exactly (ticks are round
    numbers: 2.125 gets three decimals, not a rounded 2.13 next to 2.15)."""
    vals = values[np.isfinite(values)]
    if vals.size == 0:
        return 0
    span = float(np.ptp(vals)) if vals.size > 1 else float(np.abs(vals).max())
    tol = 1e-6 * (span if span > 0 else 1.0)
    for d in range(7):
        if np.all(np.abs(np.round(vals, d) - vals) <= tol):
            return d
    return 6


def unit_axis(ax: Axes, which: str, signal: str, values: Any = None, *,
              log: bool | str = "auto", log_ratio: float = 30.0,
              label: str | None = None) -> bool:
    """Label an axis with the signal's quantity and an SI-prefixed unit, log scale when
    the data need it.

    Parameters
    ----------
    ax : Axes
        The axes.
    which : {"x", "y"}
        Which axis.
    signal : str
        Column name carrying its unit (``"latency_ms"``, ``"power_w"``, ``"stop_time_s"``).
    values : array-like, optional
        The data drawn on that axis (for ``log="auto"``).
    log : bool or "auto", default "auto"
        Logarithmic axis; ``"auto"``: when all values are positive and the largest is more
        than ``log_ratio`` times the smallest or ``log_ratio / 6`` times the median (a
        plateau squashed under spikes).
    log_ratio : float, default 30
        Spread that switches ``"auto"`` to a log axis.
    label : str, optional
        Axis label without its unit (default: the signal's name); the unit with its
        prefix is appended in parentheses.

    Returns
    -------
    bool
        Whether the axis is logarithmic.
    """
    from matplotlib.ticker import LogLocator, NullFormatter

    name, unit, factor = signal_unit(signal)
    name = label or name
    use_log = bool(log) if log != "auto" else False
    if log == "auto" and values is not None:
        v = finite(values)
        v = v[np.isfinite(v)]
        use_log = bool(v.size and v.min() > 0 and (
            v.max() / v.min() > log_ratio or v.max() / np.median(v) > log_ratio / 6))
    axis = ax.yaxis if which == "y" else ax.xaxis
    if use_log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
        v = finite(values) if values is not None else np.array([])
        v = v[np.isfinite(v) & (v > 0)]
        decades = float(np.log10(v.max() / v.min())) if v.size else 3.0
        subs = (1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 3 else (1.0,)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(si_formatter(unit, factor, label=name, per_tick=True))
        axis.set_label_text(name)
    else:
        axis.set_major_formatter(si_formatter(unit, factor, label=name))
        axis.set_label_text(f"{name} ({unit})" if unit else name)
    return use_log


# --- layout helpers -----------------------------------------------------------------


def shorten(text: str, width: int) -> str:
    """``text`` cut in the middle with an ellipsis so it is at most ``width`` characters
    (both ends of a long benchmark or file name are usually the informative parts)."""
    text = str(text)
    if width < 5 or len(text) <= width:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{text[:head]}…{text[len(text) - tail:]}"


def cap_series(labels: Iterable[Any], max_series: int | None) -> tuple[list[Any], list[Any]]:
    """Split labels (distinct, in order) into the first ``max_series`` drawn and the rest."""
    distinct = list(dict.fromkeys(labels))
    if max_series is None or len(distinct) <= max_series:
        return distinct, []
    if max_series < 1:
        raise ValueError(f"max_series must be >= 1, got {max_series}")
    return distinct[:max_series], distinct[max_series:]


def legend_columns(labels: Sequence[str], width_in: float, fontsize_pt: float = 7.0) -> int:
    """Columns that fit a legend of ``labels`` across ``width_in`` inches."""
    if not labels:
        return 1
    char_in = 0.55 * fontsize_pt / 72
    entry = max(len(str(lab)) for lab in labels) * char_in + 0.45
    return max(1, min(len(labels), int(width_in // entry)))


def show_in_notebook(fig: Figure) -> bool:
    """Display ``fig`` when running in a Jupyter kernel (renderers call it when they made
    the figure themselves); do nothing elsewhere. Returns whether it was displayed."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    from IPython.display import display

    display(fig)
    return True


def shows_in_notebook(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a renderer ``plot_x(data, *, ax=None, ...) -> Axes``: when it made its own
    figure (no ``ax`` given), the figure is displayed in a Jupyter kernel."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        made_figure = kwargs.get("ax") is None
        out = func(*args, **kwargs)
        if made_figure and out is not None and getattr(out, "figure", None) is not None:
            show_in_notebook(out.figure)
        return out

    return wrapper


def place_legend(ax: Axes, *, max_inside: int = 6, width: int = 40, **kwargs: Any) -> Any:
    """A legend inside the axes (``loc="best"``) for up to ``max_inside`` entries, outside on
    the right beyond that, with labels shortened to ``width`` characters."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    labels = [shorten(lab, width) for lab in labels]
    kwargs.setdefault("fontsize", "xx-small")
    if len(handles) <= max_inside:
        return ax.legend(handles, labels, loc=kwargs.pop("loc", "best"), **kwargs)
    kwargs.pop("loc", None)
    kwargs.pop("ncols", None)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, ncols=1 if len(handles) <= 18 else 2, **kwargs)


def annotate_without_overlap(ax: Axes, points: Sequence[tuple[float, float, str]], *,
                             fontsize: str = "xx-small", width: int = 28) -> int:
    """Label points, trying a few offsets for each label and leaving out a label that
    would overlap one already placed (or leave the axes). Returns the number drawn."""
    fig = ax.figure
    renderer = fig._get_renderer()  # type: ignore[attr-defined]
    offsets = ((4, 4), (4, -9), (-4, 4), (-4, -9), (4, 12), (4, -17))
    placed: list[Any] = []
    axes_box = ax.get_window_extent(renderer)
    drawn = 0
    for x, y, text in points:
        for dx, dy in offsets:
            ann = ax.annotate(shorten(text, width), (x, y), xytext=(dx, dy),
                              textcoords="offset points", fontsize=fontsize,
                              ha="left" if dx > 0 else "right")
            box = ann.get_window_extent(renderer)
            inside = (box.x0 >= axes_box.x0 - 2 and box.x1 <= axes_box.x1 + 40
                      and box.y0 >= axes_box.y0 - 2 and box.y1 <= axes_box.y1 + 2)
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                drawn += 1
                break
            ann.remove()
    return drawn


def empty_note(ax: Axes, text: str) -> Axes:
    """Draw ``text`` in the middle of an axes that has no data to show, and log it."""
    logger.info("figure without data: %s", text)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def data_hash(frame: pd.DataFrame | None) -> str:
    """Short SHA-256 of a frame's contents (recorded in the saved figures' metadata)."""
    if frame is None:
        return ""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _metadata(fmt: str, title: str, description: str) -> dict[str, Any]:
    from llenergymeasure import __version__

    creator = f"llenergymeasure {__version__}"
    if fmt == "pdf":
        return {"Title": title, "Creator": creator, "Subject": description,
                "CreationDate": None}
    if fmt == "svg":
        return {"Title": title, "Creator": creator, "Description": description, "Date": None}
    if fmt == "png":
        return {"Title": title, "Software": creator, "Description": description}
    return {}


def save_figure(
    fig: Figure,
    path: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    dpi: float | None = None,
    description: str = "",
) -> list[Path]:
    """Save a figure under ``path`` in each format (the suffix of ``path`` is replaced).

    Parameters
    ----------
    fig : Figure
        The figure.
    path : str or Path
        File stem, e.g. ``"figs/cost_error"``; missing folders are created.
    formats : sequence of {"pdf", "svg", "png"}
        Formats to write. PDF and SVG are vector (fonts embedded as TrueType / kept
        as text); PNG is raster at ``dpi``.
    dpi : float, optional
        Resolution of the PNG; the style's ``savefig.dpi`` (150) when None.
    description : str
        Stored in the files' metadata (e.g. the data hash); creation dates are left out
        so that identical inputs give identical PDF and SVG files.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"unknown figure format(s) {bad or formats!r}; choose from {FORMATS}")
    stem = Path(path)
    if stem.suffix.lstrip(".") in FORMATS:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with paper_style():
        for fmt in formats:
            out = stem.with_name(f"{stem.name}.{fmt}")
            kwargs: dict[str, Any] = {"format": fmt,
                                      "metadata": _metadata(fmt, stem.name, description)}
            if fmt == "png" and dpi is not None:
                kwargs["dpi"] = dpi
            fig.savefig(out, **kwargs)
            written.append(out)
    return written


def finite(values: Any) -> np.ndarray:
    """``values`` as float64 with pandas NA as NaN."""
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
