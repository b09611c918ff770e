"""Reading a policy file: YAML with line numbers, ``${VAR}`` expansion, every problem at once.

A policy is edited by people under pressure (a bill is running away), so a bad file must say
everything that is wrong in one go, each problem with its path in the house style
(``budgets[2].amount: must be greater than 0 (line 31)``), and never a pydantic dump or a
traceback. The YAML is composed into nodes once to know where each value came from and to catch
duplicate keys, which plain YAML loading silently resolves to the last one.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cloudcircuit.errors import ConfigError
from cloudcircuit.policy._base import ProblemsError, duplicate_names
from cloudcircuit.policy.models import Policy

__all__ = [
    "interpolate",
    "load_policy",
    "parse_policy",
    "policy_json_schema",
]

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_:/-]*$")

Loc = tuple[int | str, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mapping keys are always the text written: every key of a policy is a
    name, and YAML 1.1 would otherwise read a tag key like ``on:`` as True or ``2024:`` as a
    number."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: Any = key_node.value
            else:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a key that is not a plain name",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of the policy file (for editors: yaml-language-server and friends)."""
    return Policy.model_json_schema(mode="validation")


def load_policy(path: str | Path, *, env: Mapping[str, str] | None = None) -> Policy:
    """Read, expand and validate a policy file.

    Relative source paths and ``sqlite:///`` state paths are resolved against the folder of the
    file, so a policy means the same thing from any working directory. ``env`` (default
    ``os.environ``) supplies ``${VAR}`` values. Raises :class:`ConfigError` listing every
    problem, with the file name as its source.
    """
    file = Path(path)
    name = str(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", source=name) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a policy file", source=name) from None
    except PermissionError:
        raise ConfigError("permission denied", source=name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=name) from None
    return parse_policy(text, source=name, base_dir=file.absolute().parent, env=env)


