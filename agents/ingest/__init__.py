"""The webhook ingest: signed Zendesk webhooks and generic events over HTTP, into the input topics.

- :mod:`~agents.ingest.server` — the aiohttp server and its routes (``actionflows ingest``);
- :mod:`~agents.ingest.signature` — Zendesk signatures and bearer tokens (pure);
- :mod:`~agents.ingest.payloads` — request bodies → validated records (pure);
- :mod:`~agents.ingest.enrich` — requester lookups in Zendesk for events that carry ids only;
- :mod:`~agents.ingest.publisher` — the acks=all producer, connected in the background;
- :mod:`~agents.ingest.settings` — the environment, read once; :mod:`~agents.ingest.errors`.

It is a composition root beside the worker, not part of it: the worker never imports it.
"""
