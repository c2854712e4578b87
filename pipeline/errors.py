"""Errors of the engine core, and :class:`FlowError`, one problem found in a flow file.

The tree of exceptions raised by :mod:`pipeline` (the catalogue has its own root,
``CatalogueError``, and gateways raise :class:`~pipeline.ports.GatewayError`)::

    PipelineError
    ├── FlowLoadError          a folder of flows has problems; ``errors`` lists every one of them
    ├── FlowSyntaxError        one expression in a flow cannot be parsed (``path`` says where)
    │   ├── TemplateSyntaxError    bad ``{{ … }}`` template
    │   └── ConditionSyntaxError   bad condition (unknown operator, wrong arity, …)
    └── ResumeError            ``resume_from`` names an unknown step, or the ledger lacks an
                               earlier step's record, so a redrive cannot reuse its outputs

None of these is retriable: each one means a definition or a request is wrong, and running it
again gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FlowError:
    """One problem in one flow file: where it is (file, dotted path, line if known) and what.

    ``str()`` gives one line: ``flows/x.yaml: steps[2].inputs.email: unknown step 'y' (line 14)``.
    """

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}: " if self.path else f"{self.file}: "
        suffix = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{self.message}{suffix}"


class PipelineError(Exception):
    """Root of every error the engine core raises."""

    retriable: ClassVar[bool] = False


class FlowLoadError(PipelineError):
    """Flows failed validation. The message lists every error, one per line."""

    def __init__(self, errors: Iterable[FlowError]) -> None:
        self.errors = tuple(errors)
        count = len(self.errors)
        lines = "\n".join(f"  {error}" for error in self.errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in flow definitions:\n{lines}")


class FlowSyntaxError(PipelineError):
    """An expression inside a flow cannot be parsed. ``path`` is relative to the expression."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class TemplateSyntaxError(FlowSyntaxError):
    """A ``{{ … }}`` template is malformed: unclosed, empty, bad path or unknown filter."""


class ConditionSyntaxError(FlowSyntaxError):
    """A condition is malformed: unknown operator, wrong number of operands, bad path."""


class ResumeError(PipelineError):
    """A redrive asked to resume at a step it cannot resume at."""


def join_path(head: str, tail: str) -> str:
    """``steps[0]`` + ``inputs.email`` → ``steps[0].inputs.email``; ``eq`` + ``[1]`` → ``eq[1]``."""
    if not tail:
        return head
    return f"{head}{tail}" if tail.startswith("[") else f"{head}.{tail}"
