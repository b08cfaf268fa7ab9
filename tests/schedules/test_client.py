"""The SDK's schedules and webhook methods, and ``chatplane webhooks secret``, against a real server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from chatplane.client import Client, NotFoundError
from tests.servers import wait_for

pytestmark = pytest.mark.e2e


def test_sdk_and_cli(server_factory: Any, tmp_path: Any) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/c.db"})
    with Client(server.url) as client:
        created = client.create_schedule("0 9 * * 1-5", message="daily report", timezone="Europe/Paris")
        assert created.timezone == "Europe/Paris" and created.message == "daily report"
        assert [s.schedule_id for s in client.schedules()] == [created.schedule_id]
        changed = client.update_schedule(created.schedule_id, enabled=False)
        assert changed.enabled is False and client.get_schedule(created.schedule_id).enabled is False
        client.delete_schedule(created.schedule_id)
        with pytest.raises(NotFoundError):
            client.get_schedule(created.schedule_id)
        secret = client.webhook_secret()
        assert secret.startswith("whsec_") and client.webhook_secret() == secret
        thread = client.create_thread()
        run = client.run(thread.thread_id, "hi", webhook="http://127.0.0.1:9/never")
        delivery = wait_for(lambda: (d := client.run_webhook(run.run_id)).status in ("delivered", "failed") and d)
        assert delivery.status == "failed" and delivery.attempts[0].error == "refused: loopback address refused"
        with pytest.raises(NotFoundError):
            client.run_webhook("no-such-run")
    command = [sys.executable, "-m", "chatplane", "webhooks", "secret", "--url", server.url]
    shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    assert shown == secret
    rotated = subprocess.run([*command, "--rotate"], capture_output=True, text=True, check=True).stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    with Client(server.url) as client:
        assert client.webhook_secret() == rotated
