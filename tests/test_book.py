"""The built book in a real browser: headless Chromium (Debian's ``chromium``, installed by
``.ci/install_chromium.sh``) loads every page offline over the DevTools protocol; figures must
render, live widgets must draw, no JavaScript error may occur and nothing may leave file://.

The book is built by ``book/build.py`` (all chapters executed at smoke), or reused when
``book/_build/html/a2dkit_build.json`` says it was built from exactly the current sources.
"""

from __future__ import annotations

import base64
import html
import html.parser
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import websocket

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline, as a reader without network
    "--remote-debugging-port=0",
]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
VIEWS = "'script[type=\"application/vnd.jupyter.widget-view+json\"]'"
# true once every image finished loading and every embedded widget view got drawn
READY_JS = f"""(() => {{
  const views = [...document.querySelectorAll({VIEWS})];
  const drawn = views.filter(s => s.previousElementSibling &&
      s.previousElementSibling.querySelector('.jupyter-widgets, .widget-box, .lm-Widget'));
  const imgs = [...document.images];
  return document.readyState === 'complete' && drawn.length === views.length &&
         imgs.every(i => i.complete);
}})()"""
PAGE_JS = f"""JSON.stringify({{
  images: [...document.images].map(i => ({{
    src: i.src.startsWith('data:') ? i.src.slice(0, 80) : i.src, width: i.naturalWidth}})),
  views: document.querySelectorAll({VIEWS}).length,
  drawn: document.querySelectorAll('.widget-subarea .jupyter-widgets').length,
  viewer: document.querySelectorAll('.a2d-player .a2d-viewer').length,
  scripts: [...document.scripts].map(s => s.src).filter(Boolean),
}})"""


SCROLL_TO_WIDGET_JS = """(() => {
  const imageWidget = [...document.querySelectorAll('.widget-subarea')]
      .find(w => w.querySelector('img'));  // e.g. MaskExplorer, rather than a progress bar
  const el = document.querySelector('.a2d-player') || imageWidget ||
             document.querySelector('.widget-subarea .jupyter-widgets');
  el.scrollIntoView({block: 'center'});
  const r = el.getBoundingClientRect();
  return {top: r.top, left: r.left, width: r.width, height: r.height};
})()"""


def _load_build_module():
    name = "a2dkit_book_build"  # book/build.py is a script, not a package
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "book" / "build.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


book_build = _load_build_module()
CHAPTERS = book_build.toc_entries()


class DevTools:
    """The few Chrome DevTools protocol calls the test needs, over one websocket."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self.last_id = 0

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        self.ws.send(json.dumps({**message, **({"sessionId": session} if session else {})}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") != self.last_id:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            else:
                return reply["result"]

    def navigate(self, session: str, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and return once its load event fired (so no check sees the old page)."""
        start = len(self.events)
        self.call("Page.navigate", session, url=url)
        self.ws.settimeout(timeout)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[start:]):
            self.events.append(json.loads(self.ws.recv()))  # raises on timeout

    def evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, session: str, expression: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(session, expression):
                return True
            time.sleep(0.2)
        return False


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The HTML folder of a book built from the current sources (built here when stale)."""
    html = book_build.BOOK / "_build" / "html"
    if not book_build.is_fresh(html, os.environ.get("A2DKIT_SCALE", "smoke")):
        book_build.build()  # raises RuntimeError (cell error, warning, missing chapter)
    return html


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    binary = os.environ.get("CHROMIUM") or shutil.which("chromium")
    assert binary, "no chromium on PATH: run `bash .ci/install_chromium.sh` (or set CHROMIUM)"
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
    while not port_file.is_file() or len(port_file.read_text().split()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
        time.sleep(0.1)
    port, path = port_file.read_text().split()[:2]
    tools = DevTools(f"ws://127.0.0.1:{port}{path}")
    target = tools.call("Target.createTarget", url="about:blank")["targetId"]
    session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable", session)
    tools.call("Emulation.setDeviceMetricsOverride", session, **VIEWPORT)
    yield tools, session
    tools.ws.close()
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def pages(book_html, browser):
    """Loads each chapter once: ``{chapter: report}`` with the page facts and what went wrong."""
    tools, session = browser
    cache: dict[str, dict] = {}

    def load(chapter: str) -> dict:
        if chapter not in cache:
            tools.events.clear()
            tools.navigate(session, (book_html / f"{chapter}.html").as_uri())
            ready = tools.wait(session, READY_JS)
            report = json.loads(tools.evaluate(session, PAGE_JS))
            events = tools.events
            report.update(ready=ready, errors=_errors(events), requests=_requests(events))
            cache[chapter] = report
        return cache[chapter]

    return load


def _errors(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error calls and error log entries (e.g. a failed load)."""
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            errors.append(json.dumps(params["args"])[:500])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(json.dumps(params["entry"])[:500])
    return errors


