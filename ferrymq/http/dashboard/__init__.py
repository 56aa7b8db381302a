"""The live dashboard: pages and assets shipped in the package, live updates over server-sent events."""
