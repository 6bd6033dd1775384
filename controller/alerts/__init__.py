"""Emergency alerts: issue, update, cancel, all-clear, templates, and CAP 1.2 in and out.

May import: controller.core, controller.auth, controller.fleet, controller.mqtt,
controller.programme, audio, protocol.
"""
