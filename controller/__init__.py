"""The controller service: config, database, MQTT gateway, timelines, registry and the `radio` CLI."""
