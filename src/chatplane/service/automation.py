"""What runs on its own beside the requests: the scheduler (due schedules start their runs) and the webhook
dispatcher (finished runs reported to their webhooks). Started by the lifespan after the agent, stopped before it."""

from __future__ import annotations

from dataclasses import dataclass

from chatplane.agent import ProductionAgent
from chatplane.config import Settings
from chatplane.core.schedules import start_tick
from chatplane.schedules.scheduler import Scheduler
from chatplane.service.auth import User
from chatplane.service.ratelimit import RateLimits
from chatplane.storage.schedules import Schedule, ScheduleStore
from chatplane.storage.webhooks import WebhookStore
from chatplane.webhooks.dispatcher import WebhookDispatcher


@dataclass
class Automation:
    scheduler: Scheduler
    webhooks: WebhookDispatcher

    async def aclose(self) -> None:
        await self.scheduler.aclose()
        await self.webhooks.aclose()


def start_automation(agent: ProductionAgent, settings: Settings, rate_limits: RateLimits) -> Automation:
    """Start both jobs on ``agent``; a schedule's tick is admitted by ``rate_limits`` as its owner's run would be."""
    services = agent.services
    db = agent.storage.db
    worker = agent.runs.worker
    webhooks = WebhookDispatcher(WebhookStore(db), agent.storage.runs, settings, worker)
    agent.runs.hooks.finished.append(webhooks.run_finished)

    async def admit(owner: str) -> None:
        await rate_limits.check_new_run(User(owner, via="key"))

    async def tick(schedule: Schedule, at: float) -> str:
        return await start_tick(services, schedule, at)

    scheduler = Scheduler(ScheduleStore(db), settings, worker, tick, admit)
    webhooks.start()
    scheduler.start()
    return Automation(scheduler, webhooks)
