"""Coordinate text shared by the NMEA-style protocols (Carscop, H02)."""

from __future__ import annotations


def to_ddmm(value: float, degree_digits: int) -> str:
    """|degrees| as (d)ddmm.mmmm, rounded to the field's 1e-4 minute (hemisphere letters are separate)."""
    ten_thousandths = round(abs(value) * 600_000)
    degrees, rest = divmod(ten_thousandths, 600_000)
    minutes, fraction = divmod(rest, 10_000)
    return f"{degrees:0{degree_digits}d}{minutes:02d}.{fraction:04d}"
