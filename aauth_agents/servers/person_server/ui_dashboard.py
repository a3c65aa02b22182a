"""The dashboard's pages (§Agent-Person Binding, §Mission Management: the person's view and
control of their agents and missions): the dashboard, ``GET /``, and the two-step changes --
a confirmation page (GET, changes nothing) whose form POSTs the change (CSRF-checked,
:mod:`.csrf`). What the pages say is built by :mod:`.dashboard_view`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from . import csrf
from .dashboard_queries import DashboardQueries
from .dashboard_view import (
    Confirm,
    agent_label,
    dashboard_context,
    disconnect_confirm,
    end_confirm,
    mission_log_context,
)
from .state import Binding, Mission
from .ui_pages import PageError, url_path
from .ui_sessions import Session

if TYPE_CHECKING:
    from .ui import PersonServerUI

#: What the pages call a PS configured without a ``name``.
SITE_NAME = "Person server"

Form = Mapping[str, str]


class DashboardPages:
    """The dashboard routes of one :class:`~.ui.PersonServerUI` (its sessions and pages)."""

    def __init__(self, ui: PersonServerUI) -> None:
        self.ui = ui
        self.ps = ui.ps
        self.queries = DashboardQueries(ui.ps.db)

    def signin_first(self, request: Request) -> Response:
        dashboard = url_path(request, "dashboard")
        return self.ui.pages.redirect(f"{url_path(request, 'signin_form')}?next={dashboard}")

    async def dashboard(self, request: Request) -> Response:
        session = await self.ui.session(request)
        if session is None or session.account is None:
            return self.signin_first(request)
        context = await dashboard_context(
            self.ps,
            self.queries,
            session.account,
            request.query_params,
            url_path(request, "dashboard"),
            float(self.ps.clock()),
        )
        return self.ui.pages.page(
            request, "dashboard.html", title="Your dashboard", session=session, **context
        )

    async def mission_page(self, request: Request) -> Response:
        """``GET /dashboard/missions/{s256}``: one of the person's missions with its whole log
        (§Mission Log), a page at a time; the same 404 for anyone else's and for none."""
        session = await self.ui.session(request)
        if session is None or session.account is None:
            return self.signin_first(request)
        mission = await self._own_mission(session, request.path_params)
        context = await mission_log_context(
            self.ps,
            self.queries,
            mission,
            request.query_params,
            url_path(request, "mission_log", s256=mission.s256),
            float(self.ps.clock()),
        )
        return self.ui.pages.page(
            request,
            "mission.html",
            title="What happened in this mission",
            session=session,
            **context,
        )

    async def _own_binding(self, session: Session, form: Form) -> Binding:
        binding = await self.ps.run(
            self.ps.state.binding, form.get("agent_iss", ""), form.get("agent_id", "")
        )
        if binding is None or binding.account != session.account:
            raise PageError(404, "Not found", "No such agent.", code="not_found", session=session)
        return binding

    async def _own_mission(self, session: Session, form: Form) -> Mission:
        mission = await self.ps.mission(form.get("s256", "")[:128])
        if mission is None or mission.account != session.account:
            raise PageError(404, "Not found", "No such mission.", code="not_found", session=session)
        return mission

    async def _confirm(
        self, request: Request, action: str, ask: Callable[[Session, Form], Awaitable[Confirm]]
    ) -> Response:
        """Step one of a change on the dashboard: say what will happen and ask. Only the
        POST of the form on this page (to ``action``, CSRF-protected) changes anything."""
        session = await self.ui.session(request)
        if session is None or session.account is None:
            return self.signin_first(request)
        confirm = await ask(session, request.query_params)
        return self.ui.pages.page(
            request,
            "confirm.html",
            title=confirm.title,
            session=session,
            action=action,
            confirm=confirm,
        )

    async def revoke_page(self, request: Request) -> Response:
        async def ask(session: Session, query: Form) -> Confirm:
            binding = await self._own_binding(session, query)
            name = await agent_label(self.ps, binding.agent_iss, binding.agent_id)
            return disconnect_confirm(binding, name)

        return await self._confirm(request, "unbind", ask)

    async def end_page(self, request: Request) -> Response:
        async def ask(session: Session, query: Form) -> Confirm:
            return end_confirm(await self._own_mission(session, query))

        return await self._confirm(request, "terminate", ask)

    async def unbind(self, request: Request) -> Response:
        session, form = await csrf.checked_post(request, self.ui.session)
        if session.account is None:
            return self.signin_first(request)
        binding = await self._own_binding(session, form)
        await self.ps.unbind_agent(binding.agent_id, issuer=binding.agent_iss)
        return self.ui.pages.redirect(url_path(request, "dashboard"))

    async def terminate(self, request: Request) -> Response:
        session, form = await csrf.checked_post(request, self.ui.session)
        if session.account is None:
            return self.signin_first(request)
        mission = await self._own_mission(session, form)
        await self.ps.terminate_mission(mission.s256, "revoked")
        return self.ui.pages.redirect(url_path(request, "dashboard"))

    async def home(self, request: Request) -> Response:
        """``GET /``: what this server is and where to go."""
        session = await self.ui.session(request)
        return self.ui.pages.page(request, "home.html", title="Home", session=session)


__all__ = ["SITE_NAME", "DashboardPages"]
