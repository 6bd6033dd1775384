"""Bulletins from upper levels: pushed by another system with a service account, or read from
its RSS/Atom feed; each lands in the approval queue of the officers of its areas, or is
scheduled at once by an officer's standing rule."""
