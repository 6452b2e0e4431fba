"""Which records the embedded broker's trimmer deletes (the deletion itself: tests/e2e/test_broker_crash.py)."""

from __future__ import annotations

from aiokafka import TopicPartition

from trackpipe.broker import trim_targets

RAW0, RAW1, POS0 = TopicPartition("raw", 0), TopicPartition("raw", 1), TopicPartition("positions", 0)


def test_consumed_topics_keep_the_newest_behind_the_committed_offset() -> None:
    ends = {RAW0: 1000, RAW1: 1000}
    committed = {RAW0: 900, RAW1: 50}
    targets = trim_targets({}, ends, committed, {"raw"}, keep=100)
    assert targets == {RAW0: 800}  # raw 1: 50 committed - 100 kept: nothing to delete


def test_unconsumed_partition_is_never_trimmed() -> None:
    assert trim_targets({}, {RAW0: 10**6}, {}, {"raw"}, keep=100) == {}


def test_a_committed_offset_past_the_log_end_trims_by_the_end() -> None:
    assert trim_targets({}, {RAW0: 500}, {RAW0: 9000}, {"raw"}, keep=100) == {RAW0: 400}


def test_published_topics_keep_the_newest_records() -> None:
    assert trim_targets({POS0: 0}, {POS0: 350}, {}, {"raw"}, keep=100) == {POS0: 250}


def test_nothing_below_what_is_already_deleted() -> None:
    begins = {RAW0: 800, POS0: 250}
    assert trim_targets(begins, {RAW0: 1000, POS0: 350}, {RAW0: 900}, {"raw"}, keep=100) == {}


def test_compacted_topics_get_the_segment_size_only_when_set() -> None:
    from trackpipe.config import Settings
    from trackpipe.supervisor import EMBEDDED_COMPACT_SEGMENT, Supervisor

    plain = Settings()
    assert plain.topic_configs("compact") == {"cleanup.policy": "compact"}
    sized = Settings(compact_segment_bytes=4096)
    assert sized.topic_configs("compact") == {"cleanup.policy": "compact", "segment.bytes": "4096"}
    assert sized.topic_configs("delete") == {"cleanup.policy": "delete"}
    assert sized.changelog("rule_state") == "trackpipe-rule_state-changelog"
    # `trackpipe run` sizes them for its embedded broker, leaves a real Kafka's as they are
    assert Supervisor(plain).settings.compact_segment_bytes == EMBEDDED_COMPACT_SEGMENT
    assert Supervisor(Settings(kafka_bootstrap="kafka:9092")).settings.compact_segment_bytes == 0
    assert Supervisor(sized).settings.compact_segment_bytes == 4096


def test_stored_records_of_consumed_topics_have_their_own_keep() -> None:
    ends = {RAW0: 1000, POS0: 1000}
    targets = trim_targets({}, ends, {RAW0: 900}, {"raw"}, keep=300, keep_stored=50)
    assert targets == {RAW0: 850, POS0: 700}  # raw: 50 behind the committed 900; positions: the last 300
