"""The course as a student meets it: JupyterLab in a real Chromium, driven by Playwright.

Every numbered notebook is opened in JupyterLab and the test reads what the page shows: every
code cell run, no error, every widget rendered as a widget (not its text fallback), no unexpected
warning. Each notebook executes once per session: the notebooks whose Run panel is driven (02
and 03: a temporary copy with the CI parameters injected) run with *Run All* in the page's own
kernel; the others show the session's papermill run at the same parameters (the `course` fixture,
tests/course_runs.py: outputs and widget state as executed, the copy trusted so that JupyterLab
renders its widgets) instead of running a second time. In 02 and 03 the test then moves a control
by keyboard, picks another batch size, presses the notebook's **Run** button and checks from the
printed ``settings used:`` line that the run used them, and that the live plot was redrawn during
the run. Screenshots land in ``test-artifacts/browser/``.

The browser is Chromium or Chrome found on this machine (``COSTTRAIN_CHROMIUM`` or
``CHROME_PATH``, else ``chromium``, ``chromium-browser``, ``google-chrome`` on PATH); Playwright
never downloads one. Without a browser the test is skipped, except under CI (env ``CI``), where
that is a failure. JupyterLab and the browser are stopped by PID whatever happens.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import nbformat
import psutil
import pytest

from costtrain.course.notebooks import CI_PARAMETERS, find_notebooks, notebook_parameters

# the first test waits for the course's papermill runs (tests/course_runs.py); a Run All may take
# RUN_ALL_SECONDS
pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
NOTEBOOKS = [p.stem for p in find_notebooks(NB_DIR)]
CONTROL_TESTED = ("02_", "03_")  # notebooks whose Run panel is driven: a control moved, Run pressed
LIVE = [n for n in NOTEBOOKS if n.startswith(CONTROL_TESTED)]  # run here with Run All; others shown
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
RUN_ALL_SECONDS = 600     # deadline for one notebook's Run All (CI parameters: well under a minute)
RUN_BUTTON_SECONDS = 300  # deadline for one press of a notebook's Run button
# Warnings a notebook raises on purpose: {notebook: [(warning, announcement)]}. A warning is
# allowed only where the notebook's own text (rendered Markdown) announces it.
OVERSUBSCRIBED = r"(?:User|Costtrain)Warning: \d+ processes(?: \([^)]*\))? x \d+ thread\(s\) = \d+ threads on \d+ core"
ALLOWED_WARNINGS: dict[str, list[tuple[str, str]]] = {
    "02_parameter_server": [(OVERSUBSCRIBED, r"will print the oversubscription warning")],  # 2 workers + the server
    "03_hogwild": [(OVERSUBSCRIBED, r"oversubscription warning")],
    # Hogwild! with more processes than cores; the parameter server's workers + its server
    "04_compare": [(OVERSUBSCRIBED, r"oversubscription warning")],
    "05_beyond_one_machine": [(OVERSUBSCRIBED, r"will print the oversubscription warning")],  # the server
    "06_your_decision": [(OVERSUBSCRIBED, r"oversubscription warning")],  # advise's parameter-server probes
}

STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
TEXT_FALLBACK = re.compile(r"\b\w+\(children=\(|Error displaying widget|"
                           r"Failed to load model class|Loading widget\.\.\.|"
                           r"run the notebook to use its controls")
ERROR = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b.*:", re.M)
WARNING = re.compile(r"^.*\b[A-Z]\w*Warning\b.*$", re.M)
SETTINGS = re.compile(r"settings used: ([^\n]*)")
SPLIT = re.compile(r"(\d+)(?: process\w*)? *[x×] *(\d+)(?: epochs?)?")  # "2 × 1", "2 processes x 1 epoch"


# --- finding the browser; starting and stopping processes -------------------------------------

def find_browser() -> str | None:
    """The Chromium/Chrome executable to drive: env COSTTRAIN_CHROMIUM or CHROME_PATH, else PATH."""
    for var in ("COSTTRAIN_CHROMIUM", "CHROME_PATH"):
        if os.environ.get(var):
            found = shutil.which(os.environ[var])
            if not found:
                pytest.fail(f"{var}={os.environ[var]!r} is not an executable browser")
            return found
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_tree(pid: int, timeout: float = 10.0) -> None:
    """Stop `pid`, its process group and every descendant (kernels, training workers): TERM, then KILL."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(pid, sig)  # the group started with start_new_session
        except (ProcessLookupError, PermissionError):
            pass
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        if not alive:
            return
        procs = alive


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def ci_copy(dest: Path) -> Path:
    """A copy of the notebooks folder, outputs cleared, CI parameters injected (not run)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    # without the paired jupytext sources (NN_name.py): a copy's .ipynb is newer than its pair
    def skipped(folder: str, names: list[str]) -> set[str]:
        paired = {n for n in names if n.endswith(".py") and f"{n[:-3]}.ipynb" in names}
        return paired | {n for n in names if n in ("out", ".ipynb_checkpoints")}

    shutil.copytree(NB_DIR, dest, ignore=skipped)
    for name in NOTEBOOKS:
        path = dest / f"{name}.ipynb"
        declared = notebook_parameters(path)
        params = {k: v for k, v in CI_PARAMETERS.items() if k in declared}
        nb = parameterize_notebook(load_notebook_node(str(path)), params, report_mode=False)
        for cell in nb.cells:  # as if never run: Run All must number every cell itself
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, path)
    return dest


def lab_settings(folder: Path) -> Path:
    """A fresh JupyterLab settings folder: no news or update checks popping over the page."""
    f = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return folder


class Lab:
    """A JupyterLab server on 127.0.0.1 (random port and token) serving `root`."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.data = tmp / "data"
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ,
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
               "JUPYTERLAB_SETTINGS_DIR": str(lab_settings(tmp / "settings")),
               "JUPYTER_CONFIG_DIR": str(tmp / "config"),
               "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTER_DATA_DIR": str(tmp / "data"),  # its own trust database: see trust()
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: the notebook's model
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = tmp / "jupyterlab.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        atexit.register(self.stop)  # also on Ctrl-C, where pytest skips fixture teardown

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.tail()}")

    def trust(self, notebook: Path) -> None:
        """Sign `notebook` in this server's trust database: JupyterLab renders the outputs of a
        notebook it did not run itself (widgets, HTML) only when it is trusted."""
        from nbformat.sign import NotebookNotary
        NotebookNotary(data_dir=str(self.data)).sign(nbformat.read(notebook, as_version=4))

    def shutdown_kernel(self, notebook: str) -> None:
        """End the session (and kernel) of `notebook` only: other pages keep theirs."""
        for s in self.api("/api/sessions"):
            if s.get("path") == notebook:
                self.api(f"/api/sessions/{s['id']}", method="DELETE")

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_tree(self.proc.pid)
        self.proc.wait()


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_browser()
    if path is None:
        msg = ("no Chromium/Chrome found (set COSTTRAIN_CHROMIUM or CHROME_PATH, or install "
               "Debian's chromium)")
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI must run the browser test")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    server = Lab(ci_copy(tmp / "notebooks"), tmp)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Playwright driving the found Chromium; closed, and its processes killed by PID, at the end."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright not installed")
    pw = sync_api.sync_playwright().start()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    pids: list[int] = []
    try:
        b = pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"], headless=True)
        new = {p.pid: p for p in psutil.Process().children(recursive=True) if p.pid not in before}
        pids = [pid for pid, p in new.items() if p.ppid() not in new]  # the browser's top process
        yield b
    finally:
        try:
            pw.stop()  # closes the browser if it still answers
        finally:
            for pid in pids:
                stop_tree(pid, timeout=5)


