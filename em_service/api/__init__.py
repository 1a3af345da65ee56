"""HTTP API (FastAPI): alerts, offenders, trails, audit, health and metrics; SSE and webhook
outlets. ``main.create_app`` builds it; ``deps`` holds auth and the other dependencies."""