def _requests(events: list[dict]) -> list[str]:
    return [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_loads_offline_without_javascript_errors(pages, chapter):
    report = pages(chapter)
    assert report["ready"], f"{chapter}: images or widgets still loading after 60 s: {report}"
    assert report["errors"] == []
    offsite = [u for u in report["requests"] if u.split(":")[0] not in ("file", "data", "blob")]
    assert offsite == [], "the book must be self-contained (offline readers, CI)"


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c.startswith("notebooks/")])
def test_chapter_figures_rendered(pages, chapter):
    images = pages(chapter)["images"]
    assert images, f"{chapter} shows no figure"
    assert all(image["width"] > 0 for image in images), images


def test_widget_pages_draw_their_saved_widgets_and_others_load_no_widget_code(pages, book_html):
    with_state = [c for c in CHAPTERS if WIDGET_STATE in (book_html / f"{c}.html").read_text()]
    assert with_state, "no chapter saved ipywidgets state (nbclient store_widget_state)"
    for chapter in CHAPTERS:
        report = pages(chapter)
        scripts = [s.split("?")[0] for s in report["scripts"]]  # drop Sphinx's "?v=<hash>"
        loads_manager = any(s.endswith("/_static/jupyter-widgets/embed.js") for s in scripts)
        assert loads_manager == (chapter in with_state), chapter
        if chapter in with_state:  # widget views, or DenoisingViewer players (their state too)
            assert report["views"] + report["viewer"] > 0, report
            assert report["drawn"] >= report["views"], report


def test_widget_chapters_screenshot_and_the_visualizer_is_among_them(pages, browser, book_html):
    with_widgets = [c for c in CHAPTERS if pages(c)["views"] > 0 or pages(c)["viewer"] > 0]
    assert with_widgets
    tools, session = browser
    shots = book_html.parent / "screenshots"  # kept as an artifact: book/_build/screenshots
    shots.mkdir(exist_ok=True)
    for chapter in with_widgets:
        tools.navigate(session, (book_html / f"{chapter}.html").as_uri())
        assert tools.wait(session, READY_JS)
        box = tools.evaluate(session, SCROLL_TO_WIDGET_JS)  # viewer, image widget, any widget
        png = base64.b64decode(tools.call("Page.captureScreenshot", session)["data"])
        (shots / f"{chapter.replace('/', '_')}.png").write_bytes(png)
        assert _png_size(png) == (VIEWPORT["width"], VIEWPORT["height"])
        top, left = max(0, int(box["top"])), max(0, int(box["left"]))
        widget = _decode_png(png)[top : top + int(box["height"]), left : left + int(box["width"])]
        colours = {tuple(p) for p in widget.reshape(-1, widget.shape[-1])}
        assert widget.size and len(colours) > 8, f"{chapter}: the widget area is blank"
    viewers = [c for c in CHAPTERS if pages(c)["viewer"] > 0]
    assert viewers, "no chapter shows a DenoisingViewer player (a2dkit.viz)"


def _decode_png(png: bytes):
    import matplotlib.image

    return (matplotlib.image.imread(io.BytesIO(png)) * 255).astype("uint8")


def test_the_denoising_gif_fallback_is_on_a_page(pages):
    """Besides the JavaScript player, the book carries the trajectory as an animated GIF
    (``viz.animate``) for readers without JavaScript: on a page, with more than one frame."""
    gifs = [
        (chapter, image)
        for chapter in CHAPTERS
        for image in pages(chapter)["images"]
        if image["src"].startswith("file:") and image["src"].split("?")[0].endswith(".gif")
    ]
    assert gifs, "no chapter shows the denoising animation (a2dkit.viz.animate)"
    assert all(image["width"] > 0 for _, image in gifs)
    path = Path(urllib.parse.unquote(urllib.parse.urlparse(gifs[0][1]["src"]).path))
    frames = path.read_bytes().count(b"\x21\xf9\x04")  # one Graphic Control Extension per frame
    assert frames > 1, f"{path} has {frames} frame(s)"


# ------------------------------------------------ the denoising player (no kernel, plain JS)

PLAYER_JS = """((i) => {
  const root = document.querySelectorAll('.a2d-player')[i];
  const q = k => root.querySelector('.a2d-player-' + k);
  return {captions: [...q('view').querySelectorAll('.a2d-caption')].map(c => c.textContent),
          tokens: [...q('view').querySelectorAll('span[class^="a2d-"]')].map(s => s.textContent),
          panels: q('view').querySelectorAll('.a2d-caption').length,
          html: q('view').innerHTML, button: q('play').textContent, rows: q('row').options.length};
})(%d)"""


def _player(tools, session, index: int = 0) -> dict:
    return tools.evaluate(session, PLAYER_JS % index)


