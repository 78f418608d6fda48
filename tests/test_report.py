"""``b2p report``: the chapter beside its lore, as one self-contained HTML page, checked in a real
headless Chromium (Debian's ``chromium``, driven by Playwright): every beat and its lore present,
names highlighted with their entry on hover, nothing from the bible, the beats or the model run as
script, no network request, readable at a phone width and a desktop width.

Chapters are written through the real CLI against the scriptable OpenAI-compatible server on
loopback, so the prose can carry hostile markup on purpose.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PWNED = "document.documentElement.dataset.pwned = '1'"
# Markup in the model's prose is debris: the generation guards cut its sentence (the rest is kept), so it
# never reaches the trace; the escape and "& <" stay in the prose for the page to show as text.
HOSTILE_PROSE = (
    f"The Gullwing slides past the <img src=x onerror=\"{PWNED}\"> reef. Mara Quell rows past the "
    "breakwater while Odo Brask watches \x1b]0;retitled\x07 from the pier & counts: 3 < 4. The tide turns."
)
BEATS = [
    "Mara Quell takes the Gullwing out before dawn <script>" + PWNED + "</script>.",
    "She rows past the breakwater and sees a light.",
    "Mara ties up at the pier and hides the oar.",
]
runner = CliRunner()


def _write_bible(root: Path) -> Path:
    bible = root / "tidewater"
    for folder, slug, name, aliases, body in [
        ("characters", "mara", "Mara Quell", ["Mara"], "Mara Quell is a ferrywoman <b>of</b> the \x1b]0;retitled\x07 north shore. She rows at night and trusts nobody."
         " <img src=x onerror=\"" + PWNED + "\"> She keeps a ledger of debts."),
        ("characters", "odo", "Odo Brask", ["Odo"], "Odo Brask is the harbour master. He watches the pier and takes bribes in salt."),
        ("items", "gullwing", "The Gullwing </span></span><script>" + PWNED + "</script>", ["Gullwing"],
         "The Gullwing is Mara's clinker-built rowing boat, tarred black, with one cracked oar."),
        ("places", "pier", "North Pier", ["the pier"], "North Pier is the long stone pier where the ferries tie up."),
    ]:
        (bible / folder).mkdir(parents=True, exist_ok=True)
        alias_list = ", ".join(json.dumps(a) for a in aliases)
        (bible / folder / f"{slug}.md").write_text(f"---\nname: {json.dumps(name)}\naliases: [{alias_list}]\n---\n{body}\n", encoding="utf-8")
    (bible / "bible.yaml").write_text('title: "Tidewater <script>' + PWNED + '</script>"\n', encoding="utf-8")
    return bible


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    _write_bible(root)
    (root / "sheet.txt").write_text("\n".join(BEATS) + "\n", encoding="utf-8")
    # The fault server writes one canned passage for every beat, so every redraft would fail as the first did.
    (root / "b2p.toml").write_text(f'store = "{root / ".b2p"}"\nretries = 0\ntimeout = 20\nredrafts = 0\n', encoding="utf-8")
    return root


def _generate(project: Path, server, out: Path, *extra: str, script: list[str] | None = None, answers: str | None = None) -> object:  # noqa: ANN001
    server.text = HOSTILE_PROSE
    if script:
        server.script(script)
    args = ["generate", str(project / "sheet.txt"), "--bible", str(project / "tidewater"), "--config", str(project / "b2p.toml"),
            "--llm", "openai", "--base-url", server.url, "--words-per-beat", "40", "--no-stream", "-o", str(out), *extra]
    result = runner.invoke(app, args, input=answers)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def _report(project: Path, chapter: Path, *extra: str) -> Path:
    out = chapter.with_suffix(".html")
    result = runner.invoke(app, ["report", str(chapter), "--config", str(project / "b2p.toml"), "-o", str(out), *extra])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("headless Chromium is needed for the report tests: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                                     "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page loaded at one viewport, with every request it tried to make and every script dialog."""

    def __init__(self, browser, html: Path, width: int, height: int = 900) -> None:  # noqa: ANN001
        self.context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=True)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(html.resolve().as_uri(), wait_until="load")
        self.page.wait_for_timeout(200)

    def js(self, expr: str):  # noqa: ANN201
        return self.page.evaluate(expr)

    def close(self) -> None:
        self.context.close()


def _open(browser, html: Path, width: int) -> Page:  # noqa: ANN001
    return Page(browser, html, width)


