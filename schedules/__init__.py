"""The scheduling domain: occurrences, the area tree and each node's timeline.

Pure computation: no broker, no HTTP, no database.
"""

from schedules.timeline import AreaTree, Occurrence, node_timeline, timeline_digest

__all__ = ["AreaTree", "Occurrence", "node_timeline", "timeline_digest"]
