"""Run history: what happened to a ticket, an event, a flow, without reading topics by hand.

- :mod:`agents.history.rows` — records of the output topics as rows (pure);
- :mod:`agents.history.store` — the SQLite store: schema, expiry, queries with pagination;
- :mod:`agents.history.indexer` — the indexer that keeps the store up to date with the topics
  and rebuilds it from them on request;
- :mod:`agents.history.api` and :mod:`agents.history.openapi` — the JSON API and its OpenAPI
  3.1 document;
- :mod:`agents.history.service` — ``actionflows api``; :mod:`agents.history.client` —
  ``actionflows runs``.
"""
