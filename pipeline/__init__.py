"""The engine core: flows as data, their validation and compilation, and the runner.

Nothing here speaks Kafka or HTTP. The runner executes a compiled plan against ports
(:mod:`pipeline.ports`), so every rule can be tested with plain pytest.
"""
