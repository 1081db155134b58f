"""Reading the YAML files users write (model specs, plans, hardware profiles): safe and bounded.

Only the safe loader's tags are built (no Python objects), and a document is measured before any object is
built from it, because YAML can describe far more than it spells out: nine anchors each aliased nine times
expand a 1 KB file into 9^9 strings (an alias bomb), and a 5000-deep nesting overflows the constructor's
recursion. The limits, far above any real profile, plan or spec:

- the file is a regular file of at most ``MAX_YAML_BYTES``;
- nesting is at most ``MAX_DEPTH`` collections deep (checked on the parser's event stream, which is flat);
- the document, with every alias expanded, has at most ``MAX_NODES`` nodes (counted on the composed node
  graph, where an alias is a shared node, so counting is linear in the file) and no alias refers to itself.

Every failure is one line saying what went wrong and where in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.errors import EdgesimError
from simulator.limits import regular_file

MAX_YAML_BYTES = 16 * 1024**2
MAX_DEPTH = 64
MAX_NODES = 1_000_000


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document; errors say what could not be read (the caller names the file)."""
    size = regular_file(Path(path), what)
    if size > MAX_YAML_BYTES:
        raise EdgesimError(f"the {what} is {size:,} bytes; edgesim reads YAML files up to {MAX_YAML_BYTES:,}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgesimError(f"not a UTF-8 text file; a {what} is YAML") from None
    except OSError as exc:
        raise EdgesimError(f"cannot read the {what} ({exc.strerror or exc})") from None
    return parse_yaml(text)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` after the depth and expanded-size checks (see the module docstring)."""
    try:
        _check_depth(text)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expanded_size(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise EdgesimError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more digits than Python converts
        raise EdgesimError(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise EdgesimError(f"YAML nested {MAX_DEPTH + 1} levels deep at line {line}; the limit is {MAX_DEPTH}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expanded_size(root: yaml.Node) -> None:
    """Nodes of the document with every alias expanded, computed once per distinct node (iteratively, so no
    recursion limit); a node that contains itself through an alias is refused."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            active.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_NODES:
                line = node.start_mark.line + 1 if node.start_mark else "?"
                raise EdgesimError(
                    f"YAML expands to more than {MAX_NODES:,} values at line {line} (aliases repeat anchors); "
                    "write the data out or use fewer aliases"
                )
            sizes[key] = total
            continue
        if key in active:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise EdgesimError(f"YAML alias at line {line} refers to a collection containing itself")
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active and id(child) not in sizes:
                line = child.start_mark.line + 1 if child.start_mark else "?"
                raise EdgesimError(f"YAML alias at line {line} refers to a collection containing itself")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def dump_yaml(data: Any) -> str:
    """A document as block YAML in the data's own key order (profiles written by edgesim)."""
    return yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)
