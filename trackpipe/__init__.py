"""trackpipe: GPS-tracker ingestion on one shared port -> Kafka -> Faust -> ClickHouse."""

__version__ = "0.1.0"
