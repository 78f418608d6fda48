"""The library's front door: b2p's jobs as functions. The CLI is one client of these; so is any script.

    import b2p
    report = b2p.ingest_bible("story_bibles/lunar_mining")
    ledger = b2p.lore_for("lunar_mining", ["Jack radios Dr. Thorne from the crater rim."])
    trace = b2p.write_chapter("beats.txt", "lunar_mining", out="chapter.md")

Each job takes ``settings`` (default: ``load_settings()``: ``./b2p.toml`` if present, env ``B2P_*``)
and an optional ``Events`` for progress. ``bible`` is an ingested bible's name or a bible folder; a
folder is ingested first when it is new or changed, as ``--bible`` does. Errors are ``B2PError``s
with a one-line message.

Ingesting is the ``ingest`` package's job (the layers point one way: cli → ingest → b2p). This module
is the one place in ``b2p`` that reaches into ``ingest``, and only inside a function, when a job is
handed a bible folder; no stage module does, and importing ``b2p`` never does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from b2p.errors import B2PError
from b2p.events import Events
from b2p.settings import Settings, load_settings

if TYPE_CHECKING:
    from b2p.book import BookStatus, Place
    from b2p.evaluate import ChapterEval
    from b2p.interactive import Interaction
    from b2p.llm import LLM
    from b2p.models import BibleMeta, IngestReport, Ledger
    from b2p.plan import DryRun
    from b2p.store import StoredEntry
    from b2p.trace import ChapterTrace


def ingest_bible(bible_dir: Path | str | None = None, settings: Settings | None = None, *, rebuild: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Validate a bible folder and store its chunks and embeddings, embedding only what changed.

    ``bible_dir`` defaults to the bible folder the process runs in; the store to ``<bible_dir>/.b2p/``
    (see ``locate_bible``). ``rebuild`` drops the bible's collection first; ``progress(done, total)`` is
    called as chunks are embedded. Raises ``BibleError`` (every problem, one per line) before anything is
    written."""
    from ingest.pipeline import ingest_bible as ingest
    from ingest.project import mark_store

    folder, settings = locate_bible(bible_dir, settings or load_settings(), flag="BIBLE_DIR")
    report = ingest(Path(folder), settings, rebuild=rebuild, progress=progress)
    mark_store(settings, Path(folder))
    return report


def locate_bible(bible: str | Path | None, settings: Settings, flag: str = "--bible BIBLE_DIR") -> tuple[str | Path, Settings]:
    """The bible ``bible`` means — a folder (``Path``) or an ingested bible's name (``str``); None: the bible
    folder the process runs in — and ``settings`` with the store that holds it: ``--store``/``B2P_STORE``/
    b2p.toml when set, else an existing ``./.b2p`` that holds this bible, else ``<bible>/.b2p/``. Reads no
    bible and opens no store."""
    from ingest.project import locate

    if bible is not None and not str(bible).strip():
        from b2p.errors import ConfigError

        raise ConfigError("--bible is empty: give an ingested bible's name or a bible folder")
    return locate(bible, settings, flag)


def open_bible(bible: str | Path | None, settings: Settings, events: Events | None = None) -> tuple[str, Settings]:
    """The name of the ingested bible ``bible`` names (a folder is ingested first if new or changed), and
    the settings whose store holds it."""
    from ingest.pipeline import ensure_bible
    from ingest.project import mark_store

    events = events or Events()
    ref, settings = locate_bible(bible, settings)
    if isinstance(ref, Path):
        events.ingesting(ref)
    name, report = ensure_bible(str(ref), settings, progress=events.ingest_progress)
    if report is not None:
        mark_store(settings, Path(ref))
        events.ingested(report)
    return name, settings


def chapter_settings(chapter: Path | str, settings: Settings) -> Settings:
    """``settings`` with the store of the bible a chapter was written with (its trace records the folder)."""
    from b2p import trace

    try:
        saved = trace.load(Path(chapter))
    except B2PError:
        return settings
    if saved is None or not saved.bible_dir or not Path(saved.bible_dir).is_dir():
        return settings
    return locate_bible(Path(saved.bible_dir), settings)[1]


