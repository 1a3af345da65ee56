"""Alert rules: pure functions and small state machines, ``(state, input) -> (state, alerts)``.

No Faust, no Kafka, no clock reads: the caller passes ``now``. The Faust agents in
``em_service.tracking`` load state, call these, store the result and send the alerts.
"""
