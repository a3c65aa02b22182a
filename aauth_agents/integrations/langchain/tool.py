"""The tool class of the AAuth LangChain integration.

(No ``from __future__ import annotations`` here: LangChain reads the annotations of a tool's
``_run`` on every call, and a string annotation costs an evaluation each time.)
"""

import contextvars
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool

#: The id of the tool call being run (set by :class:`AAuthTool`).
TOOL_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "aauth_tool_call", default=None
)


class AAuthTool(StructuredTool):
    """A ``StructuredTool`` (both ``func`` and ``coroutine``) that knows the id of the tool
    call it runs (the interrupt mode's key, the error ``ToolMessage``). Its functions take
    ``config`` and ``callbacks`` besides the arguments; they are called directly, without
    LangChain inspecting them again on every call."""

    def run(
        self,
        tool_input: Any,
        *args: Any,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        token = TOOL_CALL.set(tool_call_id)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            TOOL_CALL.reset(token)

    async def arun(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        token = TOOL_CALL.set(tool_call_id)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            TOOL_CALL.reset(token)

    def _run(
        self,
        *args: Any,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        assert self.func is not None
        callbacks = run_manager.get_child() if run_manager is not None else None
        return self.func(*args, config=config, callbacks=callbacks, **kwargs)

    async def _arun(
        self,
        *args: Any,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        assert self.coroutine is not None
        callbacks = run_manager.get_child() if run_manager is not None else None
        return await self.coroutine(*args, config=config, callbacks=callbacks, **kwargs)


__all__ = ["TOOL_CALL", "AAuthTool"]