def lore_for(bible: str | Path | None, beats: Sequence[str] | Path, settings: Settings | None = None, explain: bool = False, *,
             events: Events | None = None, chapter: int | None = None) -> Ledger:
    """The lore ledger of ``beats``: for each, the entries its prompt gets and why, and what was left out.

    ``beats`` is a list of beat texts (a str is one beat) or the Path of a beat sheet. ``explain`` also
    lists the similar candidates that fell below the threshold. In a book, the bible is read as it stands
    at ``chapter`` (default: the sheet's own chapter, if it is one), with the previous chapter's closing
    cast on stage; the ledger lists what is held back (``held_back``)."""
    from b2p.beats import Beat, check_beats, parse_beat, read_beats
    from b2p.retrieval import Retriever
    from b2p.store import Store

    settings = settings or load_settings()
    if isinstance(beats, Path):
        given = read_beats(beats, settings.max_beat_chars)
    else:
        given = [beats] if isinstance(beats, str) else list(beats)
        check_beats(given, settings.max_beat_chars)
    texts = [b if isinstance(b, Beat) else parse_beat(b) for b in given]  # a beat line may end with +Name / -Name
    ref, settings = locate_bible(bible, settings)
    place = chapter_place(ref, settings, beats if isinstance(beats, Path) else None, chapter)
    name, settings = open_bible(ref, settings, events)
    with Store.open(settings, bible=name) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, name, chapter=place.number if place is not None else None)
        return r.ledger(texts, explain=explain, carried=place.carried(settings.scene_depth) if place is not None else ())


def list_entries(bible: str | Path | None, settings: Settings | None = None, *, events: Events | None = None) -> tuple[str, list[StoredEntry]]:
    """What ``b2p entries`` lists: the bible's name and every entry record it holds (disabled ones too), by
    kind then name. A folder is ingested first if new or changed."""
    from b2p.index import open_index
    from b2p.store import Store

    name, settings = open_bible(bible, settings or load_settings(), events)
    with Store.open(settings, bible=name) as st, st.lock(exclusive=False):
        index = open_index(settings, st, name)
        return index.bible, sorted(index.listing(), key=lambda s: (s.entry.kind, s.entry.name))


def write_chapter(beats_file: Path | str, bible: str | Path | None, settings: Settings | None = None, *,
                  out: Path | str | None = None, resume: bool = False, only: Sequence[int] | None = None, force: bool = False,
                  confirm: Callable[[str], bool] | None = None, events: Events | None = None,
                  interaction: Interaction | None = None, llm: LLM | None = None, strict: bool = False) -> ChapterTrace:
    """Write a chapter from a beat sheet, each beat prompted with only the lore it needs; returns its trace.

    A sheet that is a chapter of its bible's book (``b2p.book``) is written to the book's chapter file
    unless ``out`` says otherwise, reads the bible as it stands at its chapter, carries the previous
    chapter's closing cast and a summary of each earlier chapter; an earlier chapter not written is
    noted and skipped, or refused with ``strict``. The trace's ``book`` records what it was written from.

    With ``out`` the chapter is written there and its trace beside it (``chapter.trace.json``), each
    finished beat saved at once; ``resume`` continues from the first unfinished beat, ``only`` rewrites
    those beats (1-based) and keeps the rest. The chapter file is the writer's: beats they edited by hand are
    kept (and recorded as edited) and replaced only with ``force``, or when ``confirm(question)`` says yes;
    ``out`` must be a chapter of this beat sheet (or nothing) unless ``force``; ``"-"`` means no file.
    Interactive mode (``settings.mode``) needs an
    ``interaction``. ``llm`` reuses a loaded model (default: the one ``settings`` names, loaded and
    closed here). Everything that can be refused without the store (flags, the saved trace, the model
    file or key) is refused before the store is opened. On an error the finished beats are saved;
    ``events.chapter_started`` handed out the live trace that holds them."""
    from b2p.beats import read_beats
    from b2p.destination import output_path
    from b2p.drafting import check_mode
    from b2p.generate import generate_chapter
    from b2p.llm import check_llm, load_llm
    from b2p.plan import plan_chapter
    from b2p.resume import ResumeState

    settings = settings or load_settings()
    sheet_file = Path(beats_file)
    beats = read_beats(sheet_file, settings.max_beat_chars)
    ref, settings = locate_bible(bible, settings)
    place = chapter_place(ref, settings, sheet_file, strict=strict)
    if out is None and place is not None:
        out = place.chapter.out  # a chapter of the book is written where the book keeps it ("-": nowhere)
    state = ResumeState.load(beats, sheet_file, output_path(out), resume=resume, only=only, force=force,
                             bible_dir=ref if isinstance(ref, Path) else None, confirm=confirm)
    check_mode(settings, interaction)
    if llm is None:
        check_llm(settings)
    name, settings = open_bible(ref, settings, events)
    plan = plan_chapter(settings, name, beats, place)
    if llm is not None:
        return generate_chapter(settings, plan, llm, state, events=events, interaction=interaction)
    with load_llm(settings) as model:
        return generate_chapter(settings, plan, model, state, events=events, interaction=interaction)


