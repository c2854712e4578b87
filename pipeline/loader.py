"""Flow files → validated, compiled :class:`~pipeline.plan.FlowSet`, or every error at once.

A folder holds one flow per ``*.yaml``/``*.yml`` file. Loading reads each file (YAML syntax
errors carry their line), checks its shape with the pydantic models of :mod:`pipeline.flows`
(duplicate mapping keys, which YAML would silently collapse, are errors too), checks its
meaning with :mod:`pipeline.validate`, then checks the folder (flow names are unique). Every
error names the file and the path inside it, plus the line when the path is found in the file.
Only a folder without errors compiles.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.compiler import EXTERNAL_ID_OPTION, compile_flow
from pipeline.errors import FlowError, FlowLoadError
from pipeline.flows import FlowDefinition
from pipeline.plan import FlowSet, Plan
from pipeline.validate import Catalogue, FlowChecker, default_catalogue

SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class ParsedFile:
    """One file after reading: its definition (``None`` when its shape is wrong) and errors."""

    file: str
    definition: FlowDefinition | None
    errors: list[FlowError] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest ancestor found in the file."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None


def _child(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for segment in loc:
        path = _child(path, segment)
    return path


def _walk(node: yaml.Node, path: str, parsed: ParsedFile) -> None:
    """Record the line of every path, and report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child, line = _child(path, key), key_node.start_mark.line + 1
            if key in seen:
                parsed.errors.append(
                    FlowError(
                        parsed.file,
                        child,
                        f"duplicate key {key!r} (first at line {seen[key]})",
                        line,
                    )
                )
                continue
            seen[key] = line
            parsed.lines[child] = line
            _walk(value_node, child, parsed)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = _child(path, index)
            parsed.lines[child] = item.start_mark.line + 1
            _walk(item, child, parsed)


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model a location points into, to list its allowed keys."""
    model: type[BaseModel] = FlowDefinition
    for segment in loc:
        if isinstance(segment, int):
            continue
        info = model.model_fields.get(segment)
        if info is None:
            return None
        candidates = [info.annotation, *typing.get_args(info.annotation)]
        found = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not found:
            return None
        model = found[0]
    return model


def _schema_errors(parsed: ParsedFile, error: ValidationError) -> None:
    items = error.errors()
    locs = [tuple(item["loc"]) for item in items]
    for item in items:
        loc = tuple(item["loc"])
        # pydantic also calls a list "too short" when its only items failed: say it once.
        if item["type"] == "too_short" and any(o[: len(loc)] == loc != o for o in locs):
            continue
        path, parent = _loc_path(loc), _loc_path(loc[:-1])
        last = loc[-1] if loc else ""
        line = parsed.line_of(path)
        if item["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            allowed = f" (allowed: {', '.join(model.model_fields)})" if model else ""
            message = f"unknown key {last!r}{allowed}"
        elif item["type"] == "missing":
            message, line = f"missing required key {last!r}", parsed.line_of(parent)
        else:
            message = str(item["msg"])
            value = item.get("input")
            if isinstance(value, str | int | float | bool) and len(repr(value)) < 60:
                message += f", got {value!r}"
        parsed.errors.append(FlowError(parsed.file, path, message, line))


def read_flow_file(path: Path | str) -> ParsedFile:
    """Read and shape-check one file. Never raises for a bad file: errors are collected."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        error = FlowError(str(path), "", f"cannot read the file: {exc}")
        return ParsedFile(str(path), None, [error])
    return read_flow_text(text, str(path))


