"""Adapters that run the connector's actions on workflow engines (`connector.engines.temporal`, …).

Every engine runs an action from one JSON payload, `{"action", "inputs", "connection"}`, where `connection` is the
NAME of a connection in the worker's connections file: secrets stay on the workers and never enter an engine's
history or messages. Workers run the connector in engine mode (no local retries): the engine retries, driven by
each failure's classification (`retryable`, `retry_after`, `may_have_acted`). Nothing here is imported by the
connector itself; each adapter needs its engine's extra (`pip install 'zoho-connector[temporal]'`).
"""
