"""The web console: the connection indicator, flows, runs, dead letters (and redrive), live
figures, as server-rendered HTML pages that need no JavaScript.

It is served by the run-history process (``actionflows console``, the same as ``actionflows
api``), on the same aiohttp app as the JSON API: :func:`~agents.console.app.mount` adds it.
Modules: :mod:`~agents.console.auth` (the login, sessions, CSRF, the guard),
:mod:`~agents.console.pages` (the read-only pages), :mod:`~agents.console.letters` (dead
letters and redrive), :mod:`~agents.console.live` (the workers' metrics),
:mod:`~agents.console.connection` (the indicator), :mod:`~agents.console.render` (templates).
Usage and the reasoning behind the auth: docs/operations.md, "Console".
"""

from agents.console.app import ConsoleConfig, mount

__all__ = ["ConsoleConfig", "mount"]
