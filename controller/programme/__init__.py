"""What plays when: schedules and broadcasts, admission (conflicts, quiet hours), approvals,
occurrences of recurring rules, each node's timeline, speech rendering, playlists, the calendar
and playback log.

May import: controller.core, controller.auth, controller.fleet, controller.mqtt, schedules,
audio, protocol.
"""
