"""HTTP API (FastAPI): health, readiness and, in later releases, alerts, offenders and scenes."""