@pytest.fixture(scope="module")
def opened(lab, browser) -> Iterator[dict]:
    """Pages of notebooks that have run (kept open for the Run-button tests); closed at the end."""
    pages: dict = {}
    yield pages
    for page in pages.values():
        page.close()


# --- driving JupyterLab --------------------------------------------------------------------------

def wait_for_kernel_idle(page, timeout: float) -> None:
    """Toolbar says idle and the status bar shows a kernel that is idle."""
    try:
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status=idle]",
                               timeout=timeout * 1000)
        page.wait_for_function(
            """() => { const t = document.querySelector('#jp-main-statusbar')?.textContent || '';
                       return /\\|\\s*Idle/.test(t) && !t.includes('No Kernel'); }""",
            timeout=timeout * 1000)
    except Exception as exc:  # a Playwright TimeoutError: say what the page shows instead
        status = page.locator("#jp-main-statusbar").text_content(timeout=5000)
        dialogs = page.locator(".jp-Dialog").all_text_contents()
        raise AssertionError(f"no idle kernel within {timeout:.0f} s; status bar: {status!r}; "
                             f"dialogs: {[d[:500] for d in dialogs]}") from exc


def prompts(page) -> list[str]:
    """Every code cell's input prompt, e.g. ``[3]:``, ``[*]:`` or ``[ ]:`` (textContent: off-screen too)."""
    return page.eval_on_selector_all(".jp-Notebook .jp-CodeCell .jp-InputPrompt",
                                     "els => els.map(e => e.textContent.trim())")


