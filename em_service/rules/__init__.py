"""Alert rules: pure functions and small state machines, ``(state, input) -> (state, alerts)``.

No Kafka, no clock reads: the caller passes ``now``. The tracking worker
(``em_service.tracking``) loads state, calls these, stores the result and sends the alerts.
"""
