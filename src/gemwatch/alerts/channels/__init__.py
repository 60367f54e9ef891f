"""Delivery channels: Apprise (people), MQTT with Home Assistant discovery (buildings),
signed webhooks (anything else). Each turns one outbox delivery into one send and raises
:class:`~gemwatch.alerts.channels.base.DeliveryError` when it did not arrive."""
