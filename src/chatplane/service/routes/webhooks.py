"""Webhooks: your signing secret (``/v1/webhooks/secret``, rotate it) and a run's deliveries
(``/v1/runs/{run_id}/webhook``)."""

from __future__ import annotations

from fastapi import APIRouter

from chatplane.errors import WebhookNotFoundError
from chatplane.schedule_schemas import WebhookAttempt, WebhookDelivery, WebhookSecret
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.routes.threads import _ERRORS
from chatplane.storage.webhooks import WebhookStore
from chatplane.webhooks.signing import new_secret

router = APIRouter(tags=["webhooks"])


@router.get("/v1/webhooks/secret", response_model=WebhookSecret, responses=_ERRORS)
async def get_secret(agent: AgentDep, user: CurrentUser) -> WebhookSecret:
    """The key your webhooks are signed with (made on first use)."""
    return WebhookSecret(secret=await WebhookStore(agent.storage.db).secret(user.id, new_secret()))


@router.post("/v1/webhooks/secret/rotate", response_model=WebhookSecret, responses=_ERRORS)
async def rotate_secret(agent: AgentDep, user: CurrentUser) -> WebhookSecret:
    """A new key: every delivery signed from now on uses it."""
    return WebhookSecret(secret=await WebhookStore(agent.storage.db).rotate(user.id, new_secret()))


@router.get("/v1/runs/{run_id}/webhook", response_model=WebhookDelivery, responses=_ERRORS)
async def run_webhook(run_id: str, agent: AgentDep, user: CurrentUser) -> WebhookDelivery:
    """The delivery of the run's outcome to its webhook, with every attempt (``waiting`` until the run ends)."""
    await agent.for_user(user.id).runs.get(run_id)  # the same 404 for another user's run as for a missing one
    delivery = await WebhookStore(agent.storage.db).get(run_id, user.id)
    if delivery is None:
        raise WebhookNotFoundError()
    return WebhookDelivery(
        run_id=delivery.run_id,
        url=delivery.url,
        status=delivery.status,
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at,
        give_up_at=delivery.give_up_at,
        finished_at=delivery.finished_at,
        attempts=[WebhookAttempt(**attempt.__dict__) for attempt in delivery.history],
    )
