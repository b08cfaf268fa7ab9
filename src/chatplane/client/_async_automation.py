"""``AsyncClient``'s methods for schedules and webhooks: an assistant run on a cron, and runs'
outcomes delivered, signed."""

from __future__ import annotations

from typing import Any

import httpx

from chatplane.client._base import (
    ClientBase,
)
from chatplane.schedule_schemas import ScheduleList, ScheduleOut, WebhookDelivery, WebhookSecret


class AsyncAutomationMethods(ClientBase):
    """Mixed into ``AsyncClient``, which sends the requests."""

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    # --- schedules and webhooks -----------------------------------------------------------------------------------
    async def create_schedule(self, schedule: str, *, message: str | None = None, **fields: Any) -> ScheduleOut:
        """Run an assistant on ``schedule`` (cron; five fields, or six with seconds first): ``message`` (or
        ``input=``) each time; ``timezone``, ``assistant_id``, ``thread_id``, ``webhook``, ``end_time`` … (POST
        /v1/crons)."""
        body = self._given(schedule=schedule, message=message, **fields)
        return self._parse(await self._request("POST", "/v1/crons", json=body), ScheduleOut)

    async def schedules(self, *, limit: int = 100, offset: int = 0) -> list[ScheduleOut]:
        answer = await self._request("GET", "/v1/crons", params={"limit": limit, "offset": offset})
        return self._parse(answer, ScheduleList).schedules

    async def get_schedule(self, schedule_id: str) -> ScheduleOut:
        return self._parse(await self._request("GET", f"/v1/crons/{schedule_id}"), ScheduleOut)

    async def update_schedule(self, schedule_id: str, **fields: Any) -> ScheduleOut:
        body = self._given(**fields)
        return self._parse(await self._request("PATCH", f"/v1/crons/{schedule_id}", json=body), ScheduleOut)

    async def delete_schedule(self, schedule_id: str) -> None:
        self._raise_for_status(await self._request("DELETE", f"/v1/crons/{schedule_id}"))

    async def webhook_secret(self, *, rotate: bool = False) -> str:
        """The key your webhooks are signed with; ``rotate``: a new one, used from now on."""
        if rotate:
            answer = await self._request("POST", "/v1/webhooks/secret/rotate")
        else:
            answer = await self._request("GET", "/v1/webhooks/secret")
        return self._parse(answer, WebhookSecret).secret

    async def run_webhook(self, run_id: str) -> WebhookDelivery:
        """The delivery of a run's outcome to its webhook, with every attempt."""
        return self._parse(await self._request("GET", f"/v1/runs/{run_id}/webhook"), WebhookDelivery)
