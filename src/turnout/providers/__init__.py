"""Provider adapters, one per upstream wire format, registered in :data:`PROVIDERS`.

The seam is :class:`turnout.providers.base.Provider`; see :mod:`turnout.providers.base` for
the contract. ``PROVIDERS`` maps the config's ``provider`` name to the adapter class.
"""

from turnout.providers.anthropic import AnthropicProvider
from turnout.providers.base import (
    Completion,
    Endpoint,
    Provider,
    ProviderFactory,
    StreamEvent,
    Timeouts,
)
from turnout.providers.gemini import GeminiProvider
from turnout.providers.openai_compat import OpenAICompatProvider

#: Adapter per config ``provider`` name. Every OpenAI-compatible upstream (OpenAI, Azure
#: OpenAI, vLLM, Ollama, llama.cpp, Together, Groq, DeepSeek, Mistral, OpenRouter) uses
#: :class:`OpenAICompatProvider`.
PROVIDERS: dict[str, ProviderFactory] = {
    "openai": OpenAICompatProvider,
    "openai_compat": OpenAICompatProvider,
    "azure": OpenAICompatProvider,
    "vllm": OpenAICompatProvider,
    "ollama": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}

__all__ = [
    "PROVIDERS",
    "Completion",
    "Endpoint",
    "OpenAICompatProvider",
    "Provider",
    "ProviderFactory",
    "StreamEvent",
    "Timeouts",
]
