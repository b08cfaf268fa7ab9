"""Agent cards: each assistant an A2A agent, at ``/a2a/{assistant}`` (its JSON-RPC endpoint, A2A 1.0 and 0.3).

A card names the assistant, says what it does (its one skill), that it streams, that it takes and gives text, and
how to authenticate: the bearer scheme (a chatplane API key or a JWT, as every route takes).
"""

from __future__ import annotations

from a2a.types import a2a_pb2 as pb
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol

import chatplane
from chatplane.agents.registry import GraphRegistry
from chatplane.storage.assistants import Assistant

PREFIX = "/a2a"
_TEXT = ["text/plain"]
_BEARER = "bearer"


def endpoint_name(assistant: Assistant) -> str:
    """An assistant's name in its endpoint's path: its graph's id for a default, its own id otherwise."""
    return assistant.graph_id if assistant.is_default else assistant.assistant_id


def _skill(assistant: Assistant, catalog: GraphRegistry) -> pb.AgentSkill:
    name = endpoint_name(assistant)
    if assistant.is_default:
        description = catalog.description(assistant.graph_id) or f"chatplane's {name} agent."
    else:
        description = assistant.description or f"{assistant.name}: an assistant of the {assistant.graph_id} graph."
    return pb.AgentSkill(
        id=name,
        name=assistant.name,
        description=description,
        tags=[assistant.graph_id],
        input_modes=_TEXT,
        output_modes=_TEXT,
    )


def agent_card(
    assistant: Assistant, catalog: GraphRegistry, base_url: str, skills: list[pb.AgentSkill] | None = None
) -> pb.AgentCard:
    """The card of ``assistant`` as served at ``base_url`` (``skills``: instead of the assistant's own)."""
    skill = _skill(assistant, catalog)
    url = f"{base_url.rstrip('/')}{PREFIX}/{endpoint_name(assistant)}"
    return pb.AgentCard(
        name=assistant.name,
        description=skill.description,
        version=chatplane.__version__,
        supported_interfaces=[
            pb.AgentInterface(url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version=version)
            for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        provider=pb.AgentProvider(organization="chatplane", url=base_url),
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=False),
        security_schemes={
            _BEARER: pb.SecurityScheme(
                http_auth_security_scheme=pb.HTTPAuthSecurityScheme(
                    scheme="bearer", description="A chatplane API key (or a JWT, where the server accepts them)."
                )
            )
        },
        security_requirements=[pb.SecurityRequirement(schemes={_BEARER: pb.StringList()})],
        default_input_modes=_TEXT,
        default_output_modes=_TEXT,
        skills=skills if skills is not None else [skill],
    )


def server_card(
    defaults: list[Assistant], default_agent: str, catalog: GraphRegistry, base_url: str
) -> pb.AgentCard | None:
    """The server's well-known card: the default agent's card, with every graph's default assistant as a skill
    (each has its own card at ``/a2a/{graph}/.well-known/agent-card.json``); None if no graph keeps messages."""
    talking = [a for a in defaults if a.graph_id in catalog and catalog.get(a.graph_id).has_messages]
    if not talking:
        return None
    main = next((a for a in talking if a.graph_id == default_agent), talking[0])
    return agent_card(main, catalog, base_url, skills=[_skill(a, catalog) for a in talking])
