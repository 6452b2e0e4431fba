"""Faust stream tier: decode, enrich, alarm events, ClickHouse sink (`app.py` is the topology)."""