def read_flow_text(text: str, file: str) -> ParsedFile:
    """Shape-check one flow given as YAML text; ``file`` names it in errors."""
    parsed = ParsedFile(file, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        parsed.errors.append(FlowError(file, "", f"invalid YAML: {problem}", line))
        return parsed
    if node is not None:
        _walk(node, "", parsed)
    if not isinstance(data, Mapping):
        parsed.errors.append(
            FlowError(
                file, "", "a flow file must hold one mapping (name, version, trigger, steps, …)", 1
            )
        )
        return parsed
    try:
        parsed.definition = FlowDefinition.model_validate(data)
    except ValidationError as exc:
        _schema_errors(parsed, exc)
    return parsed


def _check(parsed: ParsedFile, catalogue: Catalogue) -> ParsedFile:
    if parsed.definition is not None:
        checker = FlowChecker(parsed.file, catalogue, parsed.line_of)
        parsed.errors.extend(checker.check(parsed.definition))
    return parsed


def _check_keys(
    parsed: ParsedFile, external_id_fields: Mapping[str, str] | None
) -> list[FlowError]:
    """``unique_by`` needs an external-id field to keep the key in: configured, or the step's.
    Checked when the configuration is given (the worker gives it); the executor refuses such a
    step at run time otherwise."""
    if parsed.definition is None or external_id_fields is None:
        return []
    errors = []
    for index, step in enumerate(parsed.definition.steps):
        if step.unique_by is None or step.object is None:
            continue
        if step.options.get(EXTERNAL_ID_OPTION) or external_id_fields.get(step.object):
            continue
        path = f"steps[{index}].unique_by"
        message = (
            f"unique_by needs an external-id field on {step.object} to hold the key: configure "
            f"one for {step.object} (external_id_fields) or set options.{EXTERNAL_ID_OPTION}"
        )
        errors.append(FlowError(parsed.file, path, message, parsed.line_of(path)))
    return errors


def compile_text(
    text: str,
    *,
    file: str = "<flow>",
    catalogue: Catalogue | None = None,
    external_id_fields: Mapping[str, str] | None = None,
) -> Plan:
    """Validate and compile one flow given as YAML text; raise :class:`FlowLoadError`."""
    catalogue = catalogue or default_catalogue()
    parsed = _check(read_flow_text(text, file), catalogue)
    parsed.errors.extend(_check_keys(parsed, external_id_fields))
    if parsed.errors or parsed.definition is None:
        raise FlowLoadError(parsed.errors)
    return compile_flow(
        parsed.definition, catalogue.actions, source=file, external_id_fields=external_id_fields
    )


def check_file(path: Path | str, catalogue: Catalogue | None = None) -> ParsedFile:
    """Read one file and check its shape and meaning."""
    return _check(read_flow_file(path), catalogue or default_catalogue())


def validate_file(path: Path | str, catalogue: Catalogue | None = None) -> list[FlowError]:
    return check_file(path, catalogue).errors


def flow_files(directory: Path | str) -> list[Path]:
    return sorted(p for p in Path(directory).iterdir() if p.suffix in SUFFIXES and p.is_file())


def _check_directory(directory: Path | str, catalogue: Catalogue | None) -> list[ParsedFile]:
    catalogue = catalogue or default_catalogue()
    parsed = [check_file(path, catalogue) for path in flow_files(directory)]
    first: dict[str, str] = {}
    for item in parsed:
        if item.definition is None:
            continue
        name = item.definition.name
        if name in first:
            item.errors.append(
                FlowError(
                    item.file,
                    "name",
                    f"duplicate flow name {name!r} (also in {first[name]})",
                    item.line_of("name"),
                )
            )
        else:
            first[name] = item.file
    return parsed


def validate_directory(
    directory: Path | str, catalogue: Catalogue | None = None
) -> list[FlowError]:
    """Every error of every flow file in ``directory`` (empty: the folder is valid)."""
    return [error for item in _check_directory(directory, catalogue) for error in item.errors]


def load_flows(
    directory: Path | str,
    *,
    catalogue: Catalogue | None = None,
    external_id_fields: Mapping[str, str] | None = None,
) -> FlowSet:
    """Validate and compile every flow in ``directory``; raise :class:`FlowLoadError` listing
    every error when any file has one. ``external_id_fields`` maps an object to its external-id
    field API name, which turns that object's creates into idempotent upserts."""
    catalogue = catalogue or default_catalogue()
    parsed = _check_directory(directory, catalogue)
    for item in parsed:
        item.errors.extend(_check_keys(item, external_id_fields))
    errors = [error for item in parsed for error in item.errors]
    if errors:
        raise FlowLoadError(errors)
    plans = tuple(
        compile_flow(
            item.definition,
            catalogue.actions,
            source=item.file,
            external_id_fields=external_id_fields,
        )
        for item in parsed
        if item.definition is not None
    )
    return FlowSet(plans)
