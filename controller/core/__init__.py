"""The service's foundations: settings, the database and its models, errors, logging, metrics,
leadership between instances, private files, and `ControllerService`, which composes every
domain into one process.

May import: every sub-package of controller (it composes them), schedules, audio, protocol.
"""
