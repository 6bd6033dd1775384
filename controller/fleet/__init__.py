"""The loudspeakers and the area tree: the device registry, CSV import, groups, seeding the
official units of Vietnam, fleet views.

May import: controller.core, controller.auth, controller.mqtt, schedules, protocol.
"""