def chapter_prompts(beats_file: Path | str, bible: str | Path | None, settings: Settings | None = None, *,
                    events: Events | None = None, llm: LLM | None = None, only: Sequence[int] | None = None,
                    strict: bool = False) -> DryRun:
    """Every prompt ``write_chapter`` would send for this sheet (``--dry-run``), without calling the model;
    ``only``: just those beats' (1-based; a number past the sheet is one ConfigError line); ``strict`` as
    ``write_chapter``'s.

    The story so far is a placeholder (it does not exist yet), the earlier chapters' summaries those
    already made; the model is loaded only to count tokens."""
    from b2p.beats import read_beats
    from b2p.llm import check_llm, load_llm
    from b2p.plan import DryRun, dry_run, plan_chapter
    from b2p.story import cached_book

    settings = settings or load_settings()
    from b2p.errors import ConfigError

    beats = read_beats(Path(beats_file), settings.max_beat_chars)
    for i in only or []:
        if not 1 <= i <= len(beats):
            raise ConfigError(f"--only {i}: the beat sheet {beats_file} has {len(beats)} beats (1–{len(beats)})")
    if llm is None:
        check_llm(settings)
    ref, settings = locate_bible(bible, settings)
    place = chapter_place(ref, settings, Path(beats_file), strict=strict)
    name, settings = open_bible(ref, settings, events)
    plan = plan_chapter(settings, name, beats, place, ask_model=False)
    plan.book_lines = cached_book(plan, settings.cache_dir)
    for message in place.notes() if place is not None else ():
        (events or Events()).note(message)
    if llm is not None:
        return DryRun(plan, dry_run(settings, plan, beats, llm, only=only), llm.name, llm.context_window)
    with load_llm(settings) as model:
        return DryRun(plan, dry_run(settings, plan, beats, model, only=only), model.name, model.context_window)


def chapter_place(bible: str | Path, settings: Settings, sheet: Path | None = None, chapter: int | None = None,
                  strict: bool = False) -> Place | None:
    """Where a sheet (or ``chapter``) sits in the book of ``bible`` (``b2p.book``): None when the sheet is
    no chapter of it. ``strict``: an earlier chapter not written in full is an error."""
    from b2p.book import find_book, place_of
    from b2p.errors import ConfigError, StoreError

    try:
        book = find_book(bible, settings, _read_meta)
    except StoreError:
        book = None  # an unknown bible name: opening it says so
    if book is None:
        if chapter is not None:
            raise ConfigError(f"--chapter {chapter}: no book to read it in: pass --bible as the bible's folder")
        return None
    found = book.chapter(chapter) if chapter is not None else book.chapter_of(sheet) if sheet is not None else None
    return place_of(book, found, strict, sheet) if found is not None else None


def _read_meta(folder: Path) -> BibleMeta:
    from ingest.bible import parse_meta

    return parse_meta(folder)


def book_status(bible: str | Path | None, settings: Settings | None = None, *, events: Events | None = None) -> BookStatus:
    """The chapters of ``bible``'s book (``b2p book``): which are written, their words, and which are stale
    because the bible, their beat sheet or an earlier chapter changed since they were written."""
    from b2p.book import find_book, status
    from b2p.errors import ConfigError
    from b2p.store import Store

    ref, settings = locate_bible(bible, settings or load_settings())
    name, settings = open_bible(ref, settings, events)  # first: a folder that is not there is its own line
    book = find_book(ref, settings, _read_meta)
    if book is None:
        raise ConfigError(f"bible '{name}': its folder is unknown; pass --bible as the bible's folder")
    with Store.open(settings, bible=name) as st, st.lock(exclusive=False):
        state = st.state(name)
    return status(book, name, state)


def evaluate(chapter: Path | str, settings: Settings | None = None, *, bible: str | Path | None = None, judge: bool = False,
             events: Events | None = None) -> ChapterEval:
    """Measure a written chapter (coverage, similarity, repetition, debris, lore use; with ``judge``
    the configured model grades every beat too) and keep the figures in its trace. ``bible`` names
    the ingested bible (or folder) to read entry names from; default: the trace's own bible. A
    chapter without a trace, a trace from another chapter, or a chapter edited since its trace is
    refused before any store or model is opened."""
    from b2p.evaluate import evaluate_chapter, load_chapter
    from b2p.llm import check_llm, load_llm

    settings = settings or load_settings()
    events = events or Events()
    chapter = Path(chapter)
    load_chapter(chapter)
    if bible is not None:
        name, settings = open_bible(bible, settings, events)
    else:
        name, settings = None, chapter_settings(chapter, settings)  # the store of the bible the chapter was written with
    if not judge:
        return evaluate_chapter(chapter, settings, bible=name)
    check_llm(settings)
    with load_llm(settings) as model:
        return evaluate_chapter(chapter, settings, bible=name, judge=model, on_judged=events.judged)
