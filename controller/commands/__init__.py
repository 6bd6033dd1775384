"""Commands to nodes and areas (volume, stop, test tone, resync, reboot, firmware): planning, per-
node progress and acks, the firmware catalogue.

May import: controller.core, controller.auth, controller.fleet, controller.mqtt, protocol.
"""