def start_run_all(page) -> None:
    """Press Run All in the Run menu (returns at once); :func:`run_all` waits for the end."""
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    page.run_all_started = time.monotonic()


def run_all(page, timeout: float) -> float:
    """Run All (unless started already); wait until no cell is running or queued and the kernel is idle.

    After an error JupyterLab leaves the cells below it unrun: :func:`problems` reports them."""
    if getattr(page, "run_all_started", None) is None:
        start_run_all(page)
    t0 = page.run_all_started
    prompts_js = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]"
    page.wait_for_function(f"() => {prompts_js}.some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                           timeout=60_000)
    try:
        page.wait_for_function(f"() => !{prompts_js}.some(p => p.textContent.includes('*'))",
                               timeout=timeout * 1000, polling=500)
    except Exception as exc:  # a Playwright TimeoutError: say where the notebook stands
        ps = prompts(page)
        busy = [i for i, p in enumerate(ps) if "*" in p]
        raise AssertionError(f"Run All did not finish within {timeout:.0f} s: code cells still "
                             f"running or queued: {busy} of {len(ps)} (prompts {ps}); last "
                             f"stderr: {outputs(page, STDERR)[-2:]}") from exc
    wait_for_kernel_idle(page, 60)
    return time.monotonic() - t0


def open_notebook(browser, lab: Lab, name: str):
    """A new page that starts loading JupyterLab on `name` (returns before it has loaded)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    # a workspace of its own: the default one would reopen (and restart) earlier notebooks
    page.goto(f"{lab.url}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={lab.token}",
              wait_until="commit")
    return page


def wait_until_open(page) -> None:
    """The notebook is shown and its kernel is idle."""
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    wait_for_kernel_idle(page, 90)


def outputs(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")


def screenshot(page, name: str) -> Path:
    """The whole notebook in one image: the viewport grown to the notebook's height, scrolled to the top."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = dict(page.viewport_size)
    scroller = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer").first
    try:
        for _ in range(3):  # off-screen cells have estimated heights until they are shown
            extra = scroller.evaluate("e => e.scrollHeight - e.clientHeight")
            if extra <= 2:
                break
            page.set_viewport_size({"width": size["width"],
                                    "height": min(page.viewport_size["height"] + extra, 32000)})
            page.wait_for_timeout(300)
        scroller.evaluate("e => { e.scrollTop = 0; }")
        bottom = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                               "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')]"
                               ".map(c => c.getBoundingClientRect().bottom))")
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(bottom) + 60)})
        page.wait_for_timeout(300)
        path = ARTIFACTS / f"{name}.jpg"  # JPEG: a tall notebook encodes in a fraction of PNG's time
        page.screenshot(path=path, full_page=True, type="jpeg", quality=70)
    finally:
        page.set_viewport_size(size)
    return path


WARNED = """() => {
    // each stderr output, with the text of every Markdown cell or output above it
    const md = [...document.querySelectorAll('.jp-RenderedMarkdown')];
    return [...document.querySelectorAll('%s')].map(e => [e.textContent,
        md.filter(m => m.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)
          .map(m => m.textContent).join('\\n')]);
}""" % STDERR

WIDGETS = """() => {
    // outputs whose MIME bundle is a widget view, and whether each shows as one (not as text)
    const panel = window.jupyterapp.shell.currentWidget;
    const found = [];
    let total = 0;
    for (const cell of panel.content.widgets) {
        if (cell.model.type !== 'code') continue;
        const outs = cell.model.outputs, children = cell.outputArea.widgets;
        for (let j = 0; j < outs.length; j++) {
            const data = outs.get(j).data || {};
            if (!data['application/vnd.jupyter.widget-view+json']) continue;
            total += 1;
            const node = children[j] && children[j].node.querySelector('.jp-OutputArea-output');
            const hidden = node && node.classList.contains('lm-mod-hidden');  // a closed widget
            if (!hidden && !(node && node.querySelector('.jupyter-widgets')))
                found.push((node ? node.textContent : '(no output node)').slice(0, 200));
        }
    }
    return {total, found};
}"""


