"""Tracking domain: tag readings in, validated, evaluated by the rules, alerts out."""
