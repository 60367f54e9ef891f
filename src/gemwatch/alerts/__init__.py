"""Alerts: route events to people and building automation, silently, and never lose one.

The path of an alert: ``dispatcher.AlertDispatcher`` (a bus sink) routes each event
(``routing``) and commits its deliveries to the outbox (``outbox``) before anything goes on
the wire; ``sender.Sender`` delivers them on worker threads through the channels
(``channels``: Apprise, MQTT with Home Assistant discovery, signed webhooks), retrying with
backoff across restarts. ``service.AlertService`` acknowledges and runs one-tap actions from
signed links (``links``), served by ``router``. See docs/alerts.md and docs/mqtt.md.

Importing this package imports nothing heavy (no FastAPI, paho or Apprise).
"""