def problems(page, name: str) -> list[str]:
    """What a student should not see: errors, widgets shown as text, unexpected warnings."""
    unrun = [i for i, p in enumerate(prompts(page)) if not re.fullmatch(r"\[\d+\]:", p)]
    found = [f"code cells not run: {unrun} (Run All stops at an error)"] if unrun else []
    stderr = outputs(page, STDERR)
    found += [f"error output: {t[:600]}" for t in stderr if ERROR.search(t)]
    for t, said in page.evaluate(WARNED):
        allowed = [re.compile(w) for w, a in ALLOWED_WARNINGS.get(name, []) if re.search(a, said)]
        for line in WARNING.findall(t):
            if not any(a.search(line) for a in allowed):
                found.append(f"unexpected warning: {line.strip()[:300]}")
    for t in outputs(page, ".jp-OutputArea-output"):
        m = TEXT_FALLBACK.search(t)
        if m:
            found.append(f"widget shown as text ({m[0]!r}): {t[:200]}")
    widgets = page.evaluate(WIDGETS)
    found += [f"widget output not rendered as a widget: {t!r}" for t in widgets["found"]]
    if not widgets["total"]:
        found.append("no widget at all in the outputs")
    # generated text (the decision card, claims, sentences with prices) must read as written:
    # a $ pair would be typeset as LaTeX, running the words together in italics
    math = outputs(page, ".jp-OutputArea-output .MathJax, .jp-OutputArea-output mjx-container")
    found += [f"an output rendered as math (an unescaped $ pair?): {t[:200]!r}" for t in math]
    return found


def notebook_page(name: str, browser, lab: Lab, opened: dict):
    """A driven notebook's page after Run All (run now unless an earlier test did).

    Two notebooks run at a time: before waiting for this one, the next driven one is opened in a
    page of its own and its Run All started (the suite is mostly process start-up and page loads,
    which leave a core idle). Each has its own kernel and page; only the cores are shared.
    """
    if name not in opened:
        page = opened.pop(("started", name), None)
        if page is None:
            page = open_notebook(browser, lab, name)
            wait_until_open(page)
            start_run_all(page)
        opened[name] = page
        later = LIVE[LIVE.index(name) + 1:]
        if later and later[0] not in opened and ("started", later[0]) not in opened:
            ahead = open_notebook(browser, lab, later[0])
            wait_until_open(ahead)
            start_run_all(ahead)
            opened["started", later[0]] = ahead
        page.run_all_seconds = run_all(page, RUN_ALL_SECONDS)
    return opened[name]


def shown_page(name: str, course, browser, lab: Lab, opened: dict):
    """The page of the session's papermill run of `name` (CI parameters), opened as run: its
    executed copy replaces the unrun one in the server's folder, trusted; nothing runs again."""
    run = course.run(name, "a")
    assert run.ok, run.error  # the run failed before JupyterLab could show it: its cell named
    shutil.copyfile(run.output, lab.root / f"{name}.ipynb")
    lab.trust(lab.root / f"{name}.ipynb")
    page = open_notebook(browser, lab, name)
    wait_until_open(page)
    wait_for_saved_widgets(page)
    page.run_all_seconds = run.seconds
    opened[name] = page
    return page


def wait_for_saved_widgets(page, timeout: float = 60.0, reloads: int = 2) -> None:
    """Until every widget output is drawn from the notebook's saved widget state (or `timeout`).

    JupyterLab restores the saved state after the page opens. When the kernel's connection comes
    up in the middle of that restore (a race in jupyterlab_widgets, seen under load), outputs
    drawn in between stay "Error displaying widget: model not found" although the state holds
    their models: then the notebook is reloaded from disk (its outputs drawn again, the models
    now restored), at most `reloads` times. A model the state lacks stays missing: problems()
    reports it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = page.evaluate(WIDGETS)["found"]
        if any("Loading widget" in f for f in found):
            page.wait_for_timeout(250)
            continue
        if reloads and any("model not found" in f for f in found):
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:reload')")
            page.wait_for_timeout(500)
            reloads -= 1
            continue
        return


def close(name: str, lab: Lab, opened: dict) -> None:
    page = opened.pop(name, None)
    if page is not None:
        page.close()
    lab.shutdown_kernel(f"{name}.ipynb")


# --- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_the_browser(name, course, browser, lab, opened):
    if name in LIVE:
        page = notebook_page(name, browser, lab, opened)
        how = f"Run All took {page.run_all_seconds:.1f} s"
    else:
        page = shown_page(name, course, browser, lab, opened)
        how = f"shown as papermill ran it ({page.run_all_seconds:.1f} s)"
    shot = screenshot(page, name)
    print(f"{name}: {how}; screenshot {shot.relative_to(ROOT)}")
    found = problems(page, name)
    if not name.startswith(CONTROL_TESTED):
        close(name, lab, opened)
    assert not found, f"{name} in JupyterLab:\n" + "\n".join(found)


def _run_panel(page):
    """The output holding the notebook's Run button next to a slider and a batch-size drop-down."""
    panel = page.locator(".jp-OutputArea-output", has=page.locator("button.costtrain-run"))
    panel = panel.filter(has=page.locator(".widget-hslider")).filter(
        has=page.locator(".widget-dropdown", has_text="batch size"))
    assert panel.count(), "no Run button (.costtrain-run) with a slider and a batch size drop-down"
    return panel.last  # the innermost such output


