"""Webhooks: runs reported to a URL when they end — signed (``signing``), through an SSRF guard (``guard``),
retried and recorded (``dispatcher``; deliveries stored by ``chatplane.storage.webhooks``)."""
