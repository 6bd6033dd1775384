"""The web console: server-rendered pages in Vietnamese (English by switch) on the same process."""