def _move_slider(area) -> dict[str, str]:
    """Move the first slider one step by keyboard; the settings its new readout stands for."""
    slider = area.locator(".widget-hslider").first
    readout = slider.locator(".widget-readout")
    before = readout.text_content()
    slider.locator(".noUi-handle").first.focus()
    slider.page.keyboard.press("ArrowRight")
    if readout.text_content() == before:  # already at the right end
        slider.page.keyboard.press("ArrowLeft")
    after = readout.text_content()
    assert after != before, f"the slider did not move by keyboard (readout {before!r})"
    m = SPLIT.fullmatch(after.strip())
    if m:  # the split slider: processes x epochs per process
        return {"processes": m[1], "epochs_per_process": m[2]}
    label = slider.locator(".widget-label").first.text_content().strip().replace(" ", "_")
    return {label: after.strip()}


def _pick_batch_size(area) -> dict[str, str]:
    """Choose the next batch size in the dropdown (the previous one if it is the last)."""
    select = area.locator(".widget-dropdown", has_text="batch size").locator("select")
    options = select.locator("option").all_text_contents()
    current = select.evaluate("s => s.options[s.selectedIndex].text")
    i = options.index(current)
    choice = options[i + 1] if i + 1 < len(options) else options[i - 1]
    select.select_option(label=choice)
    return {"batch_size": choice}


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n.startswith(CONTROL_TESTED)])
def test_a_changed_control_is_used_and_the_plot_is_live(name, browser, lab, opened):
    page = notebook_page(name, browser, lab, opened)
    try:
        if "run_panel(" not in (lab.root / f"{name}.ipynb").read_text():
            pytest.skip(f"{name} has no Run panel (costtrain.course.widgets.run_panel) yet")
        area = _run_panel(page)
        wanted = {**_move_slider(area), **_pick_batch_size(area)}
        want = [f"{k}={v}" for k, v in wanted.items()]
        plot = area.locator("img.costtrain-live-plot")
        plot.evaluate("""img => {  // record every image the live plot shows
            window.__plots = [img.src];
            window.__plotTimer = setInterval(() => {
                if (window.__plots[window.__plots.length - 1] !== img.src) window.__plots.push(img.src);
            }, 50);
        }""")
        button = area.locator("button.costtrain-run")
        button.click()
        t0 = time.monotonic()
        text = ""
        while time.monotonic() - t0 < RUN_BUTTON_SECONDS:  # the panel's output, cleared by the click
            text = area.text_content()
            if "Traceback" in text or ("settings used:" in text and button.is_enabled()):
                break
            page.wait_for_timeout(200)
        plots = page.evaluate("() => { clearInterval(window.__plotTimer); return window.__plots.length - 1; }")
        seconds = time.monotonic() - t0
        used = SETTINGS.findall(text)
        assert used, (f"{name}: no 'settings used:' line within {seconds:.0f} s of pressing Run; "
                      f"the panel shows: {text[-1500:]}")
        got = re.split(r",\s*", used[-1].strip())
        assert all(w in got for w in want), (f"{name}: chose {', '.join(want)} and pressed Run, "
                                            f"but the run used: {used[-1]}")
        print(f"{name}: Run took {seconds:.1f} s with {', '.join(want)}; "
              f"live plot redrawn {plots} time(s)")
        wait_for_kernel_idle(page, 60)
        screenshot(page, f"{name}_after_run")
        found = problems(page, name)
        assert not found, f"{name} after Run:\n" + "\n".join(found)
        assert plots >= 2, f"{name}: the live plot changed {plots} time(s) during the run, expected >= 2"
    finally:
        close(name, lab, opened)
