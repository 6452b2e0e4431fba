"""Device sides of the protocols: the frames a real unit sends, for `trackpipe simulate`,
the benchmarks and the tests.  One module per protocol, named like the codec module;
each defines ``Device`` (a `DeviceSession`).  Sans-I/O like the codecs."""
