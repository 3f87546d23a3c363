"""Read a YAML config into a frozen :class:`~kelly_edge.config.schema.Config`, or say what is wrong.

``yaml.safe_load`` semantics, but built from the node tree of ``yaml.compose`` (SafeLoader) so
that every message carries the line: ``config.yaml:12: generator.melody.channel must be 1-16,
got 17``. All problems in a file are collected and raised together as one
:class:`~kelly_edge.errors.ConfigError` whose ``messages`` are sorted by line. Unknown keys,
duplicate keys, wrong types (YAML bools are not numbers) and out-of-range values are errors;
a missing key or section, an empty section (``audio:``) or an empty file means the defaults.
Merge keys (``<<: *anchor``) work as in safe_load.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from kelly_edge.config.schema import (
    Config,
    FrozenMap,
    KeySpec,
    NamedSpec,
    SectionSpec,
    closest,
    default_config,
    required_keys,
    schema_of,
    show,
    state_path,
)
from kelly_edge.errors import ConfigError, one_line
from kelly_edge.fileio import kind_of

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"


class _Context:
    """Per-parse state: the source name for messages, the collected errors and a constructor."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int, str]] = []
        self.lines: dict[str, int] = {}  # dotted leaf key -> its line, for cross-key messages
        self.constructor = SafeConstructor()

    def error(self, line: int, text: str) -> None:
        self.errors.append((line, f"{self.source}:{line}: {text}"))

    def construct(self, node: Node, path: str) -> tuple[Any, bool]:
        """The Python value of a leaf node as safe_load builds it; ``(None, False)`` after an error."""
        try:
            return self.constructor.construct_object(node, deep=True), True
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err)
            self.error(_line(node), f"{path} cannot be read: {problem}")
            return None, False


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _pairs(node: MappingNode, prefix: str, ctx: _Context) -> dict[str, tuple[Node, Node]]:
    """``{key text: (key node, value node)}`` of a mapping; reports duplicate and non-text keys."""
    seen: dict[str, int] = {}
    for knode, _ in node.value:
        if knode.tag == _MERGE_TAG or not isinstance(knode, ScalarNode):
            continue
        name = str(knode.value)
        if name in seen:
            ctx.error(_line(knode), f"duplicate key {_join(prefix, name)} (first at line {seen[name]})")
        else:
            seen[name] = _line(knode)
    try:
        ctx.constructor.flatten_mapping(node)  # resolve ``<<: *anchor`` merges in place, as safe_load
    except yaml.YAMLError as err:
        ctx.error(_line(node), f"{prefix or 'top level'} merge (<<) failed: {getattr(err, 'problem', err)}")
    pairs: dict[str, tuple[Node, Node]] = {}
    for knode, vnode in node.value:
        if knode.tag == _MERGE_TAG:  # only left when the merge failed, reported above
            continue
        if not isinstance(knode, ScalarNode):
            ctx.error(_line(knode), f"{prefix or 'top level'} has a key that is not a name")
            continue
        pairs[str(knode.value)] = (knode, vnode)  # later wins, as in safe_load
    return pairs


def _build(cls: type, default: Any, node: MappingNode, prefix: str, ctx: _Context) -> Any:
    """A ``cls`` instance: ``default`` with every valid key present in ``node`` replaced."""
    rows = {row.name: row for row in schema_of(cls)}
    pairs = _pairs(node, prefix, ctx)
    n_errors = len(ctx.errors)
    changes: dict[str, Any] = {}
    deferred: list[tuple[NamedSpec, Node, str]] = []
    for name, (knode, vnode) in pairs.items():
        path = _join(prefix, name)
        row = rows.get(name)
        if row is None:
            near = closest(name, list(rows))
            hint = f" (did you mean {_join(prefix, near)}?)" if near else f" (valid keys: {', '.join(rows)})"
            ctx.error(_line(knode), f"unknown key {path}{hint}")
        elif isinstance(row, SectionSpec):
            changes[name] = _section(row, getattr(default, name), vnode, path, ctx)
        elif isinstance(row, NamedSpec):  # after the other keys: entries may start from them
            deferred.append((row, vnode, path))
        else:
            value, ok = _leaf(row, vnode, path, ctx)
            if ok:
                changes[name] = value
    obj = dataclasses.replace(default, **changes) if changes else default
    if deferred:
        obj = dataclasses.replace(obj, **{row.name: _named(row, obj, vnode, path, ctx) for row, vnode, path in deferred})
    valid = len(ctx.errors) == n_errors  # cross-key rules only when every key on its own is valid...
    for relation in getattr(cls, "RELATIONS", ()):
        if valid or relation.always:  # ...unless the rule copes with defaults in place of wrong values
            problem = relation.check(obj, prefix)
            if not problem:
                continue
            present = [pairs[k][0] for k in relation.keys if k in pairs]
            fallback = _line(present[0]) if present else _line(node)
            if isinstance(problem, str):
                ctx.error(fallback, problem)
                continue
            for blamed, text in [problem] if isinstance(problem, tuple) else problem:
                ctx.error(ctx.lines.get(_join(prefix, blamed), fallback), text)
    return obj


