r"""A learned warmup rule: features of the trailing window feed a model of "steady from here".

After every sample ``t`` (0-based) from ``window - 1`` on, the criterion computes a
small set of scale-invariant features of the trailing window
$W_t = x_{t-w+1..t}$ (its older half $A$, its newer half $B$) and of the history of
those window statistics, standardises them and feeds them to a logistic model

$$
p_t = \sigma\Big(\beta_0 + \sum_j \beta_j \frac{f_{j,t} - \mu_j}{s_j}\Big),
\qquad \sigma(z) = \frac{1}{1 + e^{-z}},
$$

the estimated probability that the steady state has already begun (that stopping
warmup after sample ``t`` is not premature). The statistic is $p_t$; the criterion
passes when $p_t \ge$ ``threshold``. The features (all unchanged when the series is
multiplied by a positive constant, since each is a ratio of quantities in the series'
unit, a correlation, or a count) are listed in `FEATURES` and documented in
`docs/criteria/learned.md`; each window feature costs O(w) per sample (the medians
partition the window), the history features O(1).

The model (window length, feature names, standardisation, coefficients, default
threshold, provenance) is a versioned JSON file read by `load_model`; the default
model ships in `llenergymeasure/criteria/models/` and is trained by
`llem-warmup train-rule` (`llenergymeasure.analysis.learn.train_learned_rule`).
Inference needs numpy only.

References
----------
- D. R. Cox, "The regression analysis of binary sequences", *Journal of the Royal
  Statistical Society B* 20(2), 1958 (logistic regression).
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "AI-driven Java performance
  testing: balancing result quality with testing time", ASE 2024, arXiv:2408.05100
  (classifiers of trailing windows that decide when warmup is over).
- E. S. Page, "Continuous inspection schemes", *Biometrika* 41(1/2), 1954 (CUSUM).
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._windows import iter_window_chunks
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = [
    "DEFAULT_MODEL",
    "FEATURES",
    "MODEL_FORMAT",
    "LearnedModel",
    "LearnedRule",
    "ModelFileError",
    "feature_matrix",
    "load_model",
    "sustained",
]

#: Value of the ``format`` field of every model file.
MODEL_FORMAT = "llenergymeasure-learned-rule"
#: Schema version of the model file this module reads and writes.
MODEL_SCHEMA = 1
#: File name of the default model inside `llenergymeasure/criteria/models/`.
DEFAULT_MODEL = "learned_default.json"

#: Names of the features, in the order of the columns of `feature_matrix`.
FEATURES: tuple[str, ...] = (
    "log_n",
    "halves_shift",
    "halves_rel",
    "trend_t",
    "rel_disp",
    "cusum",
    "lag1",
    "level_vs_min",
    "since_min",
    "hist_shift",
)
#: Columns of `_local_features`: the six window features (FEATURES[1:7]) and the level.
_N_LOCAL = 7
#: Relative floor of the robust scale: a window whose MAD is 0 (a coarse timer)
#: still gets a finite, scale-invariant halves shift.
_SCALE_FLOOR = 1e-12
#: Offsets inside the logarithms of relative quantities.
_REL_EPS = 1e-4
_DISP_EPS = 1e-6
#: Cap of the trend t-statistic (a perfectly linear window has residual 0).
_T_CAP = 1e6


class ModelFileError(ValueError):
    """A learned-rule model file is missing, unreadable or malformed (names file and field)."""

    def __init__(self, reason: str, *, file: str, field: str | None = None) -> None:
        self.file = file
        self.field = field
        where = f"{file}" + (f", field {field!r}" if field else "")
        super().__init__(f"learned-rule model {where}: {reason}")


# ------------------------------------------------------------------ features
def _local_features(windows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Window-only features of every row of a C-contiguous ``(m, w)`` array.

    Returns an ``(m, 7)`` array: halves_shift, halves_rel, trend_t, rel_disp, cusum,
    lag1 and the median of the newer half (the raw level, used by the history
    features, in the series' unit). Row-wise reductions only, so one row gives the
    same numbers alone as inside a larger array.
    """
    m, w = windows.shape
    h = w // 2
    med = np.median(windows, axis=1)
    med_a = np.median(windows[:, :h], axis=1)
    med_b = np.median(windows[:, w - h :], axis=1)
    mad = np.median(np.abs(windows - med[:, None]), axis=1)
    amed = np.abs(med)
    floor = _SCALE_FLOOR * amed
    scale = np.maximum(mad, floor)
    diff = np.abs(med_b - med_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(scale > 0, diff / scale, 0.0)
        rel = np.where(med_a != 0, diff / np.abs(med_a), 0.0)
        disp = np.where(amed > 0, mad / amed, 0.0)
    mean = np.mean(windows, axis=1)
    d = windows - mean[:, None]
    c = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    scc = float(np.sum(c * c))
    slope = np.sum(d * c[None, :], axis=1) / scc
    resid = d - slope[:, None] * c[None, :]
    ss = np.sum(resid * resid, axis=1)
    se = np.sqrt(ss / (w - 2) / scc)
    sdd = np.sum(d * d, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = np.where(se > 0, np.abs(slope) / se, np.where(slope != 0, _T_CAP, 0.0))
        tstat = np.minimum(tstat, _T_CAP)
        sd = np.sqrt(sdd / w)
        cs = np.max(np.abs(np.cumsum(d, axis=1)), axis=1)
        cusum = np.where(sd > 0, cs / (sd * math.sqrt(w)), 0.0)
        lag = np.sum(d[:, :-1] * d[:, 1:], axis=1)
        lag1 = np.where(sdd > 0, lag / sdd, 0.0)
    out = np.empty((m, _N_LOCAL), dtype=np.float64)
    out[:, 0] = np.log1p(shift)
    out[:, 1] = np.log(rel + _REL_EPS)
    out[:, 2] = np.log1p(tstat)
    out[:, 3] = np.log(disp + _DISP_EPS)
    out[:, 4] = cusum
    out[:, 5] = lag1
    out[:, 6] = med_b
    return out


class _History:
    """Running state of the history features (the same arithmetic online and offline)."""

    __slots__ = ("count", "run_min", "sum_shift", "t_min")

    def __init__(self) -> None:
        self.count = 0
        self.run_min = math.inf
        self.t_min = 0
        self.sum_shift = 0.0

    def push(self, t: int, level: float, shift: float) -> tuple[float, float, float]:
        """level_vs_min, since_min and hist_shift after the window ending at ``t``."""
        if level < self.run_min:
            self.run_min = level
            self.t_min = t
        self.count += 1
        self.sum_shift += shift
        rel = level / self.run_min - 1.0 if self.run_min > 0 else 0.0
        return (
            math.log(max(rel, 0.0) + _REL_EPS),
            (t - self.t_min) / (t + 1.0),
            self.sum_shift / self.count,
        )


def _assemble(
    local: NDArray[np.float64], idx: NDArray[np.int64], hist: NDArray[np.float64]
) -> NDArray[np.float64]:
    out = np.empty((local.shape[0], len(FEATURES)), dtype=np.float64)
    out[:, 0] = np.log1p(idx.astype(np.float64))
    out[:, 1:_N_LOCAL] = local[:, : _N_LOCAL - 1]
    out[:, _N_LOCAL:] = hist
    return out


def feature_matrix(x: NDArray[np.float64] | Any, window: int) -> NDArray[np.float64]:
    """Features of `FEATURES` after every sample of ``x``: an ``(n, len(FEATURES))`` array.

    Row ``t`` depends only on ``x[: t + 1]``; rows before ``window - 1`` are NaN.

    Parameters
    ----------
    x : array_like
        The finite series.
    window : int
        Trailing window length $w$ (even, at least 8).

    Returns
    -------
    numpy.ndarray
        The feature matrix, the same numbers `LearnedRule.update` computes.
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    out = np.full((n, len(FEATURES)), np.nan)
    if n < window:
        return out
    local = np.empty((n - window + 1, _N_LOCAL))
    for start, wins in iter_window_chunks(arr, window, window - 1):
        local[start - window + 1 : start - window + 1 + wins.shape[0]] = _local_features(wins)
    idx = np.arange(window - 1, n, dtype=np.int64)
    hist = np.empty((local.shape[0], 3))
    state = _History()
    levels = local[:, 6].tolist()
    shifts = local[:, 0].tolist()
    for j, t in enumerate(idx.tolist()):
        hist[j] = state.push(t, levels[j], shifts[j])
    out[window - 1 :] = _assemble(local, idx, hist)
    return out


def sustained(p: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    r"""Smallest of the last ``k`` values of ``p`` (NaN until ``k`` finite values are in).

    ``p`` is NaN on a leading stretch only (before the window is full), so the result
    at ``t`` is $\min(p_{t-k+1..t})$ where all of these are defined.
    """
    out = np.full(p.shape[0], np.nan)
    if k == 1:
        out[:] = p
        return out
    valid = np.flatnonzero(np.isfinite(p))
    if valid.size < k:
        return out
    first = int(valid[0])
    out[first + k - 1 :] = sliding_window_view(p[first:], k).min(axis=1)
    return out


# --------------------------------------------------------------------- model
@dataclass(frozen=True, eq=False)
class LearnedModel:
    """A logistic model of "steady from here" over the features of `FEATURES`.

    Attributes
    ----------
    window : int
        Trailing window length the features were computed with.
    features : tuple of str
        The features the model uses (a subset of `FEATURES`, any order).
    mean, scale : numpy.ndarray
        Standardisation of each used feature, $z_j = (f_j - \\mu_j) / s_j$.
    coef : numpy.ndarray
        Logistic coefficients $\\beta_j$ of the standardised features.
    intercept : float
        $\\beta_0$.
    threshold : float
        Default probability threshold of the criterion.
    version : str
        Version of this model (not of the file schema).
    persistence : int
        The statistic is the smallest $p$ of the last ``persistence`` samples: the
        model must have said "steady" for that long.
    metadata : dict
        Provenance: training data, source, date, command, cross-validated figures.
    """

    window: int
    features: tuple[str, ...]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    coef: NDArray[np.float64]
    intercept: float
    threshold: float
    version: str
    persistence: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> list[int]:
        """Column of each used feature in `feature_matrix`."""
        return [FEATURES.index(f) for f in self.features]

    def probability(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """$p$ for each row of a full feature matrix (NaN rows give NaN)."""
        z = np.full(features.shape[0], self.intercept)
        for j, col in enumerate(self.columns()):
            z = z + self.coef[j] * ((features[:, col] - self.mean[j]) / self.scale[j])
        return 1.0 / (1.0 + np.exp(-z))

    def statistic(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """The criterion's statistic for each row: `sustained` of `probability`."""
        return sustained(self.probability(features), self.persistence)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this model."""
        return {
            "format": MODEL_FORMAT,
            "schema": MODEL_SCHEMA,
            "version": self.version,
            "kind": "logistic",
            "window": self.window,
            "features": list(self.features),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "threshold": float(self.threshold),
            "persistence": int(self.persistence),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, file: str = "<model>") -> LearnedModel:
        """Validate a model document; `ModelFileError` names the bad field."""
        if not isinstance(doc, dict):
            raise ModelFileError("expected a JSON object", file=file)
        if doc.get("format") != MODEL_FORMAT:
            raise ModelFileError(
                f"expected format {MODEL_FORMAT!r}, got {doc.get('format')!r}", file=file,
                field="format",
            )
        if doc.get("schema") != MODEL_SCHEMA:
            raise ModelFileError(
                f"schema {doc.get('schema')!r} is not the supported {MODEL_SCHEMA}", file=file,
                field="schema",
            )
        if doc.get("kind") != "logistic":
            raise ModelFileError(f"unknown model kind {doc.get('kind')!r} (expected "
                                 "'logistic')", file=file, field="kind")
        window = doc.get("window")
        if not isinstance(window, int) or isinstance(window, bool) or window < 8 or window % 2:
            raise ModelFileError(f"window must be an even integer >= 8, got {window!r}",
                                 file=file, field="window")
        feats = doc.get("features")
        if (not isinstance(feats, list) or not feats
                or not all(isinstance(f, str) for f in feats)):
            raise ModelFileError("features must be a non-empty list of names", file=file,
                                 field="features")
        unknown = [f for f in feats if f not in FEATURES]
        if unknown or len(set(feats)) != len(feats):
            raise ModelFileError(
                f"unknown or repeated features {unknown or feats} (known: {', '.join(FEATURES)})",
                file=file, field="features",
            )
        arrays = {}
        for key in ("mean", "scale", "coef"):
            val = doc.get(key)
            try:
                arr = np.asarray(val, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.empty(0)
            if arr.shape != (len(feats),) or not np.isfinite(arr).all():
                raise ModelFileError(
                    f"expected {len(feats)} finite numbers, got {val!r}", file=file, field=key
                )
            arrays[key] = arr
        if not (arrays["scale"] > 0).all():
            raise ModelFileError("every scale must be > 0", file=file, field="scale")
        nums = {}
        for key in ("intercept", "threshold"):
            val = doc.get(key)
            if (not isinstance(val, (int, float)) or isinstance(val, bool)
                    or not math.isfinite(val)):
                raise ModelFileError(f"expected a finite number, got {val!r}", file=file,
                                     field=key)
            nums[key] = float(val)
        if not 0.0 < nums["threshold"] < 1.0:
            raise ModelFileError(f"threshold must be in (0, 1), got {nums['threshold']}",
                                 file=file, field="threshold")
        persistence = doc.get("persistence", 1)
        if (not isinstance(persistence, int) or isinstance(persistence, bool)
                or persistence < 1):
            raise ModelFileError(f"persistence must be an integer >= 1, got {persistence!r}",
                                 file=file, field="persistence")
        version = doc.get("version")
        if not isinstance(version, str) or not version:
            raise ModelFileError("version must be a non-empty string", file=file,
                                 field="version")
        meta = doc.get("metadata", {})
        if not isinstance(meta, dict):
            raise ModelFileError("metadata must be an object", file=file, field="metadata")
        return cls(window, tuple(feats), arrays["mean"], arrays["scale"], arrays["coef"],
                   nums["intercept"], nums["threshold"], version, persistence, meta)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as indented JSON; return the path."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return p


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> LearnedModel:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ModelFileError(f"cannot be read ({exc.strerror})", file=path) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"is not JSON ({exc.msg} at line {exc.lineno})", file=path) from None
    return LearnedModel.from_dict(doc, file=path)


def default_model_path() -> Path:
    """Path of the model shipped with the package."""
    return Path(str(resources.files("llenergymeasure.criteria") / "models" / DEFAULT_MODEL))


def load_model(path: str | os.PathLike[str] | None = None) -> LearnedModel:
    """Read and validate a model file (the shipped default when ``path`` is None).

    Raises
    ------
    ModelFileError
        If the file is missing, not JSON, or not a valid model (naming the field).
    """
    p = default_model_path() if path is None else Path(path)
    try:
        st = p.stat()
    except OSError:
        raise ModelFileError("no such file", file=str(p)) from None
    return _load_cached(str(p), st.st_mtime_ns, st.st_size)


# ----------------------------------------------------------------- criterion
class LearnedRuleParams(CriterionParams):
    """Parameters of `LearnedRule`."""

    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Pass when the model's probability that the steady state has begun is "
        "at least this value; None uses the threshold stored in the model file.",
    )
    model: str | None = Field(
        None,
        min_length=1,
        description="Path of a model file written by 'llem-warmup train-rule'; None uses "
        "the default model shipped with the package.",
    )


@register_criterion
class LearnedRule(Criterion):
    r"""A logistic model of "steady from here" over trailing-window features.

    The statistic after sample $t$ is $p_t$, the model's probability that the steady
    state has begun; the criterion passes when $p_t \ge$ ``threshold``. $p_t$ is NaN
    (and the criterion fails) until ``window`` samples have been seen. Each update
    costs O(w) (medians of the window, one pass for the moments), ``evaluate`` O(n w);
    both run the same row-wise numpy reductions, so they agree exactly.

    Parameters
    ----------
    threshold : float, optional
        Probability threshold in (0, 1); the model's own default when None.
    model : str, optional
        Path of a model file; the shipped default when None.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    - D. R. Cox, "The regression analysis of binary sequences", *J. R. Stat. Soc. B*
      20(2), 1958.
    - L. Traini et al., "AI-driven Java performance testing: balancing result quality
      with testing time", ASE 2024, arXiv:2408.05100.
    """

    name = "learned"
    Params = LearnedRuleParams
    scale_invariant = True
    statistic_label = "p_steady"
    sweep_parameter = ("threshold", ">=")
    cost_class = "moderate"

    def _validate(self) -> None:
        from llenergymeasure.criteria.base import CriterionConfigError

        try:
            self._model = load_model(self.params.model)
        except ModelFileError as exc:
            raise CriterionConfigError(f"criterion 'learned': parameter 'model': {exc}") from None

    @property
    def model(self) -> LearnedModel:
        """The loaded model."""
        return self._model

    @property
    def threshold(self) -> float:
        t = self.params.threshold
        return self._model.threshold if t is None else float(t)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass: window + persistence - 1."""
        return self._model.window + self._model.persistence - 1

    def _reset(self) -> None:
        w = self._model.window
        self._buf = np.zeros(w)
        self._hist = _History()
        self._recent: deque[float] = deque(maxlen=self._model.persistence)

    def _update(self, x: float, t: float | None) -> None:
        w = self._buf.shape[0]
        i = self.n_seen_
        self._buf[i % w] = x
        if i < w - 1:
            return
        j = (i + 1) % w
        row = np.concatenate([self._buf[j:], self._buf[:j]])[None, :]
        local = _local_features(row)
        hist = np.asarray([self._hist.push(i, float(local[0, 6]), float(local[0, 0]))])
        feats = _assemble(local, np.asarray([i], dtype=np.int64), hist)
        self._recent.append(float(self._model.probability(feats)[0]))
        if len(self._recent) < self._model.persistence:
            return
        p = min(self._recent)
        self.statistic_ = p
        self.passed_ = bool(p >= self.threshold)

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self._model.statistic(feature_matrix(x, self._model.window))
        with np.errstate(invalid="ignore"):
            passed = p >= self.threshold
        return Evaluation(p, passed)
