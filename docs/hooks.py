"""MkDocs hooks of this site (loaded through `hooks:` in `mkdocs.yml`).

`on_page_markdown` fills the API reference (`api.md`, marker `<!-- api-index -->`): for every
public package it lists each public name (its `__all__`, or for a package without one, the
public names its modules define), linked to the page that documents it; a name that no
other page renders with `::: path` is rendered on the API page itself. A public name that
is added to the package therefore appears in the reference without editing the page, and
one that is documented nowhere cannot be missed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = "<!-- api-index -->"
PACKAGES = (
    ("Configuration", "llenergymeasure.config"),
    ("Driver", "llenergymeasure.core"),
    ("Results", "llenergymeasure.domain"),
    ("Criteria", "llenergymeasure.criteria"),
    ("Traces", "llenergymeasure.traces"),
    ("Importers", "llenergymeasure.traces.importers"),
    ("Analysis", "llenergymeasure.analysis"),
    ("Figures", "llenergymeasure.analysis.figures"),
    ("Top-level imports", "llenergymeasure"),
)
_DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.MULTILINE)


def _canonical(obj: Any, where: str, name: str) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.startswith(
        "llenergymeasure"
    ) and (isinstance(obj, type) or callable(obj)):
        return f"{module}.{qualname}"
    return f"{where}.{name}"


def _public_names(package: str) -> list[tuple[str, str]]:
    """(name, canonical path) of the public names of a package, in order."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if names is not None:
        return [(n, _canonical(getattr(module, n), package, n)) for n in names]
    out: list[tuple[str, str]] = []
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name.startswith("_") or info.ispkg:
            continue
        sub: ModuleType = importlib.import_module(f"{package}.{info.name}")
        public = getattr(sub, "__all__", None)
        for n, obj in vars(sub).items():
            if n.startswith("_") or (public is not None and n not in public):
                continue
            if public is None and getattr(obj, "__module__", None) != sub.__name__:
                continue
            if isinstance(obj, type) or callable(obj):
                out.append((n, _canonical(obj, sub.__name__, n)))
    return out


def _rendered(docs_dir: Path) -> dict[str, str]:
    """Object path -> page (relative to docs) for every `::: path` outside api.md."""
    found: dict[str, str] = {}
    for page in sorted(docs_dir.rglob("*.md")):
        rel = page.relative_to(docs_dir).as_posix()
        if rel == "api.md":
            continue
        for match in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            found.setdefault(match[1], rel)
    return found


def _summary(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().split("\n\n")[0]
    doc = " ".join(doc.split())
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", doc).replace("|", "\\|")
    return doc[:140] + ("…" if len(doc) > 140 else "")


def api_index(docs_dir: Path) -> str:
    rendered = _rendered(docs_dir)
    seen: set[str] = set()
    parts: list[str] = []
    for title, package in PACKAGES:
        rows: list[str] = []
        blocks: list[str] = []
        for name, canonical in _public_names(package):
            if name.startswith("__"):
                continue
            alias = f"{package}.{name}"
            obj = getattr(importlib.import_module(canonical.rsplit(".", 1)[0]), name, None)
            if obj is None:
                obj = getattr(importlib.import_module(package), name, None)
            target = next((p for p in (canonical, alias) if p in rendered), None)
            if target is not None:
                page = rendered[target]
                link = f"[`{name}`]({page}#{target})"
            elif canonical in seen:
                link = f"[`{name}`](#{canonical})"
            else:
                link = f"[`{name}`](#{canonical})"
                blocks.append(f"::: {canonical}\n    options:\n      heading_level: 3\n")
            seen.add(canonical)
            rows.append(f"| {link} | `{canonical.rsplit('.', 1)[0]}` | {_summary(obj)} |")
        if not rows:
            continue
        parts.append(f"## {title}\n\n`{package}`\n\n| Name | Defined in | Summary |\n|---|---|---|")
        parts.append("\n".join(rows) + "\n")
        parts.extend(blocks)
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, api_index(Path(config["docs_dir"])))
