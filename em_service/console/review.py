"""Placeholder."""

from __future__ import annotations

from fastapi import APIRouter

from em_service.console.web import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
