"""Device health: presence (online, lost, offline), telemetry and its roll-ups, alarms and their
rules, stream alarms, webhooks, the device health views.

May import: controller.core, controller.auth, controller.fleet, controller.mqtt,
controller.programme, protocol.
"""
