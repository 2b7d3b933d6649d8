"""WarmupConfig.from_file / to_file: YAML and JSON, exact round trips, errors that name the key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llenergymeasure import WarmupConfig, warmup_until_converged
from llenergymeasure.config import ConfigFileError
from llenergymeasure.traces.io import load_trace

SUFFIXES = (".yaml", ".yml", ".json")

_SPECS = (
    None,
    "rolling_cv:window=8,threshold=0.02",
    "all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)",
    "fixed_count:n=30",
)


@st.composite
def configs(draw: st.DrawFn) -> WarmupConfig:
    criterion = draw(st.sampled_from(_SPECS))
    kwargs = {
        "enabled": draw(st.booleans()),
        "convergence_detection": draw(st.booleans()),
        "max_prompts": draw(st.integers(1, 10_000)),
        "min_prompts": draw(st.integers(1, 10_000)),
        "patience": draw(st.integers(1, 20)),
        "check_every": draw(st.integers(1, 20)),
        "criterion": criterion,
    }
    if criterion is None:  # the CV fields configure the default rolling CV only
        kwargs["cv_threshold"] = draw(
            st.floats(0, 1, exclude_min=True, exclude_max=True, allow_subnormal=True)
        )
        kwargs["window_size"] = draw(st.integers(2, 10_000))
        kwargs["ddof"] = draw(st.sampled_from([0, 1]))
    try:
        return WarmupConfig(**kwargs)
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(cfg=configs(), suffix=st.sampled_from(SUFFIXES))
def test_round_trip_is_exact(tmp_path: Path, cfg: WarmupConfig, suffix: str) -> None:
    path = cfg.to_file(tmp_path / f"warmup{suffix}")
    back = WarmupConfig.from_file(path)
    assert back == cfg
    # bit-exact floats, same types (an int stays an int, a float a float)
    for name, value in cfg.model_dump().items():
        got = getattr(back, name)
        assert type(got) is type(value) and (got == value), name
        if isinstance(value, float):
            assert got.hex() == value.hex()


def test_every_field_is_written_in_declaration_order(tmp_path: Path) -> None:
    cfg = WarmupConfig(criterion="fixed_count:n=30", max_prompts=100)
    yaml_text = cfg.to_file(tmp_path / "w.yaml", comment="from recommend\nfold 3").read_text()
    assert yaml_text.startswith("# from recommend\n# fold 3\n")
    keys = [line.split(":", 1)[0] for line in yaml_text.splitlines() if not line.startswith("#")]
    assert keys == list(WarmupConfig.model_fields)
    data = json.loads(cfg.to_file(tmp_path / "w.json").read_text())
    assert list(data) == list(WarmupConfig.model_fields)
    assert data["criterion"] == "fixed_count:n=30" and data["max_prompts"] == 100


def test_a_hand_written_partial_file_keeps_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "warmup.yml"
    path.write_text(textwrap.dedent("""\
        # latency and a time floor
        criterion: all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)
        max_prompts: 500
        patience: 3
        """))
    cfg = WarmupConfig.from_file(path)
    assert cfg == WarmupConfig(
        criterion="all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)",
        max_prompts=500, patience=3,
    )


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unknown_key_is_named_with_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"bad{suffix}"
    data = {"max_prompts": 10, "cv_treshold": 0.1}
    path.write_text(json.dumps(data))  # JSON is also YAML
    with pytest.raises(ConfigFileError) as info:
        WarmupConfig.from_file(path)
    msg = str(info.value)
    assert str(path) in msg and "unknown key 'cv_treshold'" in msg and "cv_threshold" in msg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("max_prompts: 10\nmax_prompts: 20\n",
         r"key 'max_prompts' is given twice \(again on line 2\)"),
        ("max_prompts: 0\n", r"key 'max_prompts': Input should be greater than or equal to 1"),
        ("cv_threshold: 2\n", r"key 'cv_threshold'"),
        ("min_prompts: 30\nmax_prompts: 10\n", r"min_prompts \(30\) must be <= max_prompts"),
        ("criterion: 'no_such_rule:x=1'\n", r"key 'criterion'.*no_such_rule"),
        ("- 1\n- 2\n", "expected a mapping of WarmupConfig fields at the top level, got list"),
        ("", "the file is empty"),
        ("max_prompts: [1\n", r"not valid YAML \(line 2, column 1\)"),
    ],
)
def test_bad_yaml_content_names_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "warmup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=match) as info:
        WarmupConfig.from_file(path)
    assert str(path) in str(info.value)


def test_bad_json_content(tmp_path: Path) -> None:
    path = tmp_path / "warmup.json"
    path.write_text('{"max_prompts": 10, "max_prompts": 11}')
    with pytest.raises(ConfigFileError, match="'max_prompts' is given twice"):
        WarmupConfig.from_file(path)
    path.write_text('{"max_prompts": 10,}')
    with pytest.raises(ConfigFileError, match=r"not valid JSON \(line 1, column 20"):
        WarmupConfig.from_file(path)


def test_suffix_missing_file_and_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"unknown configuration file suffix '\.toml'"):
        WarmupConfig.from_file(tmp_path / "warmup.toml")
    with pytest.raises(ConfigFileError, match="suffix"):
        WarmupConfig().to_file(tmp_path / "warmup.txt")
    with pytest.raises(FileNotFoundError, match=r"warmup\.yaml"):
        WarmupConfig.from_file(tmp_path / "warmup.yaml")
    path = WarmupConfig().to_file(tmp_path / "warmup.yaml")
    before = path.read_text()
    with pytest.raises(FileExistsError):
        WarmupConfig(max_prompts=7).to_file(path, overwrite=False)
    assert path.read_text() == before
    with pytest.raises(ConfigFileError, match="JSON has no comments"):
        WarmupConfig().to_file(tmp_path / "w.json", comment="x")
    assert not (tmp_path / "w.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warmup.yaml"]  # no temp files left


def _scripted(values: list[float]):
    it = iter(values)

    def fn() -> float:
        return next(it)

    return fn


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_the_driver_runs_a_loaded_config_unchanged(tmp_path: Path, suffix: str) -> None:
    # a decaying warmup then a plateau with small noise: the rule stops on the plateau
    latencies = [50.0, 30.0, 20.0, 15.0, 12.0] + [10.0 + 0.01 * (i % 3) for i in range(40)]
    cfg = WarmupConfig(criterion="rolling_cv:window=4,threshold=0.01", max_prompts=40,
                       min_prompts=3, patience=2)
    path = cfg.to_file(tmp_path / f"warmup{suffix}")
    loaded = WarmupConfig.from_file(path)
    direct = warmup_until_converged(_scripted(latencies), cfg, show_progress=False)
    res = warmup_until_converged(_scripted(latencies), loaded, show_progress=False,
                                 trace_path=tmp_path / "t.jsonl")
    assert direct.status == res.status == "converged"
    for field in ("iterations_completed", "attempts", "stop_reason", "latencies_ms", "criterion"):
        assert getattr(res, field) == getattr(direct, field), field
    # the trace records the configuration it ran, and it is the file's
    trace = load_trace(res.trace_path)
    assert WarmupConfig.model_validate(trace.metadata.config) == loaded == cfg
