"""The protocol kit: what every protocol module would otherwise repeat.

* `framing`   -- incremental framers (delimited, line, length-field / fixed header), resync, size caps;
* `checksums` -- the CRC catalogue (checked against reference values), XOR, sums, NMEA, Luhn;
* `readers`   -- bounds-checked binary `Reader`, BCD, ddmm coordinates, packed dates, bit fields;
* `alarms`    -- the alarm vocabulary (Traccar's names);
* `keys`      -- attribute key constants (Traccar's names).

A protocol module is one file in `trackpipe.protocols` that defines ``CODEC`` (a `Codec`
instance declaring its ``first_bytes``); the registry finds it by itself.
"""