_ABSENT = object()  # a required key of a named entry not (yet) given


def _named(row: NamedSpec, parent: Any, node: Node, path: str, ctx: _Context) -> FrozenMap[Any]:
    """A named row: ``{name: entry}``, each entry an ``row.item`` section (see ``schema.named``)."""
    if _is_null(node):
        return FrozenMap()
    keys = ", ".join(r.name for r in schema_of(row.item))
    if not isinstance(node, MappingNode):
        value, ok = ctx.construct(node, path)
        if ok:
            ctx.error(_line(node), f"{path} must be a mapping of names to sections ({keys}), got {show(value)}")
        return FrozenMap()
    required = required_keys(row.item)
    entries: list[tuple[str, Any]] = []
    for name, (knode, vnode) in _pairs(node, path, ctx).items():
        sub = _join(path, name)
        if row.base is not None:
            start = row.base(parent)
        else:
            start = row.item(**{k: _ABSENT for k in required})
        if _is_null(vnode):
            entry = start
        elif not isinstance(vnode, MappingNode):
            value, ok = ctx.construct(vnode, sub)
            if ok:
                ctx.error(_line(vnode), f"{sub} must be a mapping of keys ({keys}), got {show(value)}")
            continue
        else:
            entry = _build(row.item, start, vnode, sub, ctx)
        given = {str(k.value) for k, _ in vnode.value} if isinstance(vnode, MappingNode) else set()
        missing = [k for k in required if getattr(entry, k) is _ABSENT and k not in given]
        if missing:  # (a given but invalid required key has its own message)
            docs = {r.name: r.rule.doc for r in schema_of(row.item) if isinstance(r, KeySpec)}
            what = "; ".join(f"{k}: {docs[k]}" for k in missing)
            ctx.error(_line(knode), f"{sub} is missing {', '.join(missing)} ({what})")
        if any(getattr(entry, k) is _ABSENT for k in required):
            continue
        entries.append((name, entry))
    return FrozenMap(entries)


def _section(row: SectionSpec, default: Any, node: Node, path: str, ctx: _Context) -> Any:
    if _is_null(node):  # "audio:" with every line below commented out
        return default
    if not isinstance(node, MappingNode):
        value, ok = ctx.construct(node, path)
        if ok:
            keys = ", ".join(r.name for r in schema_of(row.cls))
            ctx.error(_line(node), f"{path} must be a mapping of keys ({keys}), got {show(value)}")
        return default
    return _build(row.cls, default, node, path, ctx)


def _leaf(row: KeySpec, node: Node, path: str, ctx: _Context) -> tuple[Any, bool]:
    raw, ok = ctx.construct(node, path)
    if not ok:
        return None, False
    ctx.lines[path] = _line(node)
    value, problem = row.check(raw)
    if problem:
        ctx.error(_line(node), f"{path} {problem}")
        return None, False
    return value, True


def _problem(err: yaml.MarkedYAMLError) -> str:
    """The parser's complaint; a bare "but found ..." is completed by the context it refers to."""
    problem = err.problem or err.context or "invalid YAML"
    if err.context and problem.startswith("but "):
        return f"{err.context}, {problem}"
    return problem


def _one_line(message: str) -> str:
    """A message as one printable line: a key or value holding a newline or control character
    (anything is a valid YAML key) is shown escaped, so each problem stays one line."""
    return one_line(message)


def parse_config(text: str, source: str = "<string>") -> Config:
    """The Config described by YAML ``text``; ``source`` names it in messages and ``Config.source``.

    Raises ConfigError listing every problem (``<source>:<line>: <dotted key> ...``).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([_one_line(f"{source}:{line}: YAML syntax error: {_problem(err)}")]) from err
    except yaml.YAMLError as err:  # e.g. a control character the reader refuses
        position = getattr(err, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
        problem = str(err).splitlines()[0].rstrip(":")
        raise ConfigError([_one_line(f"{source}:{line}: YAML error: {problem}")]) from err
    except RecursionError as err:  # the parser recurses per nesting level
        raise ConfigError([f"{source}:1: YAML nested too deeply (a config needs a few levels)"]) from err
    ctx = _Context(source)
    config = default_config()
    if root is not None and not _is_null(root):
        if isinstance(root, MappingNode):
            try:
                config = _build(Config, config, root, "", ctx)
            except RecursionError as err:
                raise ConfigError([f"{source}:1: YAML nested too deeply (a config needs a few levels)"]) from err
        else:
            kind = "a list" if root.id == "sequence" else f"the value {root.value!r}"
            sections = ", ".join(r.name for r in schema_of(Config))
            ctx.error(_line(root), f"the top level must be a mapping of sections ({sections}), got {kind}")
    config = dataclasses.replace(config, source=source)
    if not ctx.errors:
        _state_files_are_not_the_config(config, ctx)
    if ctx.errors:
        raise ConfigError([_one_line(msg) for _, msg in sorted(ctx.errors, key=lambda e: e[0])])
    return config


def _state_files_are_not_the_config(config: Config, ctx: _Context) -> None:
    """``state.path`` and ``state.calibration`` may not name the config file itself (the box
    would replace its own config with JSON, and the next start would fail)."""
    if config.source.startswith("<") or not os.path.isfile(config.source):
        return
    from kelly_edge.live.calibration import calibration_path

    for key, path in (("state.path", state_path(config)), ("state.calibration", calibration_path(config))):
        try:
            same = path.exists() and os.path.samefile(path, config.source)
        except OSError:
            same = False
        if same:
            ctx.error(ctx.lines.get(key, 1), f"{key} {str(path)!r} is this config file itself "
                                             f"(the box writes JSON there: give another file, e.g. state.json)")


MAX_CONFIG_BYTES = 1 << 20
"""A config larger than this is refused unread: the shipped default is ~11 kB, and a file of many
megabytes (or a link to /dev/zero) is a mistake whose parse would take seconds and memory."""
IN_PROCESS_BYTES = 32 << 10
"""Above this, :func:`parse_config_isolated` parses in a child process: pure-Python YAML holds
the GIL for seconds per megabyte, which would make the live box's threads late."""
ISOLATED_TIMEOUT_S = 60.0


