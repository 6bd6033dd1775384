"""The controller service: config, database, MQTT gateway, timelines, registry, `radio` CLI."""
