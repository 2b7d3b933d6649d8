"""Griffe extension: make reStructuredText-flavoured docstrings render as Markdown.

Loaded by mkdocstrings (`extensions: [docs/griffe_rst.py]` in `mkdocs.yml`). Before any
docstring is parsed it rewrites, in every docstring of the package:

- Sphinx roles (`:class:`, `:func:`, `:meth:`, `:mod:`, `:data:`, `:attr:`, `:obj:`,
  `:exc:`, with or without a `~` prefix) into inline code, linked to the object's API entry
  when the name resolves (an *optional* cross-reference: no warning when the target is not
  rendered on any page);
- `:math:` into `$...$`, and `.. math::` blocks into `$$ ... $$` blocks (pymdownx.arithmatex);
- `.. [1] text` reference lists into a Markdown list, and citations `[1]_` into `[1]`;
- `.. note::` / `.. warning::` directives into admonitions.

It also gives every criterion class (a `Criterion` subclass with a nested pydantic `Params`
model) and every pydantic model the keyword-only signature of its fields, so the documented
parameters match the signature (the runtime `__init__` takes `**params` / `**data`).
"""

from __future__ import annotations

import importlib
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|mod|data|attr|obj|exc|const|math|ref|term)"
    r":`(?P<body>[^`]+)`"
)
_CITATION = re.compile(r"\[(\d+)\]_")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\.[ \t]+(?P<name>[A-Za-z-]+)::[ \t]*(?P<arg>.*)$")
_REFERENCE = re.compile(r"^(?P<indent>[ \t]*)\.\.[ \t]+\[(?P<label>[^\]]+)\][ \t]*(?P<text>.*)$")
_ADMONITIONS = {"note", "warning", "seealso", "tip", "important", "caution", "danger"}


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """Lines from `start` indented deeper than `base` (blank lines inside kept), and the end."""
    end = start
    body: list[str] = []
    while end < len(lines):
        line = lines[end]
        if line.strip() and _indent_of(line) <= base:
            break
        body.append(line)
        end += 1
    while body and not body[-1].strip():
        body.pop()
        end -= 1
    return body, end


def convert_blocks(text: str) -> str:
    """Rewrite `.. math::`, `.. [n]` and admonition directives of a docstring."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        ref = _REFERENCE.match(line)
        if ref:
            indent = ref["indent"]
            body, end = _block(lines, i + 1, len(indent))
            rest = " ".join(b.strip() for b in body if b.strip())
            text_ = " ".join(p for p in (ref["text"].strip(), rest) if p)
            out.append(f"{indent}- [{ref['label']}] {text_}")
            i = end
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            indent = directive["indent"]
            name = directive["name"].lower()
            body, end = _block(lines, i + 1, len(indent))
            inner = textwrap.dedent("\n".join(body)).strip("\n").splitlines()
            if name == "math":
                math = [directive["arg"]] if directive["arg"].strip() else []
                math += [b for b in inner if b.strip()]
                if out and out[-1].strip():
                    out.append("")
                out.append(f"{indent}$$")
                out.extend(f"{indent}{m}" for m in math)
                out.append(f"{indent}$$")
                if end < len(lines) and lines[end].strip():
                    out.append("")
            elif name in _ADMONITIONS:
                kind = "info" if name == "seealso" else name
                if out and out[-1].strip():
                    out.append("")
                out.append(f"{indent}!!! {kind}")
                first = directive["arg"].strip()
                if first:
                    out.append(f"{indent}    {first}")
                out.extend(f"{indent}    {b}" if b.strip() else "" for b in inner)
                if end < len(lines) and lines[end].strip():
                    out.append("")
            elif name == "code-block" or name == "code":
                out.append(f"{indent}```{directive['arg'].strip()}")
                out.extend(f"{indent}{b}" for b in inner)
                out.append(f"{indent}```")
            else:  # unknown directive: keep its content as plain text
                out.extend(f"{indent}{b}" for b in inner)
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """Full path of `name` seen from `obj`, or None."""
    if name.startswith("llenergymeasure."):
        return name
    scope: Any = obj
    while scope is not None:
        try:
            return scope.resolve(name.split(".")[0]) + name[len(name.split(".")[0]):]
        except Exception:  # griffe raises NameResolutionError and others
            pass
        try:
            member = scope.all_members.get(name.split(".")[0])  # methods/attributes
        except Exception:
            member = None
        if member is not None:
            return member.path + name[len(name.split(".")[0]):]
        scope = scope.parent
    return None


def convert_roles(text: str, obj: griffe.Object | None = None) -> str:
    """Rewrite Sphinx roles and numbered citations of a docstring."""

    def repl(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"]
        if role == "math":
            return f"${body}$"
        if role in {"ref", "term"}:
            label = re.sub(r"\s*<[^>]*>$", "", body)
            return label
        target = body.strip()
        shown = target
        if target.startswith("~"):
            target = target[1:]
            shown = target.rsplit(".", 1)[-1]
        target = target.rstrip("()")
        if role in {"func", "meth"} and not shown.endswith("()"):
            shown = f"{shown}()"
        path = _resolve(obj, target) if obj is not None else None
        code = f"<code>{shown}</code>"
        if path:
            return f'<autoref identifier="{path}" optional>{code}</autoref>'
        return f"`{shown}`"

    text = _ROLE.sub(repl, text)
    return _CITATION.sub(r"[\1]", text)


def convert(text: str, obj: griffe.Object | None = None) -> str:
    """Both rewrites: blocks first (they see the raw directives), then roles."""
    return convert_roles(convert_blocks(text), obj)


def _model_parameters(cls: griffe.Class) -> griffe.Parameters | None:
    """Keyword-only parameters of a criterion (its `Params` model) or a pydantic model."""
    try:
        runtime = getattr(importlib.import_module(cls.module.path), cls.name)
        from pydantic import BaseModel

        from llenergymeasure.criteria.base import Criterion
    except Exception:  # not importable: keep griffe's static view
        return None
    if not isinstance(runtime, type):
        return None
    if runtime is Criterion:  # the abstract base keeps its documented `**params`
        return None
    if issubclass(runtime, Criterion):
        fields = runtime.Params.model_fields
    elif issubclass(runtime, BaseModel):
        fields = runtime.model_fields
    else:
        return None
    if not fields:
        return None
    out = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    for name, field in fields.items():
        annotation = field.annotation
        ann = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        if str(annotation).startswith(("typing.", "types.")) or "|" in str(annotation):
            ann = str(annotation).replace("typing.", "").replace("NoneType", "None")
        default = None
        if not field.is_required():
            default = repr(field.get_default(call_default_factory=True))
        out.append(
            griffe.Parameter(
                name, annotation=ann, kind=griffe.ParameterKind.keyword_only, default=default
            )
        )
    return griffe.Parameters(*out)


def _takes_var_keyword(function: Any) -> bool:
    return any(p.kind is griffe.ParameterKind.var_keyword for p in function.parameters)


class RstToMarkdown(griffe.Extension):
    """Rewrite reST docstrings as Markdown and give criteria their parameter signature."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value, obj)
        own_init = obj.members.get("__init__") if isinstance(obj, griffe.Class) else None
        if isinstance(obj, griffe.Class) and (
            own_init is None or (not own_init.is_alias and _takes_var_keyword(own_init))
        ):
            params = _model_parameters(obj)
            if params is not None:
                init = griffe.Function("__init__", parameters=params, lineno=obj.lineno)
                if own_init is not None:
                    init.docstring = own_init.docstring
                obj.set_member("__init__", init)
        for member in list(obj.members.values()):
            if not member.is_alias:
                self._walk(member, seen)
