"""The ``b2p`` command: parse flags, call the library, render. Nothing else lives here."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from b2p.errors import B2PError
from b2p.events import Events


class _Group(TyperGroup):
    """Every usage error (unknown flag, missing argument, bad value) is one line on stderr and exit 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:  # the group's own flags and no-command
        with _usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:  # the command name, then the command's flags and arguments
        with _usage_errors(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def _usage_errors(ctx: Any = None) -> Iterator[None]:
    from b2p.usage import exceptions, usage_line

    try:
        yield
    except exceptions.NoArgsIsHelpError:  # bare 'b2p': the help, as before
        raise
    except exceptions.UsageError as err:
        command = " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand))) if ctx is not None else None
        _err(usage_line(err, command))
        raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="b2p",
    help="Beats to prose: expand a beat sheet into a chapter, giving each beat only the lore it needs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # API keys live in memory
    rich_markup_mode=None,
)

# Files b2p reads itself take readable=False: its own checks name the file and the fix in one line.
StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="Embedded store folder [env B2P_STORE; default BIBLE/.b2p]", show_default=False)]
UrlOpt = Annotated[Optional[str], typer.Option("--chroma-url", help="Use a Chroma server, e.g. http://127.0.0.1:8000 [env B2P_CHROMA_URL]", show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Settings file [default ./b2p.toml if present]", show_default=False, readable=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ResolverOpt = Annotated[Optional[str], typer.Option("--resolver", help="rules | model: who chooses the lore beside the names; 'model' asks the chat model (--llm/--model, one request a beat, cached) [default rules]", show_default=False)]
BibleOpt = Annotated[Optional[str], typer.Option("--bible", help="A bible folder (ingested first if new or changed), or an ingested bible's name [default: the bible folder b2p runs in]", show_default=False)]


def _show(text: str) -> str:
    """Text from bibles, beats, lorebooks and models as the terminal should get it: control characters visible."""
    from b2p.display import visible

    return visible(text)


def _err(line: str) -> None:
    typer.echo(_show(line), err=True)


def _echo(line: str = "", err: bool = False, nl: bool = True) -> None:
    typer.echo(_show(line), err=err, nl=nl)


class _Table:
    """Rows of text from bibles, beats and models. On a terminal: a rich table at the terminal's
    width, long cells folded (never cut), every cell plain text (``[bold]`` in a beat is shown, not
    obeyed). Piped: a title line, then tab-separated header and rows, nothing wrapped or cut, so
    ``cut``/``awk`` read it. ``--json`` stays the machine format."""

    def __init__(self, title: str, columns: list[str], numeric: tuple[str, ...] = (), err: bool = False) -> None:
        self.title, self.columns, self.numeric, self.err = title, columns, numeric, err
        self.rows: list[tuple[list[str], bool]] = []

    def row(self, *cells: object, bold: bool = False) -> None:
        self.rows.append(([str(c) for c in cells], bold))

    def print(self) -> None:
        stream = sys.stderr if self.err else sys.stdout
        if not stream.isatty():
            from b2p.display import visible

            def cell(text: str) -> str:
                return visible(text, keep_newlines=False).replace("\t", "\\t")

            lines = [cell(self.title), "\t".join(self.columns), *("\t".join(cell(c) for c in cells) for cells, _ in self.rows)]
            typer.echo("\n".join(lines), err=self.err)
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(_show(self.title)), title_justify="left", show_edge=False, pad_edge=False)
        for c in self.columns:
            table.add_column(c, justify="right" if c in self.numeric else "left", overflow="fold")
        for cells, bold in self.rows:
            table.add_row(*(Text(_show(c)) for c in cells), style="bold" if bold else None)
        Console(stderr=self.err, highlight=False).print(table)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """B2PError → its lines on stderr and its exit code; anything else is a bug and keeps its traceback."""
    try:
        yield
    except B2PError as err:
        from b2p.errors import BibleError

        for line in str(err).splitlines() or [err.__class__.__name__]:
            _err(line if isinstance(err, BibleError) else f"error: {line}")
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None


def _settings(config: Path | None, **flags: Any):  # noqa: ANN202
    from b2p.settings import load_settings

    return load_settings(config, **flags)


def _print_ingest(report, quiet_if_unchanged: bool = False, to_stdout: bool = False) -> None:  # noqa: ANN001
    """The summary is ``b2p ingest``'s result (stdout); before lore/generate it is a side note (stderr), and
    it and the bible's warnings are shown only when that ingest changed something (warnings once, not on
    every command; ``b2p ingest`` and ``b2p lint`` show them whenever asked)."""
    if quiet_if_unchanged and not (report.added or report.updated or report.removed):
        return
    for w in report.warnings:
        _err(f"warning: {w}")
    _echo(
        f"{report.bible}: {report.entries} entries ({report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged), {report.chunks} chunks in the store, {report.seconds:.1f} s",
        err=not to_stdout,
    )


def _folder_arg(value: str | None) -> Path | None:
    """BIBLE_DIR as given: an empty one (an unset shell variable) is refused, never read as this folder."""
    if value is not None and not value.strip():
        from b2p.errors import ConfigError

        raise ConfigError("BIBLE_DIR is empty: give the bible folder (or leave it out inside one)")
    return Path(value) if value is not None else None


@app.command()
def ingest(
    bible_dir: Annotated[Optional[str], typer.Argument(help="The bible folder (characters/, places/, …, bible.yaml) [default: the one b2p runs in]", show_default=False)] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    embed_model: Annotated[Optional[str], typer.Option("--embed-model", help="sentence-transformers name or path [default all-MiniLM-L6-v2]", show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the bible's collection and embed everything again.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate a story bible and store its chunks and embeddings (only what changed)."""
    with _user_errors():
        from b2p.jobs import ingest_bible

        settings = _settings(config, store=store, chroma_url=chroma_url, embed_model=embed_model)
        with _Terminal() as events:
            events.start_bar("embedding")
            report = ingest_bible(_folder_arg(bible_dir), settings, rebuild=rebuild, progress=events.ingest_progress)
        if as_json:
            for w in report.warnings:
                _err(f"warning: {w}")
            typer.echo(report.model_dump_json())
        else:
            _print_ingest(report, to_stdout=True)


@app.command()
def entries(
    bible: BibleOpt = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the entries a bible holds in the store: name, kind, aliases, chunks."""
    with _user_errors():
        from b2p.jobs import list_entries

        settings = _settings(config, store=store, chroma_url=chroma_url)
        with _Terminal() as events:
            name, rows = list_entries(bible, settings, events=events)
        if as_json:
            typer.echo(json.dumps({"bible": name, "entries": [
                {"name": s.entry.name, "id": s.entry.id, "kind": s.entry.kind, "aliases": s.entry.aliases, "tags": s.entry.tags,
                 "always": s.entry.always, "case_sensitive": s.entry.case_sensitive, "enabled": s.entry.enabled,
                 "chunks": s.chunks, "tokens": s.entry.tokens} for s in rows]}))
            return
        table = _Table(f"{name}: {len(rows)} entries", ["entry", "kind", "aliases", "chunks", "tokens", "flags"], numeric=("chunks", "tokens"))
        for s in rows:
            e = s.entry
            flags = " ".join(f for f, on in (("always", e.always), ("case-sensitive", e.case_sensitive), ("disabled", not e.enabled)) if on)
            table.row(e.name, e.kind, ", ".join(e.aliases), s.chunks, e.tokens, flags)
        table.print()


@app.command()
def lore(
    bible: BibleOpt = None,
    beats_file: Annotated[Optional[Path], typer.Argument(help="A beat sheet: one beat per line.", show_default=False, readable=False)] = None,
    beat: Annotated[Optional[str], typer.Option("--beat", help="Show the lore of this one beat instead of a sheet.", show_default=False)] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Also show the similarity settings in force and every candidate left out, with why (threshold, margin, top_k, ambiguous).")] = False,
    budget: Annotated[Optional[int], typer.Option("--budget", help="Lore tokens per beat [default 1200]", show_default=False)] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Similarity a 'similar' entry must reach [default 0.35].", show_default=False)] = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="How far a 'similar' entry must stand above the beat's other candidates [default 0.12].", show_default=False)] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="At most this many 'similar' entries per beat [default 3].", show_default=False)] = None,
    scene_depth: Annotated[Optional[int], typer.Option("--scene-depth", help="Earlier beats the scene cast is carried from [default 3].", show_default=False)] = None,
    chapter: Annotated[Optional[int], typer.Option("--chapter", help="Read the bible as it stands at this chapter of its book [default: the sheet's own chapter].", show_default=False)] = None,
    resolver: ResolverOpt = None,
    llm: Annotated[Optional[str], typer.Option("--llm", help="With --resolver model: local (embedded GGUF) | openai [default local]", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="With --resolver model: the model name for --llm openai", show_default=False)] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="With --resolver model: an OpenAI-compatible server (key in B2P_API_KEY)", show_default=False)] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show which lore each beat pulls in, why, and what was left out.

    A beat line may end with overrides: +Name forces an entry in, -Name keeps one out (reason 'writer')."""
    with _user_errors():
        from b2p.errors import ConfigError
        from b2p.jobs import lore_for

        if (beats_file is None) == (beat is None):
            raise ConfigError("give a beat sheet file or --beat \"TEXT\" (one of them)")
        if beat is not None and not beat.strip():
            raise ConfigError("--beat is empty: write the beat's text")
        settings = _settings(config, store=store, chroma_url=chroma_url, budget=budget, threshold=threshold, margin=margin, top_k=top_k,
                             scene_depth=scene_depth, resolver=resolver, llm=llm, model=model, base_url=base_url)
        if settings.resolver != "model" and (llm or model or base_url):
            raise ConfigError("--llm, --model and --base-url choose the model of --resolver model: add --resolver model (or drop them)")
        with _Terminal() as events:
            ledger = lore_for(bible, beats_file if beats_file is not None else [beat.strip()], settings, explain, events=events,  # type: ignore[union-attr]
                              chapter=chapter)
        if as_json:
            typer.echo(ledger.model_dump_json())
        else:
            if explain:
                _echo(f"similar: threshold {settings.threshold}, margin {settings.margin}, top-k {settings.top_k}; "
                           f"budget {settings.budget} tokens; scene depth {settings.scene_depth}"
                      + (f"; resolver: model ({settings.llm}{', ' + settings.model if settings.model else ''})" if settings.resolver == "model" else ""))
            _render_ledger(ledger)
            if ledger.chapter is not None:
                _render_held_back(ledger, explain)


@app.command()
def lint(
    bible_dir: Annotated[str, typer.Argument(help="The bible folder; the sheets under its beats/ folder are read too.", show_default=False)],
    beats_files: Annotated[Optional[list[Path]], typer.Argument(help="More beat sheets to check.", show_default=False, readable=False)] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Flag what a careful editor would: unknown names in beats, clashing or too-common aliases, unused entries, ….

    Exit 1 when there are errors (warnings alone exit 0)."""
    with _user_errors():
        from b2p.jobs import locate_bible
        from ingest.lint import lint_bible
        from ingest.project import mark_store

        folder = _folder_arg(bible_dir)
        settings = locate_bible(folder, _settings(config, store=store, chroma_url=chroma_url), "BIBLE_DIR")[1]  # the bible's store
        with _Terminal() as events:
            events.start_bar("linting")  # on a terminal: progress as a new or changed bible is embedded
            report = lint_bible(folder, beats_files or [], settings, progress=events.ingest_progress)
        mark_store(settings, folder)
        if as_json:
            typer.echo(report.model_dump_json())
        else:
            for f in report.findings:
                _echo(f.line_text())
            for s in report.skipped:
                _err(f"note: not checked: {s}")
            _err(f"{report.bible}: {report.errors} errors, {report.warnings} warnings ({len(report.sheets)} beat sheets, {report.beats} beats)")
        if report.errors:
            raise typer.Exit(1)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A SillyTavern World Info .json, a V2/V3 character card (.json/.png) or a NovelAI .lorebook.", show_default=False, readable=False)],
    into: Annotated[Path, typer.Option("--into", help="The bible folder to write entries into (created if missing).", show_default=False)],
    fmt: Annotated[Optional[str], typer.Option("--format", help="sillytavern | character-card | novelai [default: detected from content]", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be imported; write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rewrite entries this file imported before.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import lore from SillyTavern, character-card lorebooks or NovelAI into a bible folder."""
    with _user_errors():
        from ingest.importers import import_lorebook

        report = import_lorebook(file, into, fmt=fmt, dry_run=dry_run, force=force)
        if as_json:
            typer.echo(report.model_dump_json())
            return
        verb = "would import" if report.dry_run else "imported"
        _echo(f"{report.source} ({report.format}) → {report.into}: {verb} {len(report.imported)}, skipped {len(report.skipped)}, {len(report.warnings)} warnings")
        for e in report.imported:
            flags = "".join((" [always]" if e.always else "", " [disabled]" if not e.enabled else ""))
            _echo(f"  + {e.file}: {e.name}{flags}" + (f" (keys: {', '.join(e.aliases)})" if e.aliases else ""))
        if report.record:
            _echo(f"  = {report.record}: the lorebook's own fields, kept for 'b2p export'")
        for sk in report.skipped:
            _echo(f"  - skipped {sk.name}: {sk.reason}")
        for w in report.warnings:
            _echo(f"  ! {w.name}: {w.message}")


@app.command("export")
def export(
    bible_dir: Annotated[Path, typer.Argument(help="The bible folder to export.", show_default=False, readable=False)],
    fmt: Annotated[str, typer.Option("--format", help="sillytavern | novelai", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write (World Info .json or NovelAI .lorebook).", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Write a bible as a SillyTavern World Info file or a NovelAI lorebook: the inverse of import."""
    with _user_errors():
        from ingest.export import export_bible

        report = export_bible(bible_dir, fmt, output)
        if as_json:
            typer.echo(report.model_dump_json())
            return
        converted = f", {report.converted} converted from character cards" if report.converted else ""
        _echo(f"{report.bible} → {report.output} ({report.format}): {report.entries} entries, "
              f"{report.restored} restored from {report.format} imports{converted}, {report.written} written from b2p fields")
        for w in report.warnings:
            _echo(f"  ! {w}")


@app.command()
def generate(
    beats_file: Annotated[Path, typer.Argument(help="A beat sheet: one beat per line.", show_default=False, readable=False)],
    bible: BibleOpt = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the chapter here (Markdown) and its trace beside it; - for stdout [default: stdout]", show_default=False)] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="sequential | oneshot | interactive [default sequential]", show_default=False)] = None,
    llm: Annotated[Optional[str], typer.Option("--llm", help="local (embedded GGUF) | openai (OpenAI or --base-url) [default local]", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model name for --llm openai [default gpt-4o-mini]", show_default=False)] = None,
    model_path: Annotated[Optional[Path], typer.Option("--model-path", help="A GGUF file for --llm local [default: the embedded SmolLM2]", show_default=False, readable=False)] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (key in B2P_API_KEY)", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="Sampling temperature, 0–2 [default 0.8]", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sampling seed, for repeatable drafts.", show_default=False)] = None,
    words_per_beat: Annotated[Optional[int], typer.Option("--words-per-beat", help="Target words of prose per beat [default 150]", show_default=False)] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Candidates per beat; a judge prompt keeps the best [default 1]", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the chapter at -o from its first unfinished beat.")] = False,
    only: Annotated[Optional[str], typer.Option("--only", help="Rewrite only these beats of the chapter at -o, e.g. 5 or 5,7.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace what -o names even if it is not a chapter of this sheet, and beats edited by hand.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print each prompt and its token counts; call no model.")] = False,
    stream: Annotated[Optional[bool], typer.Option("--stream/--no-stream", help="Show the prose on stderr as it is written [default stream]", show_default=False)] = None,
    prompt_shape: Annotated[Optional[str], typer.Option("--prompt-shape", help="full | short | auto: short for a small model [default auto]", show_default=False)] = None,
    resolver: ResolverOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="In a book: refuse to write a chapter while an earlier one is not written in full.")] = False,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write a chapter from a beat sheet, each beat prompted with only the lore it needs.

    A sheet that is a chapter of the bible's book is written to the book's chapter file unless -o says otherwise."""
    with _user_errors():
        import time

        from b2p.jobs import chapter_prompts, write_chapter
        from b2p.resume import parse_only

        settings = _settings(config, store=store, chroma_url=chroma_url, mode=mode, llm=llm, model=model, model_path=model_path,
                             base_url=base_url, temperature=temperature, seed=seed, words_per_beat=words_per_beat, n=n, stream=stream,
                             prompt_shape=prompt_shape, resolver=resolver)
        only_beats = parse_only(only) if only is not None else None
        to_stdout = output is not None and str(output) == "-"  # passed on as "-": in a book, no chapter file either
        with _Terminal(settings.stream) as events:
            if dry_run:
                _render_dry_run(chapter_prompts(beats_file, bible, settings, events=events, only=only_beats, strict=strict))
                return
            interaction = _TerminalInteraction.open() if settings.mode == "interactive" else None
            started = time.perf_counter()
            try:
                trace = write_chapter(beats_file, bible, settings, out=output, resume=resume, only=only_beats, force=force,
                                      confirm=_confirm if sys.stdin.isatty() and sys.stderr.isatty() else None,
                                      events=events, interaction=interaction, strict=strict)
            except (B2PError, KeyboardInterrupt) as err:
                if events.trace is None:  # refused before writing began: one plain error line
                    raise
                _generation_stopped(events, None if to_stdout else output or _book_out(events.trace), err)
        output = None if to_stdout else output or _book_out(trace)
        if output is None:
            from b2p.writer import render_chapter

            _echo(render_chapter(trace), nl=False)
        _render_summary(events, output, time.perf_counter() - started)


@app.command("eval")
def eval_(
    chapter: Annotated[Path, typer.Argument(help="A chapter written by 'b2p generate -o' (its trace is read from beside it).", show_default=False, readable=False)],
    judge: Annotated[bool, typer.Option("--judge", help="Also have the model grade each beat (follows the beat, lore, prose); grades are kept in the trace.")] = False,
    fail_under: Annotated[Optional[str], typer.Option("--fail-under", help="Exit 1 when a figure fails, e.g. coverage=0.5,repeat=0.2 (see README).", show_default=False)] = None,
    bible: Annotated[Optional[str], typer.Option("--bible", help="Bible to read names from [default: the trace's]", show_default=False)] = None,
    llm: Annotated[Optional[str], typer.Option("--llm", help="Judge backend: local | openai [default local]", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Judge model for --llm openai", show_default=False)] = None,
    model_path: Annotated[Optional[Path], typer.Option("--model-path", help="Judge GGUF for --llm local", show_default=False, readable=False)] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server for the judge", show_default=False)] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure a generated chapter: beat coverage, similarity, repetition, debris, lore use, judge, writer feedback."""
    with _user_errors():
        from b2p.eval_report import failures, parse_checks
        from b2p.jobs import evaluate

        checks = parse_checks(fail_under) if fail_under is not None else {}
        if "judge" in checks and not judge:
            from b2p.errors import ConfigError

            raise ConfigError("--fail-under judge=… needs --judge")
        settings = _settings(config, store=store, chroma_url=chroma_url, llm=llm, model=model, model_path=model_path, base_url=base_url)
        with _Terminal() as term:
            report = evaluate(chapter, settings, bible=bible, judge=judge, events=term)
        report.failed = failures(report, checks)
        if as_json:
            typer.echo(report.model_dump_json())
        else:
            _render_eval(report)
        if report.failed:
            raise typer.Exit(1)


def _render_eval(report) -> None:  # noqa: ANN001
    """The per-beat table, then the notes worth a look, then the chapter's figures and any FAIL lines."""
    from b2p import eval_report as er

    table = _Table(er.title(report), er.COLUMNS, numeric=er.NUMERIC)
    for b in report.beats:
        table.row(*er.row(b))
    table.print()
    noted = [(b, er.notes(b, report.words_per_beat)) for b in report.beats]
    if any(n for _, n in noted):
        _echo()
    for b, notes in noted:
        for k, note in enumerate(notes):
            _echo(f"{'beat ' + str(b.index) + ':' if k == 0 else '':<9} {note}")
    _echo()
    _echo("chapter: " + ", ".join(er.summary(report)))
    for line in report.failed:
        _echo(f"FAIL {line}")


@app.command()
def book(
    bible: BibleOpt = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The book's chapters: which are written, their words, and which are stale (the bible or an earlier chapter changed)."""
    with _user_errors():
        from b2p.jobs import book_status

        settings = _settings(config, store=store, chroma_url=chroma_url)
        with _Terminal() as events:
            status = book_status(bible, settings, events=events)
        if as_json:
            typer.echo(status.model_dump_json())
            return
        where = "bible.yaml" if status.declared else "beats/"
        table = _Table(f"{status.bible}: {len(status.chapters)} chapters (from {where})", ["chapter", "beat sheet", "chapter file", "written", "words", "stale"],
                       numeric=("chapter", "words"))
        for c in status.chapters:
            done = {"no": "no", "partly": f"{c.beats_done} of {c.beats} beats", "yes": "yes"}[c.written]
            table.row(c.chapter, c.beats_file, c.out, done, c.words if c.written != "no" else "", "stale" if c.stale else "")
        table.print()
        for c in status.chapters:
            if c.why:
                _echo(f"  chapter {c.chapter}: " + "; ".join(c.why))


def _book_out(trace) -> Path | None:  # noqa: ANN001
    """Where a chapter of a book went when no -o was given (its trace's book record says)."""
    return Path(trace.book.out) if trace is not None and trace.book is not None else None


def _render_held_back(ledger, explain: bool) -> None:  # noqa: ANN001
    """What the view at the ledger's chapter keeps out: a count, and with --explain each item and why."""
    held = ledger.held_back
    if not held:
        _echo(f"chapter {ledger.chapter}: nothing in the bible is held back")
        return
    if not explain:
        _echo(f"chapter {ledger.chapter}: {len(held)} held back (--explain lists them)")
        return
    table = _Table(f"held back at chapter {ledger.chapter}", ["entry", "what", "detail", "why"])
    for h in held:
        table.row(h.name, h.what, h.detail or "", h.reason)
    table.print()


@app.command()
def report(
    chapter: Annotated[Path, typer.Argument(help="A chapter written by 'b2p generate -o' (its trace must be beside it).", show_default=False, readable=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Where to write the HTML [default: CHAPTER.report.html beside the chapter]", show_default=False)] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write a self-contained HTML page: each beat's prose beside the lore it was given."""
    with _user_errors():
        from b2p.jobs import chapter_settings
        from b2p.report import write_report

        settings = chapter_settings(chapter, _settings(config, store=store, chroma_url=chroma_url))
        _echo(f"wrote {write_report(chapter, settings, output)}")


class _Terminal(Events):
    """Progress on stderr (an ingest bar, the prose as it streams or one line per beat), and what the
    summary and the error line need: the live trace, the beats saved and written, whether the author quit."""

    def __init__(self, stream: bool = True) -> None:
        self.stream = stream
        self._bar: Any = None
        self._task: Any = None
        self.trace: Any = None  # the live ChapterTrace once writing began
        self.saved = 0  # beats in the chapter file on disk
        self.written: list[int] = []
        self.targets: list[int] = []  # the beats this run set out to write
        self.stopped_after: int | None = None
        self.mid_line = False  # streamed prose left the cursor mid-line: a message starts on a new one

    def __enter__(self) -> _Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_bar()

    def start_bar(self, label: str) -> None:
        """A rich progress bar on a terminal, none otherwise (scripts and CI logs stay clean)."""
        if not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("embed", total=None)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def ingesting(self, folder: Path) -> None:
        self.start_bar("ingesting")

    def ingest_progress(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)

    def ingested(self, report) -> None:  # noqa: ANN001
        self._stop_bar()
        _print_ingest(report, quiet_if_unchanged=True)

    def judged(self, done: int, total: int) -> None:
        if self._bar is None and done < total:
            self.start_bar("judging")
        self.ingest_progress(done, total)
        if done >= total:
            self._stop_bar()

    def chapter_started(self, trace, targets) -> None:  # noqa: ANN001
        self.trace, self.saved, self.targets = trace, len(trace.beats), list(targets)

    def beat_started(self, index: int, total: int, beat: str) -> None:
        short = beat if len(beat) <= 70 else beat[:69] + "…"
        _err(f"\n── beat {index}/{total}: {short}" if self.stream else f"beat {index}/{total}: {short}")

    def draft_started(self, index: int, k: int, n: int) -> None:
        _err(f"\n── candidate {k}/{n}" if self.stream else f"  candidate {k}/{n}")

    def text(self, piece: str) -> None:
        sys.stderr.write(_show(piece))
        sys.stderr.flush()
        self.mid_line = not piece.endswith("\n")

    def end_line(self) -> None:
        if self.mid_line:
            sys.stderr.write("\n")
            self.mid_line = False

    def beat_finished(self, beat, total: int) -> None:  # noqa: ANN001
        self.written.append(beat.index)
        scores = ", ".join(f"{c.score:g}{'*' if c.chosen else ''}" for c in beat.candidates if c.score is not None)
        _err(("\n" if self.stream else "") + f"  ✓ beat {beat.index}: {len(beat.text.split())} words, "
             f"{beat.prompt_tokens}+{beat.completion_tokens} tokens, {beat.seconds:.1f} s" + (f"; scores {scores}" if scores else ""))

    def chapter_saved(self, beats: int) -> None:
        self.saved = beats

    def stopped(self, done: int, total: int) -> None:
        self.stopped_after = done

    def note(self, message: str) -> None:
        self.end_line()
        _err(f"note: {message}")


def _confirm(question: str) -> bool:
    """A yes/no question on the terminal (only asked when stdin and stderr are one)."""
    sys.stderr.write(_show(question))
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class _TerminalInteraction:
    """Interactive mode on the terminal: drafts and questions on stderr, answers from stdin, edits in $EDITOR."""

    @classmethod
    def open(cls) -> _TerminalInteraction:
        """Refuse, before any model is loaded, a standard input that can hold no answer (/dev/null, an
        empty file, closed). A pipe may still end early: that is an error at the question."""
        import os
        import stat

        from b2p.errors import ConfigError

        problem = None
        try:
            fd = sys.stdin.fileno()
            st = os.fstat(fd)
            if os.isatty(fd):
                pass
            elif stat.S_ISREG(st.st_mode) and os.lseek(fd, 0, os.SEEK_CUR) >= st.st_size:
                problem = "it is an empty file"
            elif stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
                problem = f"it is {os.devnull}"
        except (AttributeError, ValueError):  # no stdin, or not a real file (a test's stand-in)
            problem = "it is closed" if sys.stdin is None or getattr(sys.stdin, "closed", False) else None
        except OSError:
            problem = "it is closed"
        if problem:
            raise ConfigError(f"interactive mode reads your answers from standard input, but {problem}; "
                              "run it in a terminal or pipe in the answers, or use --mode sequential")
        return cls()

    def stream(self, piece: str) -> None:
        sys.stderr.write(_show(piece))
        sys.stderr.flush()

    def show(self, text: str) -> None:
        _err("\n" + text)

    def ask(self, question: str) -> str | None:
        sys.stderr.write(_show(question))
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            sys.stderr.write("\n")  # the question is still open on its line: what follows goes below it
        return line.rstrip("\r\n") if line else None

    def edit(self, text: str) -> str:
        import click

        edited = click.edit(text, extension=".md")
        return text if edited is None else edited


def _generation_stopped(events: _Terminal, output: Path | None, err: BaseException) -> None:
    """Keep what is finished, and say how to go on, in one line."""
    events.end_line()
    trace = events.trace
    done, total = (events.saved if output is not None else len(trace.beats)), trace.totals.beats
    from b2p.trace import trace_path

    if output is not None and done == 0 and not trace_path(output).exists():  # nothing to resume from
        hint = f"nothing was saved in {output}; run the same command again"
    elif output is not None:
        hint = f"{done} of {total} beats are saved in {output}" + _go_on(events, done, total)
    else:
        from b2p.writer import render_chapter

        if done:
            _echo(render_chapter(trace), nl=False)
        hint = f"{done} of {total} beats finished" + (" (printed above)" if done else "") + "; use -o CHAPTER.md so a run can be resumed"
    if isinstance(err, KeyboardInterrupt):
        _err(f"interrupted; {hint}")
        raise typer.Exit(130)
    _err(f"error: {' '.join(str(err).split())}; {hint}")
    raise typer.Exit(getattr(err, "exit_code", 1))


def _go_on(events: _Terminal, done: int, total: int) -> str:
    """How to finish what a stopped run set out to do: resume a partial chapter, or rewrite the beats left as they were."""
    if done < total:
        return "; run the same command with --resume to continue"
    left = [i for i in events.targets if i not in events.written]
    if left:
        listed = ",".join(map(str, left))
        return f"; beat{'s' if len(left) > 1 else ''} {listed} {'are' if len(left) > 1 else 'is'} as before (--only {listed} rewrites them)"
    return ""


def _render_summary(events: _Terminal, output: Path | None, wall: float) -> None:
    trace = events.trace
    if events.stopped_after is not None:
        _err(f"stopped after {events.stopped_after} of {trace.totals.beats} beats" + (_go_on(events, events.stopped_after, trace.totals.beats) if output else ""))
    written = [b for b in trace.beats if b.index in events.written]
    if not written:
        return
    columns = ["beat", "words", "prompt tok", "reply tok", "seconds", "tok/s", "cost $"]
    table = _Table(f"{trace.model} · {trace.mode}", columns, numeric=tuple(columns), err=True)

    def cost(c: float | None) -> str:
        return "?" if c is None else f"{c:.4f}"

    for b in written:
        tps = f"{b.completion_tokens / b.seconds:.1f}" if b.seconds else ""
        table.row(b.index, len(b.text.split()), b.prompt_tokens, b.completion_tokens, f"{b.seconds:.1f}", tps, cost(b.cost))
    t = trace.totals
    table.row("chapter", sum(len(b.text.split()) for b in trace.beats), t.prompt_tokens, t.completion_tokens,
              f"{t.seconds:.1f}", f"{t.tokens_per_second or 0:.1f}", cost(t.cost), bold=True)
    table.print()
    where = "the chapter is on stdout"
    if output is not None:
        from b2p.trace import trace_path

        where = f"wrote {output} and {trace_path(output)}"
    _err(f"{where} ({t.beats_done} of {t.beats} beats); this run took {wall:.1f} s; the chapter took {t.requests} model requests")


def _render_dry_run(dry) -> None:  # noqa: ANN001
    """Each prompt on stdout; the token counts as a table on stderr."""
    plan = dry.plan
    for d in dry.prompts:
        which = f"beat {d.targets[0]}" if len(d.targets) == 1 else f"beats {d.targets[0]}–{d.targets[-1]}"
        names = ", ".join(p.name for i in d.targets for p in plan.picks(i)) if len(d.targets) == 1 else f"{len(plan.union(d.targets)[0])} entries"
        _echo(f"===== {which}: {d.prompt.prompt_tokens} prompt tokens + up to {d.prompt.max_tokens} for the reply; lore: {names or 'none'}")
        for m in d.prompt.messages:
            _echo(f"----- {m['role']}\n{m['content']}")
        _echo("")
    table = _Table(f"dry run · {dry.model} · context {dry.context_window} tokens",
                   ["beat", "lore", "prompt tok", "reply tok", "left for story", "cut to fit"],
                   numeric=("lore", "prompt tok", "reply tok", "left for story"), err=True)
    for d in dry.prompts:
        which = str(d.targets[0]) if len(d.targets) == 1 else f"{d.targets[0]}–{d.targets[-1]}"
        table.row(which, len(plan.union(d.targets)[0]), d.prompt.prompt_tokens, d.prompt.max_tokens, d.story_room, ", ".join(d.prompt.lore_cut))
    table.print()


_NOT_YET = ("held back", "no longer true")  # a left-out reason from the book's gating: no score to show


def _render_ledger(ledger) -> None:  # noqa: ANN001
    for b in ledger.beats:
        total = sum(p.tokens for p in b.lore)
        table = _Table(f"{b.index}. {b.text}", ["entry", "kind", "reason", "score", "matched", "tokens"], numeric=("score", "tokens"))
        for p in b.lore:
            table.row(p.name, p.kind, p.reason, f"{p.score:.2f}", p.match or "", f"{p.tokens} (lead)" if p.shortened else p.tokens)
        table.print()
        line = f"  {len(b.lore)} entries, {total} tokens"
        if b.resolver:
            line += f"; {b.resolver}"
        if b.dropped:
            line += "; left out: " + ", ".join(f"{d.name} ({d.reason}{'' if d.reason.startswith(_NOT_YET) else f' {d.score:.2f}'})" for d in b.dropped)
        _echo(line)
        _echo()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
