"""YAML in and out of a bible: front matter and ``bible.yaml`` read with the parser's own positions,
inside limits that keep a hostile document from exhausting the machine; entry files written back.

Reading is three steps. The parser's event stream (iterative, so any depth is safe to look at)
is checked first: nesting deeper than ``MAX_DEPTH`` levels, or aliases that would expand the
document past ``MAX_VALUES`` values ("billion laughs"), or an alias that refers to itself, are
refused in one line naming where. Only then is the node tree composed (its marks give every key's
line, nested ones included, see ``YamlDoc.line``) and turned into plain data: text, numbers,
booleans, null, lists and mappings. Dates stay text, and the tags that would build other Python
objects (binary, sets, ordered pairs) are refused, so whatever is read can be stored as JSON.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from b2p.errors import BibleError

MAX_DEPTH = 100  # b2p's own fields use 3 levels; an imported entry rarely more than 6
MAX_VALUES = 500_000  # about the most a 1 MB entry file can spell out without aliases

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same events, faster


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe YAML that builds JSON-shaped data only."""


def _int(loader: Any, node: yaml.ScalarNode) -> int:
    try:
        return SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:  # past Python's int-from-text limit (4,300 digits)
        limit = sys.get_int_max_str_digits()
        raise ConstructorError(None, None, f"a number longer than {limit:,} digits", node.start_mark) from None


def _as_text(loader: Any, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _refuse(loader: Any, node: yaml.Node) -> Any:  # noqa: ARG001
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConstructorError(None, None, f"the tag {tag} is not allowed: use text, numbers, true/false, lists and mappings", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


@dataclass
class YamlDoc:
    """Parsed YAML and where each of its keys is."""

    data: Any
    root: yaml.Node | None
    first_line: int  # the file line of the YAML text's first line

    def line(self, *path: str | int) -> int:
        """The file line of the key at ``path`` (``line("imported", "order")``), or of the deepest
        part of it that exists; the document's first line when nothing does."""
        node, found = self.root, self.first_line
        for part in path:
            if isinstance(node, yaml.MappingNode):
                hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
                if hit is None:
                    break
                found, node = hit[0].start_mark.line + self.first_line, hit[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                found = node.start_mark.line + self.first_line
            else:
                break
        return found


def _check_events(text: str, shown: str, first_line: int) -> None:
    """Refuse documents too deep or too big once aliases are expanded, before any tree is built."""
    open_: list[list[Any]] = []  # per open collection: [anchor, deepest level below it]
    done: dict[str, tuple[int, int]] = {}  # anchor → (values once expanded, levels)
    values = 0

    def refuse(event: yaml.Event, what: str) -> BibleError:
        return BibleError(f"{shown}:{event.start_mark.line + first_line}: {what}")

    def close(levels: int) -> None:
        if open_:
            open_[-1][1] = max(open_[-1][1], levels)

    sizes: list[int] = []  # values counted when each open collection started
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(open_) >= MAX_DEPTH:
                raise refuse(event, f"nested more than {MAX_DEPTH} levels deep; flatten it")
            open_.append([event.anchor, 0])
            sizes.append(values)
            values += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, below = open_.pop()
            start = sizes.pop()
            if anchor is not None:
                done[anchor] = (values - start, below + 1)
            close(below + 1)
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor is not None:
                done[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in done:
                if any(a == event.anchor for a, _ in open_):
                    raise refuse(event, f"the alias *{event.anchor} refers to itself; write the value out")
                continue  # undefined: the composer reports it with its own message
            count, levels = done[event.anchor]
            values += count
            if values > MAX_VALUES:
                raise refuse(event, f"aliases (*{event.anchor}) expand this YAML past {MAX_VALUES:,} values; write the values out")
            if len(open_) + levels > MAX_DEPTH:
                raise refuse(event, f"the alias *{event.anchor} nests it more than {MAX_DEPTH} levels deep; flatten it")
            close(levels)


def load_yaml(text: str, shown: str, first_line: int = 1, label: str = "bad YAML") -> YamlDoc:
    """Parse ``text`` (which starts on file line ``first_line`` of ``shown``) or raise one BibleError
    line ``shown:line: {label}: problem``."""
    try:
        _check_events(text, shown, first_line)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        if _Base is not yaml.SafeLoader and isinstance(err, (yaml.scanner.ScannerError, yaml.parser.ParserError)):
            err = _pure_error(text) or err  # libyaml's syntax messages are terser and its marks differ
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + first_line if mark is not None else first_line
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise BibleError(f"{shown}:{line}: {label}: {problem}") from None
    except RecursionError:  # the event check bounds depth; this is the last guard, not the path taken
        raise BibleError(f"{shown}:{first_line}: {label}: nested too deeply") from None
    return YamlDoc(data, root, first_line)


def _pure_error(text: str) -> yaml.YAMLError | None:
    """The pure-Python parser's account of a syntax error: it names the character and the place."""
    try:
        for _ in yaml.parse(text, Loader=yaml.SafeLoader):
            pass
    except yaml.YAMLError as err:
        return err
    return None


def shape_problem(value: Any) -> str | None:
    """Why parsed data (a lorebook's JSON) could not be kept in a bible entry, or None: the same
    depth and size limits the reader applies. Says where, as a path like ``entries.3.extensions``."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 0, ())]
    count = 0
    while stack:
        item, depth, path = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return f"holds more than {MAX_VALUES:,} values"
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if depth >= MAX_DEPTH:
            where = ".".join(path[:4]) + (".…" if len(path) > 4 else "")
            return f"nested more than {MAX_DEPTH} levels deep" + (f" (at {where})" if where else "")
        stack.extend((v, depth + 1, (*path, str(k))) for k, v in children)
    return None


# ---------------------------------------------------------------- writing


class _EntryDumper(yaml.SafeDumper):
    """Safe YAML without anchors, where no line of a multi-line string can read as the closing '---'."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(c in value for c in "\n\r\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_EntryDumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    """Block-style YAML, keys in their order; a value never folds onto a second line, so every
    key's line is where a reader looks for it."""
    return yaml.dump(data, Dumper=_EntryDumper, sort_keys=False, allow_unicode=True, width=2**31 - 1)


def render_entry(front: dict[str, Any], body: str) -> str:
    """A bible entry file: YAML front matter between '---' lines, a blank line, the body."""
    return f"---\n{dump_yaml(front)}---\n\n{body.strip()}\n"
