"""Sans-I/O tracker protocol codecs shared by the edge and the stream workers."""
