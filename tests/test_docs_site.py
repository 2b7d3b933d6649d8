"""The documentation site: builds strictly with no warning, renders docstrings as Markdown,
renders math offline and loads nothing from other hosts.

One `mkdocs build --strict` (about 15 s) is shared by the checks of this module.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="mkdocs is a dev dependency")
pytest.importorskip("mkdocstrings", reason="mkdocstrings is a dev dependency")

_LITERAL = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc|math):`"  # Sphinx roles
    r"|\.\.\s+(?:math|note|warning|seealso|code-block)::"  # directives
    r"|\.\.\s+\[\d+\]"  # reference lists
    r"|\[\d+\]_"  # citations
)
_PRE = re.compile(r"<pre\b.*?</pre>", re.DOTALL)
_EXTERNAL_ASSET = re.compile(
    r"<script\b[^>]*\bsrc=\"(?:https?:)?//[^\"]+\""
    r"|<link\b[^>]*\bhref=\"(?:https?:)?//[^\"]+\"[^>]*>"
    r"|<img\b[^>]*\bsrc=\"(?:https?:)?//[^\"]+\"",
)


def _load_converter():
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return out, log


def test_build_has_no_warning(site: tuple[Path, str]) -> None:
    _, log = site
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert warnings == []


def test_no_literal_sphinx_markup_in_pages(site: tuple[Path, str]) -> None:
    out, _ = site
    offenders = {}
    for page in out.rglob("*.html"):
        text = _PRE.sub("", page.read_text(encoding="utf-8"))
        hits = sorted({m.group(0) for m in _LITERAL.finditer(text)})
        if hits:
            offenders[page.relative_to(out).as_posix()] = hits
    assert offenders == {}


def test_nothing_is_loaded_from_other_hosts(site: tuple[Path, str]) -> None:
    out, _ = site
    offenders = {}
    for page in out.rglob("*.html"):
        hits = _EXTERNAL_ASSET.findall(page.read_text(encoding="utf-8"))
        if hits:
            offenders[page.relative_to(out).as_posix()] = hits
    for css in out.rglob("*.css"):
        hits = re.findall(r"url\((?:['\"])?(?:https?:)?//[^)]+\)", css.read_text("utf-8"))
        hits += re.findall(r"@import\s+(?:url\()?['\"]?(?:https?:)?//", css.read_text("utf-8"))
        if hits:
            offenders[css.relative_to(out).as_posix()] = hits
    assert offenders == {}


def test_math_is_typeset_with_shipped_files(site: tuple[Path, str]) -> None:
    out, _ = site
    page = (out / "criteria" / "rolling_cv" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in page
    scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", page)
    assert any(s.endswith("katex.min.js") for s in scripts)
    assert any(s.endswith("katex-init.js") for s in scripts)
    for script in scripts:
        assert (out / "criteria" / "rolling_cv" / script.split("?")[0]).resolve().is_file()
    fonts = list((out / "javascripts" / "katex" / "fonts").glob("*.woff2"))
    css = (out / "javascripts" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    referenced = set(re.findall(r"url\(fonts/([^)]+)\)", css))
    assert referenced and referenced <= {f.name for f in fonts}


def test_api_reference_lists_every_public_name(site: tuple[Path, str]) -> None:
    import llenergymeasure.analysis.figures as figures
    import llenergymeasure.config as config
    import llenergymeasure.criteria as criteria
    import llenergymeasure.traces as traces

    out, _ = site
    api = (out / "api" / "index.html").read_text(encoding="utf-8")
    for module in (config, criteria, traces, figures):
        for name in module.__all__:
            assert f"<code>{name}</code>" in api, (module.__name__, name)
    # pydantic models show their fields
    assert "criterion_params" in api or "cv_threshold" in api


def test_pydantic_model_fields_are_documented(site: tuple[Path, str]) -> None:
    from llenergymeasure.config.models import WarmupConfig
    from llenergymeasure.domain.metrics import WarmupResult

    out, _ = site
    api = (out / "api" / "index.html").read_text(encoding="utf-8")
    for model in (WarmupConfig, WarmupResult):
        for field in model.model_fields:
            assert f'id="{model.__module__}.{model.__name__}.{field}"' in api, field


# --- the converter itself: known answers ---------------------------------------------


def test_roles_become_code() -> None:
    conv = _load_converter()
    text = "See :class:`~a.b.Foo`, :func:`bar`, :meth:`Foo.baz` and :mod:`a.b`."
    assert conv.convert_roles(text) == "See `Foo`, `bar()`, `Foo.baz()` and `a.b`."


def test_inline_and_block_math() -> None:
    conv = _load_converter()
    text = "Where :math:`x_t` is.\n\n.. math::\n\n    a = b\n    + c\n\nAfter."
    assert conv.convert(text) == "Where $x_t$ is.\n\n$$\na = b\n+ c\n$$\n\nAfter."


def test_reference_list_and_citations() -> None:
    conv = _load_converter()
    text = "As shown [1]_.\n\nReferences\n----------\n.. [1] A. Author,\n   Title.\n.. [2] B."
    assert conv.convert(text) == (
        "As shown [1].\n\nReferences\n----------\n- [1] A. Author, Title.\n- [2] B."
    )


def test_admonition_directive() -> None:
    conv = _load_converter()
    assert conv.convert(".. note::\n   Be careful.\n\nNext.") == (
        "!!! note\n    Be careful.\n\nNext."
    )
