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


class AppServer:
    """`reflex run --env prod` on one port for the whole session, started on demand.

    The scale-out test restarts it with other settings (Redis, two workers) rather than starting a second app:
    every app of this checkout compiles into the one .web directory, and the frontend build names its port,
    so the same port keeps that build valid and the restart short."""

    def __init__(self, llm_url: str):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.llm_url = llm_url
        self.proc: subprocess.Popen | None = None
        self.settings: dict[str, str] | None = None

    def ensure(self, log_name: str = "app-server", **settings: str) -> str:
        """The app's URL, running with these extra environment variables (restarted if it runs with others)."""
        if self.proc is not None and self.proc.poll() is None and self.settings == settings:
            return self.url
        self.stop()
        bin_dir = Path(sys.executable).parent
        env = {
            **os.environ,
            "REFLEX_USE_NPM": "1",
            "RUN_JOBS_IN_APP": "true",
            "OPENAI_API_KEY": "sk-e2e-fake-llm",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "LLM_BASE_URL": f"{self.llm_url}/v1",
            "LLM_MAX_RETRIES": "0",
            **settings,
        }
        log_path = ARTIFACTS / f"{log_name}.log"
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [
                    str(bin_dir / "reflex"),
                    "run",
                    "--env",
                    "prod",
                    "--frontend-port",
                    str(self.port),
                    "--backend-port",
                    str(self.port),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.settings = settings
        deadline = time.monotonic() + 900  # a cold first build installs the frontend packages
        while True:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the app exited with {self.proc.returncode}; see {log_path}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the app did not start; see {log_path}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc)
        self.proc = None


def stop_process_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM a process started with start_new_session=True and everything it started; SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def app_server(llm_server):
    ARTIFACTS.mkdir(exist_ok=True)
    server = AppServer(llm_server[1])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_url(app_server):
    """The app as most tests use it: one backend worker, which also runs the job queue."""
    return app_server.ensure()


def pytest_collection_modifyitems(items):
    # Tests that restart the app with settings of their own (Stripe configured; the scale-out shape) run last,
    # so the others share one start.
    items.sort(
        key=lambda item: (
            (item.get_closest_marker("stripe") is not None) + 2 * (item.get_closest_marker("scale_out") is not None)
        )
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "scale_out: runs the app as several workers (restarts the shared app)")
    config.addinivalue_line("markers", "stripe: runs the app with Stripe configured (restarts the shared app)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package.")
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1366, "height": 860}}


# Reflex's frontend calls window.__reflex_otel.onSocketConnect() (its instrumentation hook) when a page's socket
# connects. Installed before every document loads, the flag below is set on each page load once the app is
# mounted (its handlers attached) and its socket is up: then a click or a keystroke reaches the app. The client
# token in sessionStorage is no such sign: it stays from the tab's first page load on.
_CONNECTED_FLAG = "window.__reflex_otel = {onSocketConnect() { window.__e2eSocketConnected = true; }};"


def throttle(page):
    """E2E_CPU_THROTTLE=N runs the browser's CPU N times slower (Chromium's own emulation), so a test that races
    the page instead of waiting for it fails here rather than once in a while in CI: a flake hunt's setting."""
    if rate := float(os.environ.get("E2E_CPU_THROTTLE") or 0):
        session = page.context.new_cdp_session(page)
        session.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        return session  # (kept by the caller: the setting lasts as long as the session)
    return None


class UI:
    """Small helpers that act as a user would."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base = base_url
        page.set_default_timeout(20_000)
        page.add_init_script(_CONNECTED_FLAG)
        self._throttled = throttle(page)

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.wait_ready()

    def wait_ready(self) -> None:
        """After a page load: wait until this page's app is mounted and connected."""
        self.page.wait_for_function("() => window.__e2eSocketConnected === true")

    def at(self, path: str) -> None:
        self.page.wait_for_url(
            lambda u: u.rstrip("/").endswith(path.rstrip("/")) and "?" not in u.split(self.base, 1)[-1]
        )

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

    def choose(self, testid: str, option: str) -> None:
        """Pick `option` from the select whose trigger has this test id."""
        self.page.click(f"[data-testid={testid}]")
        self.page.get_by_role("option", name=option, exact=True).click()

    def toast(self, text: str) -> None:
        self.page.locator("[data-sonner-toast]", has_text=text).first.wait_for()

    def shot(self, name: str) -> None:
        # From the top: a full-page capture of a scrolled page draws the sticky sidebar where it was scrolled to.
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.evaluate("document.fonts.ready.then(() => true)")
        # Animations (toasts sliding in, dialogs fading) are shown at their end state rather than waited for.
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


@pytest.fixture
def ui(page, app_url):
    return UI(page, app_url)
