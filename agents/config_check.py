"""``--check-config``: a command reads its arguments, its settings and its secret files exactly
as it would to start, prints what it would do (never a secret), and exits without connecting to
anything: 0 when all is well, 1 naming the first problem or the variables it did not read.

Deployments run it before a rollout, and the tests run it on every service of
``docker-compose.yml`` (tests/deploy/)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agents.settings import EnvironmentReads

HELP = (
    "read the arguments, settings and secret files, print what would be done, and exit "
    "without connecting to anything (1 on a problem or an unread ACTIONFLOWS_/KAFKA_ variable)"
)


def add_check_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-config", action="store_true", help=HELP)


def report_config(command: str, plan: Sequence[str], env: EnvironmentReads) -> int:
    """Print the plan; 1 when the environment holds variables the command never read."""
    print(f"actionflows {command}: the configuration is valid; it would run with")
    for line in plan:
        print(f"  {line}")
    if unread := env.unread():
        print(
            f"actionflows {command}: not read by this command: {', '.join(unread)} "
            "(misspelt, or meant for another command?)",
            file=sys.stderr,
        )
        return 1
    return 0
