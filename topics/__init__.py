"""Kafka topology as pure code: the topic catalogue, input codecs, output records, headers.

No Kafka client and no faust here: ``agents/`` turns these specs and bytes into topics and
sends. Data flows bytes → :func:`decode_event` → :class:`pipeline.events.Event` → (the engine)
→ :class:`StepOutputRecord` / :class:`RunResultRecord` / :class:`DeadLetterRecord` → bytes
and headers.
"""

from pipeline.result import RunStatus, StepStatus
from topics.catalogue import (
    Catalogue,
    CatalogueSettings,
    TopicRole,
    TopicSpec,
    format_delay,
    parse_delay,
)
from topics.codecs import DEFAULT_MAX_BYTES, decode_event, encode_event
from topics.errors import (
    DecodeError,
    HeaderError,
    InvalidField,
    MalformedJson,
    MissingField,
    PayloadTooLarge,
    TooDeep,
    TopicsError,
    UnknownEventType,
)
from topics.headers import (
    DeadLetterContext,
    Headers,
    ReplayMarker,
    RetryContext,
    Stage,
    dead_letter_headers,
    parse_dead_letter_headers,
    parse_replay,
    parse_retry_headers,
    qualified_name,
    replay_headers,
    retry_headers,
)
from topics.records import DeadLetterRecord, RunResultRecord, StepOutputRecord, StepSummary
from topics.redaction import (
    DEFAULT_PII_KEYS,
    DEFAULT_REDACT_KEYS,
    SECRET_KEYS,
    Redactor,
    redact,
    scrub,
)
from topics.tracing import TraceContext, ensure_trace, read_trace, trace_headers

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PII_KEYS",
    "DEFAULT_REDACT_KEYS",
    "SECRET_KEYS",
    "Catalogue",
    "CatalogueSettings",
    "DeadLetterContext",
    "DeadLetterRecord",
    "DecodeError",
    "HeaderError",
    "Headers",
    "InvalidField",
    "MalformedJson",
    "MissingField",
    "PayloadTooLarge",
    "Redactor",
    "ReplayMarker",
    "RetryContext",
    "RunResultRecord",
    "RunStatus",
    "Stage",
    "StepOutputRecord",
    "StepStatus",
    "StepSummary",
    "TooDeep",
    "TopicRole",
    "TopicSpec",
    "TopicsError",
    "TraceContext",
    "UnknownEventType",
    "dead_letter_headers",
    "decode_event",
    "encode_event",
    "ensure_trace",
    "format_delay",
    "parse_dead_letter_headers",
    "parse_delay",
    "parse_replay",
    "parse_retry_headers",
    "qualified_name",
    "read_trace",
    "redact",
    "replay_headers",
    "retry_headers",
    "scrub",
    "trace_headers",
]
