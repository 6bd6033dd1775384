"""Live voice and relayed stations: live broadcasts, the encoder and feeds, targets, the stream hub
and relay sources.

May import: controller.core, controller.auth, controller.fleet, controller.mqtt,
controller.programme, protocol.
"""