def _step(state: dict) -> int:
    """The frame a player shows: DenoisingViewer's "step i/N", SpeculationViewer's "verifier
    forward i/N" (its frame 0 is the prompt: "... verifier forwards follow")."""
    caption = state["captions"][0]
    if "verifier forwards follow" in caption:
        return 0
    found = re.search(r"(?:verifier forward|step) (\d+)/", caption)
    assert found, f"no step in the player's caption {caption!r}"
    return int(found.group(1))


def _press_play_and_check_it_advances(tools, session, index: int = 0) -> dict:
    """Press Play: the shown step must advance and the tokens change; returns the first state."""
    first = _player(tools, session, index)
    assert _step(first) == 0, first["captions"]
    tools.evaluate(session, f"document.querySelectorAll('.a2d-player-play')[{index}].click()")
    moved = (
        f"(() => {{ const s = {PLAYER_JS % index}; return s.captions[0] !== "
        f"{json.dumps(first['captions'][0])}; }})()"
    )
    assert tools.wait(session, moved, timeout=20), "Play did not advance the step"
    assert tools.wait(session, f"{PLAYER_JS % index}.button.includes('Play')", timeout=60)
    last = _player(tools, session, index)  # stopped by itself at the last step
    assert _step(last) > 0 and last["tokens"] != first["tokens"]
    return first


def _normalised(tools, session, markup: str) -> str:
    """``markup`` as the browser serialises it (the same parser the player's innerHTML uses)."""
    js = (
        f"(() => {{ const d = document.createElement('div'); d.innerHTML = {json.dumps(markup)};"
        " return d.innerHTML; })()"
    )
    return tools.evaluate(session, js)


class _WordTokenizer:
    """Decodes id i as WORDS[i]; id 1 is the mask, id 0 the pad (enough for a2dkit.viz)."""

    words = ["[PAD]", "[MASK]", "the", "cat", "sat", "on", "a", "mat", "<b>&"]
    mask_token_id, pad_token_id = 1, 0

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(self.words[i] for i in ids)


def _history(rows: int, width: int, steps: int, seed: int) -> list:
    """Every position committed at a random step in 1..steps-1 (canvas s: committed <= s)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    final = torch.randint(2, 9, (rows, width), generator=gen)
    commit = torch.randint(1, steps, (rows, width), generator=gen)
    return [torch.where(commit <= s, final, 1) for s in range(steps)]


def test_the_player_plays_pauses_seeks_and_switches_rows_in_chromium(browser, tmp_path):
    from a2dkit import viz

    tools, session = browser
    tok = _WordTokenizer()
    single = viz.DenoisingViewer(_history(2, 10, 6, 0), tok, title="one")
    pair = viz.DenoisingViewer.side_by_side(
        {"MDLM": (_history(2, 8, 7, 1), tok), "BD3LM": (_history(2, 8, 4, 2), tok)}
    )
    page = tmp_path / "player.html"
    page.write_text(
        f"<!doctype html><html><body>{single.to_html(interval_ms=150)}"
        f"{pair.to_html(interval_ms=150)}</body></html>",
        encoding="utf-8",
    )
    tools.events.clear()
    tools.navigate(session, page.as_uri())
    for index, viewer in enumerate((single, pair)):
        first = _press_play_and_check_it_advances(tools, session, index)
        assert first["html"] == _normalised(tools, session, viewer.render(0, 0))
        assert first["panels"] == len(viewer.panels) and first["rows"] == 2
        q = f"document.querySelectorAll('.a2d-player')[{index}]"
        seek = (
            f"(() => {{ const r = {q}; const s = r.querySelector('.a2d-player-slider');"
            " s.value = 2; s.dispatchEvent(new Event('input')); })()"
        )
        tools.evaluate(session, seek)
        assert _player(tools, session, index)["html"] == _normalised(
            tools, session, viewer.render(2, 0)
        )
        row = (
            f"(() => {{ const r = {q}.querySelector('.a2d-player-row'); r.value = '1';"
            " r.dispatchEvent(new Event('change')); })()"
        )
        tools.evaluate(session, row)
        assert _player(tools, session, index)["html"] == _normalised(
            tools, session, viewer.render(2, 1)
        )
    # Pause: press Play, then Pause once the step moved; the step must then stay put
    click = "document.querySelectorAll('.a2d-player-play')[0].click()"
    tools.evaluate(
        session,
        "(() => { const s = document.querySelector('.a2d-player-slider');"
        " s.value = 0; s.dispatchEvent(new Event('input')); })()",
    )
    tools.evaluate(session, click)
    assert tools.wait(session, f"{PLAYER_JS % 0}.captions[0].includes('step 1/')", timeout=20)
    tools.evaluate(session, click)
    paused = _player(tools, session)
    time.sleep(0.6)  # four intervals
    assert _player(tools, session) == paused and "Play" in paused["button"]
    assert _errors(tools.events) == []


def test_the_book_players_play_without_a_kernel(pages, browser, book_html):
    """Every player on a book page (DenoisingViewer, SpeculationViewer) plays without a kernel;
    one of them is side by side."""
    tools, session = browser
    players = {c: pages(c)["viewer"] for c in CHAPTERS if pages(c)["viewer"] > 0}
    assert players, "no chapter shows a DenoisingViewer player"
    panels = []
    for chapter in players:
        tools.navigate(session, (book_html / f"{chapter}.html").as_uri())
        count = tools.evaluate(session, "document.querySelectorAll('.a2d-player').length")
        for index in range(count):
            panels.append(_press_play_and_check_it_advances(tools, session, index)["panels"])
    assert max(panels) >= 2, "no side-by-side view among the players"


# ------------------------------------------------ what the pages say (the built HTML)

PROGRESS_OR_WARNING = ("it/s]", "s/it]", "%|", "Warning", "WARNING", "Loading weights", "Map: ")
PROGRESS_WIDGETS = ("FloatProgressModel", "IntProgressModel")  # tqdm.notebook's saved state


class _OutputText(html.parser.HTMLParser):
    """Collects the text inside every ``cell_output`` element and the class of each output."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.text, self.classes, self.code = 0, [], [], None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.depth or "cell_output" in classes:
            self.depth += 1
            self.classes.append(" ".join(classes))
        if tag in ("script", "noscript"):  # the player's frames and fallback: not shown text
            self.code = tag

    def handle_endtag(self, tag):
        self.depth = max(self.depth - 1, 0) if self.depth else 0
        self.code = None if tag == self.code else self.code

    def handle_data(self, data):
        if self.depth and self.code is None:
            self.text.append(data)


