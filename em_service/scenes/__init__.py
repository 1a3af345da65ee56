"""Crime-scene matching: retrospective (the trail archive) and live (late fixes in the worker),
matches with evidence, ``scene_proximity`` alerts, evidence export. See README.md here."""
