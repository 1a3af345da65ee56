"""Conditions domain: per-offender zones, curfews and devices, published as events."""