def test_the_no_network_check_can_see_a_request(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """The detector the other tests rely on: a page that does fetch something is caught."""
    from tests.plugins.servers import free_port

    control = tmp_path / "control.html"
    control.write_text(f'<!doctype html><img src="http://127.0.0.1:{free_port()}/x.png"><p>hi</p>', encoding="utf-8")
    p = _open(browser, control, 800)
    try:
        assert any(u.startswith("http://127.0.0.1") for u in p.requests)
    finally:
        p.close()


def test_report_shows_every_beat_its_lore_and_names_and_runs_nothing(project: Path, fault_server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    chapter = tmp_path / "chapter.md"
    assert _generate(project, fault_server, chapter).exit_code == 0
    html = _report(project, chapter)
    trace = json.loads(chapter.with_name("chapter.trace.json").read_text())
    source = html.read_text(encoding="utf-8")
    assert "<script" not in source.lower().replace("&lt;script", "")  # the page carries no script of its own or anyone's
    assert "\x1b" not in source and "\\x1b]0;retitled\\x07" in source  # the bible's escape is shown, not sent
    assert "retitled" not in json.dumps(trace["beats"][0]["text"])  # and the model's was never saved as prose
    assert "<img" not in trace["beats"][0]["text"] and "3 < 4" in trace["beats"][0]["text"]  # its markup was cut, not its prose
    assert "3 &lt; 4" in source  # shown as text

    for width, name in ((390, "phone"), (1280, "desktop")):
        p = _open(browser, html, width)
        try:
            p.page.screenshot(path=str(tmp_path / f"report-{name}.png"), full_page=True)
            assert p.requests == [html.resolve().as_uri()], p.requests  # the page itself, nothing else
            assert p.dialogs == []
            assert p.js("document.documentElement.dataset.pwned") is None
            assert p.js("document.querySelectorAll('script').length") == 0
            assert p.js("document.querySelectorAll('img').length") == 0  # the <img onerror> in lore and prose is text
            # Every beat, in order, with its beat line shown literally and its lore table.
            assert p.js("[...document.querySelectorAll('section.beat')].map(s => +s.dataset.beat)") == [1, 2, 3]
            first = p.js("document.querySelector('#beat-1 .beat-line').textContent")
            assert first == BEATS[0]
            for b in trace["beats"]:
                names = p.js(f"[...document.querySelectorAll('#beat-{b['index']} table.lore tr[data-entry]')].map(r => r.dataset.entry)")
                assert names == [pick["id"] for pick in b["lore"]]
            assert "Tidewater <script>" in p.js("document.querySelector('h1').textContent")
            # Names in the prose: the beat's own lore marked one way, the rest (Odo, not picked for beat 1) the other.
            marked = p.js("[...document.querySelectorAll('#beat-1 .prose .name')].map(s => [s.dataset.entry, s.className])")
            ids = {e: c for e, c in marked}
            assert "in-lore" in ids["characters/mara"]
            assert "not-in-lore" in ids["characters/odo"]
            assert p.js("document.querySelector('#beat-1 .unlisted').textContent").count("Odo Brask") == 1
            # The page fits the viewport (no sideways scrolling) at both widths.
            assert p.js("document.documentElement.scrollWidth <= window.innerWidth + 1")
            prose = p.js("document.querySelector('#beat-1 .prose').getBoundingClientRect().toJSON()")
            side = p.js("document.querySelector('#beat-1 .sidebar').getBoundingClientRect().toJSON()")
            if name == "phone":
                assert side["top"] >= prose["bottom"] - 1  # stacked: the lore below the prose
            else:
                assert side["left"] >= prose["right"] - 1 and abs(side["top"] - prose["top"]) < 40  # side by side
            # Hovering a name shows its entry's lead.
            tip = p.page.locator("#beat-1 .prose .name.in-lore .tip").first
            assert not tip.is_visible()
            p.page.locator("#beat-1 .prose .name.in-lore").first.hover()
            assert tip.is_visible() and "ferrywoman" in tip.text_content()
        finally:
            p.close()
    assert (tmp_path / "report-phone.png").stat().st_size > 1000


def test_half_finished_chapter_is_marked_and_lists_the_beats_to_come(project: Path, fault_server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    chapter = tmp_path / "partial.md"
    result = _generate(project, fault_server, chapter, script=["ok", "500"])
    assert result.exit_code != 0  # beat 2 failed; beat 1 is saved
    html = _report(project, chapter)
    p = _open(browser, html, 1280)
    try:
        assert "1 of 3 beats" in p.js("document.querySelector('#unfinished').textContent")
        assert p.js("[...document.querySelectorAll('section.pending-beat')].map(s => +s.dataset.beat)") == [2, 3]
        assert p.js("document.querySelector('#beat-3 .beat-line').textContent") == BEATS[2]
        assert "Not written yet" in p.js("document.querySelector('#beat-2 .prose').textContent")
    finally:
        p.close()


@pytest.mark.parametrize("extra", [("--mode", "oneshot"), ("--n", "2"), ("--only", "2"), ("--resume",), ("--mode", "interactive")],
                         ids=["oneshot", "n2", "only", "resume", "interactive"])
def test_report_works_for_every_mode(project: Path, fault_server, browser, tmp_path: Path, extra: tuple[str, ...]) -> None:  # noqa: ANN001
    chapter = tmp_path / "mode.md"
    if extra[0] in ("--only", "--resume"):
        _generate(project, fault_server, chapter, script=["ok", "500"])  # a partial chapter to continue or patch
        if extra[0] == "--only":
            assert _generate(project, fault_server, chapter, "--resume").exit_code == 0
    answers = "r 1.1\na\na\na\n" if "interactive" in extra else None  # re-roll beat 1 once, accept the rest
    assert _generate(project, fault_server, chapter, *extra, answers=answers).exit_code == 0
    html = _report(project, chapter)
    trace = json.loads(chapter.with_name("mode.trace.json").read_text())
    p = _open(browser, html, 1280)
    try:
        assert p.js("document.querySelectorAll('section.beat:not(.pending-beat)').length") == 3
        assert p.js("document.getElementById('unfinished')") is None
        assert p.js("document.documentElement.dataset.pwned") is None
        if extra[0] == "--n" or "interactive" in extra:
            assert p.js("document.querySelectorAll('#beat-1 .candidates li').length") == 2
        if extra == ("--mode", "oneshot"):
            assert {b["mode"] for b in trace["beats"]} <= {"oneshot", "sequential"}
    finally:
        p.close()


def test_report_without_the_store_still_renders_and_says_why(project: Path, fault_server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    chapter = tmp_path / "nostore.md"
    assert _generate(project, fault_server, chapter).exit_code == 0
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text(f'store = "{tmp_path / "empty-store"}"\n', encoding="utf-8")
    out = tmp_path / "nostore.html"
    result = runner.invoke(app, ["report", str(chapter), "--config", str(cfg), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    p = _open(browser, out, 1280)
    try:
        assert "not highlighted" in p.js("document.getElementById('note').textContent")
        assert p.js("document.querySelectorAll('.prose .name').length") == 0
        assert p.js("document.querySelectorAll('section.beat').length") == 3
    finally:
        p.close()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    lone = tmp_path / "lonely.md"
    lone.write_text("# Just prose\n\nNo trace beside me.\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(lone)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no trace" in lines[0] and str(lone) in lines[0]
    result = runner.invoke(app, ["report", str(tmp_path / "missing.md")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_lint_report_and_export_on_an_imported_lorebook(fault_server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    """The three commands on a bible that is a SillyTavern lorebook imported as it came: lint reads it,
    a chapter written from it has a report whose lore rows are the imported entries, and export gives
    back a lorebook that imports to the same entries."""
    bible = tmp_path / "harbour"
    imported = runner.invoke(app, ["import", str(Path(__file__).parent / "data" / "import" / "harbour_world.json"), "--into", str(bible)])
    assert imported.exit_code == 0, imported.stderr
    sheet = tmp_path / "beats.txt"
    sheet.write_text("Captain Voss walks the Tidewall at dusk.\nShe holds a shard of salt glass up to the storm light.\n", encoding="utf-8")
    cfg = tmp_path / "b2p.toml"
    cfg.write_text(f'store = "{tmp_path / ".b2p"}"\nretries = 0\ntimeout = 20\nredrafts = 0\n', encoding="utf-8")

    linted = runner.invoke(app, ["lint", str(bible), str(sheet), "--config", str(cfg)])
    assert linted.exit_code in (0, 1) and "Traceback" not in linted.stdout + linted.stderr, linted.stderr
    findings = [ln for ln in linted.stdout.splitlines() if ln.strip()]
    assert findings and all(re.match(r"^\S+:\d+: (error|warning): .+ \[[a-z-]+\]$", ln) for ln in findings), findings

    fault_server.text = "Mara Voss walked the black basalt of the Tidewall while the gulls complained. The tide turned."
    chapter = tmp_path / "chapter.md"
    written = runner.invoke(app, ["generate", str(sheet), "--bible", str(bible), "--config", str(cfg), "--llm", "openai",
                                  "--base-url", fault_server.url, "--words-per-beat", "40", "--no-stream", "-o", str(chapter)])
    assert written.exit_code == 0, written.stderr
    html = chapter.with_suffix(".html")
    reported = runner.invoke(app, ["report", str(chapter), "--config", str(cfg), "-o", str(html)])
    assert reported.exit_code == 0, reported.stderr
    trace = json.loads(chapter.with_name("chapter.trace.json").read_text())
    assert "Captain Mara Voss" in [p["name"] for p in trace["beats"][0]["lore"]]
    p = _open(browser, html, 1280)
    try:
        assert p.requests == [html.resolve().as_uri()] and p.js("document.querySelectorAll('script').length") == 0
        rows = p.js("[...document.querySelectorAll('#beat-1 table.lore tr[data-entry]')].map(r => r.dataset.entry)")
        assert rows == [pick["id"] for pick in trace["beats"][0]["lore"]]
    finally:
        p.close()

    world = tmp_path / "world.json"
    exported = runner.invoke(app, ["export", str(bible), "--format", "sillytavern", "-o", str(world)])
    assert exported.exit_code == 0, exported.stderr
    again = tmp_path / "again"
    assert runner.invoke(app, ["import", str(world), "--into", str(again)]).exit_code == 0
    assert sorted(p.name for p in (again / "lore").glob("*.md")) == sorted(p.name for p in (bible / "lore").glob("*.md"))
