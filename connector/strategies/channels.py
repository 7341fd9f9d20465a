"""Webhook channels: how a product is asked to call back on changes, and how its callbacks read.

A webhook trigger names its channel in its data (`webhook: {channel: NAME}`); the generic runtime
(connector/_webhook.py) keeps the subscription, the verification token and the renewals, and asks the channel only
what is the product's own: the inputs of the actions that open, renew and close a channel, and the events in a
callback's body.
"""

from __future__ import annotations

from typing import Any

CHANNELS: dict[str, Any] = {}
