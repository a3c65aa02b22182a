"""Helpers for the notebook tests: the code of a cell in which an agent with NotebookPrompts
fetches a resource, and a real ipykernel driven over the Jupyter protocol as a frontend
drives it (jupyter_client): cells executed, the widgets' state followed on IOPub, widget
events sent as ``comm_msg`` on the shell channel -- on a kernel subshell, as JupyterLab
does, or on the main shell, as nbclient and the classic Notebook do -- and a real JupyterLab
server on loopback (:class:`JupyterLab`) with the person's side of its widgets in Chromium
(:func:`open_the_link`, :func:`approve`).
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from jupyter_client.manager import start_new_kernel

import support.ui as UI

TIMEOUT = 30_000  # ms, for each browser wait
#: What the notebooks read to decide that no person is attached (and approve through the
#: PS API): never in the environment of a JupyterLab a person (the test) sits at.
UNATTENDED_SWITCHES = ("CI", "AAUTH_NOTEBOOK_UNATTENDED")

CLIENTS = {
    # awaits auth.async_client() in the cell
    "async": (
        "async with auth.async_client(transport=AsyncMappedTransport(MAPPING, strict=True))"
        " as client:\n"
        "    response = await client.get(URL)\n"
    ),
    # blocks the cell in auth.client()
    "sync": (
        "with auth.client(transport=MappedTransport(MAPPING, strict=True)) as client:\n"
        "    response = client.get(URL)\n"
    ),
    # the remedy without subshells: the blocking call in a worker thread, awaited
    "thread": (
        "with auth.client(transport=MappedTransport(MAPPING, strict=True)) as client:\n"
        "    response = await asyncio.to_thread(client.get, URL)\n"
    ),
}


def agent_cell(
    *, key: Mapping[str, Any], token: str, mapping: Mapping[str, str], url: str, client: str
) -> str:
    """A cell: an agent (``key``, agent ``token``) asks its person through NotebookPrompts
    while it fetches ``url`` (its identifiers' connections mapped by ``mapping``), then
    prints ``RESULT <status> <body>``, or ``CANCELLED`` when the request was withdrawn.
    ``client`` is a key of :data:`CLIENTS`."""
    return (
        "import asyncio\n"
        "from aauth_agents.agent import AAuth, AgentIdentity, RequestCancelledError\n"
        "from aauth_agents.keys import PrivateKey\n"
        "from aauth_agents.prompts import NotebookPrompts\n"
        "from aauth_agents.transport import AsyncMappedTransport, MappedTransport\n"
        f"MAPPING, URL = {dict(mapping)!r}, {url!r}\n"
        f"identity = AgentIdentity(PrivateKey.from_jwk({dict(key)!r}), {token!r})\n"
        "auth = AAuth(identity, prompts=NotebookPrompts(), justification='Sum up my notes')\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in CLIENTS[client].splitlines())
        + "    print('RESULT', response.status_code, response.text)\n"
        "except RequestCancelledError:\n"
        "    print('CANCELLED')\n"
    )


class Kernel:
    """A fresh ipykernel (``python3``: this interpreter) and a client that plays the
    frontend. ``widgets`` maps comm ids to widget state as the frontend knows it."""

    def __init__(self, startup_timeout: float = 60) -> None:
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", startup_timeout=startup_timeout
        )
        self.widgets: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        info = self.client.kernel_info(reply=True, timeout=30)
        self.features: list[str] = info["content"].get("supported_features", [])

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    @property
    def has_subshells(self) -> bool:
        return "kernel subshells" in self.features

    def execute(self, code: str) -> str:
        return str(self.client.execute(code))

    def wait(self, check: Callable[[], bool], what: str, timeout: float = 30) -> None:
        """Read IOPub until ``check()``; fail saying ``what`` did not happen in time."""
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; outputs: {self.all_text()}")
            try:
                message = self.client.get_iopub_msg(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self._record(message)

    def _record(self, message: dict[str, Any]) -> None:
        kind, content = message["msg_type"], message["content"]
        parent = message["parent_header"].get("msg_id", "")
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.widgets[content["comm_id"]] = dict(content["data"]["state"])
        elif kind == "comm_msg" and content["comm_id"] in self.widgets:
            data = content["data"]
            if data.get("method") in ("update", "echo_update"):
                self.widgets[content["comm_id"]].update(data["state"])
        elif kind in ("stream", "display_data", "error"):
            self.outputs[parent].append(message)

    def finished(self, msg_id: str, timeout: float = 60) -> str:
        """Wait for the cell's ``execute_reply``, then for its output; its stdout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"the cell did not finish in time; outputs: {self.all_text()}"
            try:
                reply = self.client.get_shell_msg(timeout=left)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "ok", reply["content"]
        self.wait(
            lambda: "RESULT" in self.text(msg_id) or "CANCELLED" in self.text(msg_id),
            "the cell's output",
            timeout=10,
        )
        return self.text(msg_id)

    def text(self, msg_id: str) -> str:
        return "".join(m["content"].get("text", "") for m in self.outputs[msg_id])

    def all_text(self) -> str:
        return " | ".join(self.text(msg_id) for msg_id in self.outputs)

    def widget(self, model: str, **state: Any) -> str | None:
        """The comm id of a widget of ``model`` (``"Button"``) whose state has ``state``."""
        for comm_id, known in self.widgets.items():
            if known.get("_model_name") == f"{model}Model" and all(
                known.get(name) == value for name, value in state.items()
            ):
                return comm_id
        return None

    def shown(self, kind: str) -> int:
        """How many prompts of ``kind`` (``"interaction"``) were displayed, whole: their box
        is opened last, after every widget in it."""
        return sum(
            f"aauth-{kind}" in state.get("_dom_classes", ()) for state in self.widgets.values()
        )

    def status(self) -> str | None:
        """The ``data-status`` of the newest prompt's status line."""
        found = [
            m.group(1)
            for state in self.widgets.values()
            if (
                m := re.search(
                    r'class="aauth-status" data-status="([a-z]+)"', str(state.get("value", ""))
                )
            )
        ]
        return found[-1] if found else None

    def create_subshell(self) -> str:
        request = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(request)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = self.client.control_channel.get_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                return str(reply["content"]["subshell_id"])
        raise AssertionError("no create_subshell_reply")

    def send(self, comm_id: str, data: dict[str, Any], subshell_id: str | None) -> None:
        """A widget event from the frontend: ``comm_msg`` on the shell channel, on
        ``subshell_id`` (``None``: the main shell)."""
        message = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell_id is not None:
            message["header"]["subshell_id"] = subshell_id
        self.client.shell_channel.send(message)

    def click(self, comm_id: str, subshell_id: str | None) -> None:
        """A Button click, as @jupyter-widgets/controls sends it."""
        self.send(comm_id, {"method": "custom", "content": {"event": "click"}}, subshell_id)

    def type(self, comm_id: str, value: str, subshell_id: str | None) -> None:
        """A text widget's new value, as the widget manager syncs it."""
        self.send(
            comm_id,
            {"method": "update", "state": {"value": value}, "buffer_paths": []},
            subshell_id,
        )


class JupyterLab:
    """``python -m jupyterlab`` on 127.0.0.1 serving ``root``, with its own settings,
    workspaces and runtime directories under ``home``; always stopped by :meth:`stop`. A
    person sits at it: its kernels never see :data:`UNATTENDED_SWITCHES`."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(16)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "jupyterlab.log"
        settings = home / "s" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)  # no news toast over the notebook
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = {k: v for k, v in os.environ.items() if k not in UNATTENDED_SWITCHES}
        env.update(
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTER_NO_CONFIG="1",
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyterlab",
                    "--no-browser",
                    f"--IdentityProvider.token={self.token}",
                    "--ServerApp.ip=127.0.0.1",
                    f"--port={self.port}",
                    "--ServerApp.port_retries=0",
                    f"--ServerApp.root_dir={root}",
                    f"--LabApp.user_settings_dir={home / 's'}",
                    f"--LabApp.workspaces_dir={home / 'w'}",
                    # nothing but loopback: no news, update checks or extension index
                    "--LabApp.news_url=",
                    "--LabApp.extension_manager=readonly",
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                    *(["--allow-root"] if os.geteuid() == 0 else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"JupyterLab exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                url = f"{self.url}/api/status"
                if httpx.get(url, params={"token": self.token}, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"JupyterLab did not answer in {timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Shut the server down (it stops its kernels); kill what is left of it."""
        if self.process.poll() is None:
            try:
                httpx.post(f"{self.url}/api/shutdown", params={"token": self.token}, timeout=5)
                self.process.wait(timeout=15)
            except (httpx.HTTPError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        try:  # a kernel the server left behind: the server's process group, started here
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def screenshot(element: Any, name: str, folder: Path | None = None) -> None:
    """A screenshot of ``element`` (a Playwright page or locator) as ``folder/name``;
    without ``folder``, in ``$AAUTH_ARTIFACTS`` when it is set (else none)."""
    if folder is None:
        found = os.environ.get("AAUTH_ARTIFACTS")
        if not found:
            return
        folder = Path(found)
    folder.mkdir(parents=True, exist_ok=True)
    await element.screenshot(path=str(folder / name))


async def open_the_link(
    context: Any,
    widget: Any,
    name: str,
    *,
    justification: str = "Sum up my notes",
    password: str = UI.PASSWORD,
    folder: Path | None = None,
) -> Any:
    """The person opens the widget's link (a new tab) and signs in as alice (with
    ``password``) if asked: the consent page, on the link's own site."""
    link = widget.locator("a.aauth-link")
    await link.wait_for(timeout=TIMEOUT)
    assert await link.get_attribute("target") == "_blank"
    assert await link.get_attribute("rel") == "noopener noreferrer"
    assert await widget.locator(".aauth-qr svg").count() == 1
    assert await widget.locator(".aauth-code").inner_text()
    assert justification in await widget.locator(".aauth-justification").inner_text()
    site = httpx.URL(str(await link.get_attribute("href")))
    await screenshot(widget, f"notebook-{name}-waiting.png", folder)
    async with context.expect_page(timeout=TIMEOUT) as opened:
        await link.click()
    consent = await opened.value
    signin, review = consent.locator("input[name=username]"), consent.locator("#approve")
    await signin.or_(review).first.wait_for(timeout=TIMEOUT)
    if await signin.count():  # signed out: the request is shown at the link itself
        await UI.sign_in(consent, password=password)
    await review.wait_for(timeout=TIMEOUT)
    origin = f"{site.scheme}://{site.netloc.decode()}"
    assert consent.url.startswith(f"{origin}/consent/"), consent.url
    return consent


async def approve(consent: Any, widget: Any, name: str, folder: Path | None = None) -> None:
    """The person approves; the widget says so and can no longer be used."""
    await consent.click("#approve", timeout=TIMEOUT)
    await consent.locator("#message").wait_for(timeout=TIMEOUT)
    done = await consent.locator("#message").inner_text()  # "complete": the agent polled first
    assert "You approved" in done or "This request is complete" in done, done
    approved = widget.locator(".aauth-status[data-status='approved']")
    await approved.wait_for(timeout=TIMEOUT)
    assert "Approved" in await approved.inner_text()
    assert await widget.locator("a.aauth-link").count() == 0  # the link is inert now
    assert await widget.locator("button", has_text="Cancel request").is_disabled()
    await screenshot(widget, f"notebook-{name}-approved.png", folder)
    await consent.close()