def read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the config file at ``path``, read with bounds: a regular file only (opened
    non-blocking, so a FIFO or device never blocks the reader), at most :data:`MAX_CONFIG_BYTES`.

    Raises ConfigError (one line) naming the problem and the fix.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError as err:
        raise ConfigError(f"{_one_line(name)}: is a folder, not a config file (give the path of a .yaml file)") from err
    except FileNotFoundError as err:
        raise ConfigError(
            f"{_one_line(name)}: config file not found (check the path, or start from a copy of config/default.yaml)"
        ) from err
    except OSError as err:
        raise ConfigError(f"{_one_line(name)}: cannot read config file: {err.strerror or err} (check its permissions)") from err
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{_one_line(name)}: is a folder, not a config file (give the path of a .yaml file)")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{_one_line(name)}: is {kind_of(st.st_mode)}, not a regular file "
                              "(give the path of a .yaml file)")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{_one_line(name)}: {st.st_size / 2**20:.1f} MB is larger than a config may be "
                              f"({MAX_CONFIG_BYTES // 2**20} MB; is it the right file?)")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES:  # the file may grow while it is read
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{_one_line(name)}: larger than a config may be "
                              f"({MAX_CONFIG_BYTES // 2**20} MB; is it the right file?)")
        return b"".join(chunks)
    except OSError as err:
        raise ConfigError(f"{_one_line(name)}: cannot read config file: {err.strerror or err} (check its permissions)") from err
    finally:
        os.close(fd)


def parse_config_bytes(data: bytes, source: str) -> Config:
    """:func:`parse_config` of a file's bytes (UTF-8, a BOM allowed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{_one_line(source)}:{line}: not UTF-8 text (save the file as UTF-8)") from err
    return parse_config(text, source)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the YAML file at ``path`` (an empty file gives every default).

    Raises ConfigError: one line when the file cannot be read, else one per problem.
    """
    return parse_config_bytes(read_config_bytes(path), os.fspath(path))


_CHILD = "from kelly_edge.config.loader import _child_main; _child_main()"


def parse_config_isolated(data: bytes, source: str, *, cancel: threading.Event | None = None) -> Config:
    """:func:`parse_config_bytes`, in a child process when ``data`` is larger than
    :data:`IN_PROCESS_BYTES` (the result comes back pickled), so a big file never holds this
    process's GIL. ``cancel`` set (the box stopping) kills the child. Raises ConfigError."""
    if len(data) <= IN_PROCESS_BYTES:
        return parse_config_bytes(data, source)
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))}
    with tempfile.TemporaryFile() as answer:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, source], stdin=subprocess.PIPE, stdout=answer,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True)
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            deadline = time.monotonic() + ISOLATED_TIMEOUT_S
            while proc.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    raise ConfigError(f"{_one_line(source)}: reading the config was stopped "
                                      f"(too slow to parse; is it the right file?)")
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        answer.seek(0)
        try:
            kind, value = pickle.loads(answer.read())
        except Exception as err:
            raise ConfigError(f"{_one_line(source)}: the config parser failed (exit {proc.returncode})") from err
    if kind == "ok":
        return value
    raise ConfigError(list(value))


def _child_main() -> None:
    """The child of :func:`parse_config_isolated`: bytes on stdin, a pickled answer on stdout."""
    source = sys.argv[1]
    try:
        answer: tuple[str, Any] = ("ok", parse_config_bytes(sys.stdin.buffer.read(), source))
    except ConfigError as err:
        answer = ("error", list(err.messages))
    sys.stdout.buffer.write(pickle.dumps(answer))


def check_config_main(path: str) -> int:
    """CLI verdict: ``OK: <path>`` on stdout and 0 when valid, else each problem on stderr and 1."""
    try:
        load_config(path)
    except ConfigError as err:
        for message in err.messages:
            print(message, file=sys.stderr)
        return 1
    print(f"OK: {path}")
    return 0