def _outputs(page: Path) -> _OutputText:
    parser = _OutputText()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_output_parser_sees_progress_bars_and_stderr():  # the negative control of the next test
    sample = ('<div class="cell_output docutils container"><div class="output stderr">'
              '<pre>Map: 100%|##########| 25/25 [00:00&lt;00:00, 900.1 examples/s]</pre></div>'
              '</div><p>Warning in prose is fine</p>')  # fmt: skip
    parser = _OutputText()
    parser.feed(sample)
    text = "".join(parser.text)
    assert "%|" in text and "Map: " in text and "prose" not in text
    assert any("stderr" in c for c in parser.classes)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_pages_show_no_progress_bars_warnings_or_stderr(book_html, chapter):
    page = book_html / f"{chapter}.html"
    parsed = _outputs(page)
    text = "".join(parsed.text)
    found = [s for s in PROGRESS_OR_WARNING if s in text]
    assert not found, f"{chapter}: output cells show {found}"
    assert not [c for c in parsed.classes if "stderr" in c.split()], f"{chapter}: stderr output"
    source = page.read_text(encoding="utf-8")
    assert not [w for w in PROGRESS_WIDGETS if w in source], f"{chapter}: a progress-bar widget"


def _links(page: Path) -> list[str]:
    return re.findall(r'<a class="reference external" href="([^"]+)"', page.read_text("utf-8"))


def test_results_page_cites_public_sources_by_url(book_html):
    page = book_html / "results.html"
    source, links = page.read_text(encoding="utf-8"), _links(page)
    assert not re.findall(r"\d{3}_[0-9a-f]{16}", source), "internal reference-file names"
    assert "https://github.com/ZHZisZZ/dllm/blob/main/examples/a2d/README.md" in links
    assert any(u.startswith("https://huggingface.co/dllm-collection/") for u in links)
    assert any(u.startswith("https://wandb.ai/asap-zzhou/dllm/reports/") for u in links)
    codes = re.findall(r'<code class="docutils literal notranslate">(.*?)</code>', source, re.S)
    texts = [html.unescape(re.sub("<[^>]+>", "", c)) for c in codes]
    assert texts and max(len(t) for t in texts) < 120, "a run-on code span"
    assert "`" not in re.sub(r"<(pre|script)\b.*?</\1>", "", source, flags=re.S)  # no stray ticks


def test_differences_page_names_tests_that_exist(book_html):
    text = (book_html / "differences.html").read_text(encoding="utf-8")
    named = sorted(set(re.findall(r"tests/((?:\w+/)?test_\w+\.py)::(test_\w+)", text)))
    assert len(named) >= 12, named
    missing = [f"{f}::{t}" for f, t in named
               if f"def {t}(" not in (ROOT / "tests" / f).read_text(encoding="utf-8")]  # fmt: skip
    assert not missing, f"the differences page names tests that do not exist: {missing}"
    assert "schedule=&quot;linear&quot;" in text or 'schedule="linear"' in text
