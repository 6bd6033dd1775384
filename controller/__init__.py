"""The controller service, in sub-packages by domain: core (settings, database, the service that
composes the rest), mqtt, fleet, programme, alerts, live, commands, health, auth. It knows nothing
of HTTP (api) or of the node software (firmware_sim); the composition root (radio) builds it."""
