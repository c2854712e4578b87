"""The operator tools: ``actionflows replay`` and ``actionflows dlq``.

Each tool is one module (:mod:`agents.ops.replay`, :mod:`agents.ops.dlq`); what they share is
:mod:`agents.ops.slices` (which records of a topic, read and published without a consumer group),
:mod:`agents.ops.common` (Kafka arguments, catalogue, error and time formats) and
:mod:`agents.ops.output` (what they print). None of them joins the worker's consumer group.
"""
