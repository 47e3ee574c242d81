"""State events and target statuses over MQTT: payloads, topics and the publisher."""
