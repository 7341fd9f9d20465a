"""Adapters that run the connector's actions on workflow engines (Celery, Temporal), one payload per action.

Each adapter is its own optional extra (`pip install 'zoho-connector[celery]'`); `_common` holds what they share.
"""
