"""The faust application: settings, wiring and agents; the composition root of actionflows.

The only package that imports faust. It puts the pure core (:mod:`pipeline`), the topic catalogue
and codecs (:mod:`topics`) and the Salesforce client (:mod:`salesforce`) together; it holds no
business rules of its own.

Note: a top-level package named ``agents`` shares its import name with other SDKs (for example
OpenAI's Agents SDK). actionflows is deployed as a service on its own, so the clash only matters
if both are installed in one environment.
"""
