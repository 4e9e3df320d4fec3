"""Browser tests: the real app (`reflex run --env prod`) on a free port, driven by Playwright with Debian's Chromium.

Run in their own pytest invocation (`-p no:asyncio`): the Playwright plugin and pytest-asyncio do not mix.
Screenshots of every page land in tests/e2e/artifacts/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.server import free_port, serve

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def llm_server():
    """The fake LLM the app under test talks to (started first; tests script it through `fake_llm`)."""
    fake = FakeLLM()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake_llm(llm_server):
    fake, _ = llm_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def app_url(llm_server):
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, REFLEX_USE_NPM="1", RUN_JOBS_IN_APP="true", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               OPENAI_API_KEY="sk-e2e-fake-llm", LLM_BASE_URL=f"{llm_server[1]}/v1", LLM_MAX_RETRIES="0")
    log_path = ARTIFACTS / "app-server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(bin_dir / "reflex"), "run", "--env", "prod", "--frontend-port", str(port), "--backend-port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 900  # a cold first build installs the frontend packages
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with {proc.returncode}; see {log_path}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not start; see {log_path}")
            time.sleep(1)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package.")
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1366, "height": 860}}


class UI:
    """Small helpers that act as a user would."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base = base_url
        page.set_default_timeout(20_000)

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.wait_ready()

    def wait_ready(self) -> None:
        # The websocket is up (and state can change) once Reflex stored its client token.
        self.page.wait_for_function("() => window.sessionStorage.getItem('token')")

    def at(self, path: str) -> None:
        self.page.wait_for_url(lambda u: u.rstrip("/").endswith(path.rstrip("/")) and "?" not in u.split(self.base, 1)[-1])

    def sign_in(self, email: str, password: str) -> None:
        self.open("/sign-in")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("[data-testid=sign-in-submit]")
        self.at("/")
        self.page.get_by_role("heading", name="Home").wait_for()

    def sign_out(self) -> None:
        self.page.click("[data-testid=user-menu]")
        self.page.click("[data-testid=sign-out]")
        self.at("/sign-in")

    def toast(self, text: str) -> None:
        self.page.locator("[data-sonner-toast]", has_text=text).first.wait_for()

    def shot(self, name: str) -> None:
        # From the top: a full-page capture of a scrolled page draws the sticky sidebar where it was scrolled to.
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(400)  # let charts and toasts settle
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def ui(page, app_url):
    return UI(page, app_url)