def parse_policy(
    text: str,
    *,
    source: str = "<policy>",
    base_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """Validate policy YAML given as text (``load_policy`` without the file).

    ``base_dir`` anchors relative paths (default: the current directory).
    """
    if not text.strip():
        raise ConfigError("the policy file is empty", source=source)
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"malformed YAML: {what}", source=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", source=source) from None
    if data is None or root is None:
        raise ConfigError("the policy file is empty (only comments or blank lines)", source=source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"the policy must be a mapping (key: value) at the top level, got {_describe(data)}",
            source=source,
        )
    problems: list[tuple[str, str]] = []
    for loc, key in _duplicate_keys(root, ()):
        line = _line_of(root, loc, key=True)
        problems.append((_render_loc(loc), f"duplicate key {key!r}{_at(line)}"))
    env_problems: list[tuple[str, str]] = []
    data = interpolate(data, os.environ if env is None else env, env_problems)
    problems.extend((p, f"{m}{_at(_line_of(root, _parse_rel(p)))}") for p, m in env_problems)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        unset = {p for p, _ in env_problems}  # their follow-on errors would only be noise
        for error in exc.errors(include_url=False):
            problems.extend(t for t in _translate(error, root) if t[0] not in unset)
        problems.extend(_raw_duplicates(data, root))
        raise ConfigError(_ordered(problems), source=source) from None
    if problems:
        raise ConfigError(_ordered(problems), source=source)
    return _resolve_paths(policy, Path(base_dir) if base_dir is not None else Path.cwd())


def _raw_duplicates(data: dict[str, Any], root: yaml.Node) -> list[tuple[str, str]]:
    lists: dict[str, list[object]] = {}
    for field in ("budgets", "sources", "alerts"):
        items = data.get(field)
        if isinstance(items, list):
            lists[field] = [i.get("name") if isinstance(i, dict) else None for i in items]
    return [(p, f"{m}{_at(_line_of(root, _parse_rel(p)))}") for p, m in duplicate_names(lists)]


_LINE_RE = re.compile(r"\(line (\d+)\)$")


def _ordered(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Unique problems in file order (those without a line last)."""
    unique = list(dict.fromkeys(problems))

    def line(problem: tuple[str, str]) -> int:
        match = _LINE_RE.search(problem[1])
        return int(match.group(1)) if match else 1 << 30

    return sorted(unique, key=line)


# -- ${VAR} expansion ---------------------------------------------------------------------


def interpolate(
    data: Any,
    env: Mapping[str, str],
    problems: list[tuple[str, str]] | None = None,
    loc: Loc = (),
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value (not in keys).

    ``$$`` is a literal ``$``. A variable that is unset and has no default is a problem
    reported at its path (appended to ``problems``; raised as ConfigError when None).
    """
    collect: list[tuple[str, str]] = [] if problems is None else problems
    if isinstance(data, dict):
        out = {k: interpolate(v, env, collect, (*loc, k)) for k, v in data.items()}
    elif isinstance(data, list):
        out = [interpolate(v, env, collect, (*loc, i)) for i, v in enumerate(data)]  # type: ignore[assignment]
    elif isinstance(data, str) and "$" in data:

        def expand(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            collect.append(
                (_render_loc(loc), f"environment variable {name} is not set (no default given)")
            )
            return ""

        out = _VAR_RE.sub(expand, data)  # type: ignore[assignment]
    else:
        return data
    if problems is None and collect:
        raise ConfigError(collect)
    return out


# -- paths --------------------------------------------------------------------------------


def _anchor(path: str, base: Path) -> str:
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return expanded
    return os.path.normpath(os.path.join(base, expanded))


def _resolve_paths(policy: Policy, base: Path) -> Policy:
    sources = [
        s.model_copy(update={"path": _anchor(s.path, base)}) if s.path is not None else s
        for s in policy.sources
    ]
    update: dict[str, Any] = {"sources": sources}
    if policy.state.startswith("sqlite:///"):
        rest = policy.state[len("sqlite:///") :]
        if rest and not rest.startswith("/") and rest != ":memory:":
            update["state"] = "sqlite:///" + _anchor(rest, base)
    return policy.model_copy(update=update)


# -- YAML nodes: duplicates and line numbers ----------------------------------------------


def _duplicate_keys(node: yaml.Node, loc: Loc) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None:
                if key in seen:
                    found.append(((*loc, key), key))
                seen.add(key)
                found.extend(_duplicate_keys(value_node, (*loc, key)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*loc, i)))
    return found


def _node_at(root: yaml.Node, loc: Sequence[int | str], *, key: bool = False) -> yaml.Node:
    """The node of the value at ``loc`` (of its key when ``key``); the nearest parent when the
    path does not exist (a missing key is reported where its mapping starts)."""
    node: yaml.Node = root
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    child = key_node if (last and key) else value_node
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node


def _line_of(root: yaml.Node, loc: Sequence[int | str], *, key: bool = False) -> int:
    """1-based line of the value at ``loc`` (see :func:`_node_at`)."""
    return _node_at(root, loc, key=key).start_mark.line + 1


def _at(line: int | None) -> str:
    return f" (line {line})" if line is not None else ""


# -- pydantic errors -> house style -------------------------------------------------------


def _render_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, bool):  # a YAML 1.1 key such as `on:` or `yes:`
            part = str(part).lower()
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY_RE.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional; a union of several models stays a union."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _tagged_member(tp: Any, tag: int | str) -> type[BaseModel] | None:
    for member in typing.get_args(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("type")
            if field is not None and tag in typing.get_args(field.annotation):
                return member
    return None


def _walk(loc: Sequence[int | str]) -> tuple[Loc, Any]:
    """Drop pydantic's union tags and '[key]' markers from ``loc``; return the data path and
    the type found there (None when the path leaves the model, e.g. an unknown key)."""
    data_loc: list[int | str] = []
    tp: Any = Policy
    for part in loc:
        if part == "[key]":
            continue
        tp = _unwrap(tp)
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            member = _tagged_member(tp, part)
            if member is not None:
                tp = member
                continue
        data_loc.append(part)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            tp = field.annotation if field is not None else None
        elif origin in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = None
    return tuple(data_loc), _unwrap(tp)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_EXPECTED: dict[str, str] = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message(error: ErrorDetails, parent: Any, written: str | None = None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            allowed = list(parent.model_fields)
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            if close:
                return f"unknown key (did you mean {close[0]!r}?)"
            return f"unknown key (allowed: {', '.join(allowed)})"
        return "unknown key"
    if kind in _EXPECTED:
        hint = ""
        if kind == "string_type" and isinstance(value, int | float | bool):
            shown = written or (str(value).lower() if isinstance(value, bool) else str(value))
            hint = f" (quote it: '{shown}')"
        return f"expected {_EXPECTED[kind]}, got {_describe(value)}{hint}"
    if kind == "greater_than":
        return f"must be greater than {_num(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"must be at least {_num(ctx.get('ge'))}"
    if kind == "less_than":
        return f"must be less than {_num(ctx.get('lt'))}"
    if kind == "less_than_equal":
        return f"must be at most {_num(ctx.get('le'))}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}, got {_describe(value)}"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"needs a '{ctx.get('discriminator', 'type').strip(chr(39))}' key"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"must have at least {n} item{'s' if n != 1 else ''}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "value_error":
        err = ctx.get("error")
        return str(err) if err is not None else error["msg"].removeprefix("Value error, ")
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def _translate(error: ErrorDetails, root: yaml.Node) -> list[tuple[str, str]]:
    data_loc, _ = _walk(error["loc"])
    parent = _walk(error["loc"][:-1])[1] if error["loc"] else None
    ctx = error.get("ctx") or {}
    err = ctx.get("error")
    if error["type"] == "value_error" and isinstance(err, ProblemsError):
        out = []
        for rel, msg in err.problems:
            path = _render_loc(data_loc)
            if rel:
                path = f"{path}{'' if rel.startswith('[') or not path else '.'}{rel}"
            line = _line_of(root, (*data_loc, *_parse_rel(rel)))
            out.append((path, f"{msg}{_at(line)}"))
        return out
    is_key = error["type"] == "extra_forbidden"
    node = _node_at(root, data_loc, key=is_key)
    written = node.value if isinstance(node, yaml.ScalarNode) else None
    message = _message(error, parent, written)
    return [(_render_loc(data_loc), f"{message}{_at(node.start_mark.line + 1)}")]


_REL_RE = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parse_rel(rel: str) -> Loc:
    """``budgets[1].name`` -> ``("budgets", 1, "name")``."""
    return tuple(
        int(index) if index else key for index, key in _REL_RE.findall(rel) if index or key
    )
