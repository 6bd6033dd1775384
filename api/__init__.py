"""HTTP edge: REST under /api/v1, media serving, and (later) the web console."""
