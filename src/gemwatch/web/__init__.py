"""The web console: FastAPI app (REST + SSE), server-rendered pages, users, roles and audit.

This package's ``__init__`` imports nothing heavy, so ``gemwatch.web.audit`` and
``gemwatch.web.schema`` stay usable from non-web code (alerts, the CLI) without FastAPI.
"""
