"""The thin socket edge: detect, frame, identify, publish to Kafka, reply after Kafka confirmed."""
