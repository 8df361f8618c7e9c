"""The Parallels REST API (Starlette). Not built yet: see api/README.md."""
