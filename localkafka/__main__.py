"""``python -m localkafka [VERSION]``: resolve and cache the broker's jars (used by make and CI)."""

import sys
from pathlib import Path

from localkafka.broker import DEFAULT_KAFKA_VERSION, BrokerOptions, ensure_classpath

version = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else DEFAULT_KAFKA_VERSION
libs = ensure_classpath(version, BrokerOptions().cache_dir)
print(f"Kafka {version}: {len(list(Path(libs).glob('*.jar')))} jars in {libs}")
