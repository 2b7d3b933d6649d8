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
import hashlib
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
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
    "figure_size",
    "new_axes",
    "paper_style",
    "require_columns",
    "save_figure",
    "series_styles",
    "setting_labels",
    "style_path",
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


def empty_note(ax: Axes, text: str) -> Axes:
    """Draw ``text`` in the middle of an axes that has no data to show, and log it."""
    logger.info("figure without data: %s", text)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
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
