"""The bounded YAML loader: limits checked before objects are built (issue 12, class 3)."""

from __future__ import annotations

import time

import pytest

from simulator.errors import EdgesimError
from simulator.yamlio import MAX_DEPTH, parse_yaml, read_yaml


def test_plain_documents_load_as_safe_load_does():
    text = "a: &x [1, 2.5, true, null]\nb: *x\nc: {d: e}\nm: {<<: {k: 1}, j: 2}\n"
    assert parse_yaml(text) == {"a": [1, 2.5, True, None], "b": [1, 2.5, True, None], "c": {"d": "e"},
                                "m": {"k": 1, "j": 2}}  # fmt: skip
    assert parse_yaml("") is None


def test_alias_bomb_is_refused_before_expansion():
    bomb = "l0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
    )
    start = time.monotonic()
    # l5 holds 9**6 + ... < 10**6 values, l6 (line 7) is the first past the limit with 9**7
    with pytest.raises(EdgesimError, match="expands to more than 1,000,000 values at line 7"):
        parse_yaml(bomb)
    assert time.monotonic() - start < 5


def test_many_aliases_of_a_small_anchor_are_fine():
    text = "a: &s [1, 2]\nb: [" + ", ".join(["*s"] * 1000) + "]\n"
    assert len(parse_yaml(text)["b"]) == 1000


def test_depth_limit_is_exact():
    assert parse_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(EdgesimError, match=f"nested {MAX_DEPTH + 1} levels deep at line 1"):
        parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_very_deep_document_raises_no_recursion_error():
    with pytest.raises(EdgesimError, match="nested"):
        parse_yaml("a:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)))


@pytest.mark.parametrize("text", ["&a [*a]", "&a {k: *a}", "&a [1, [2, *a]]"])
def test_self_referencing_alias_is_refused(text):
    with pytest.raises(EdgesimError, match="containing itself"):
        parse_yaml(text)


def test_python_tags_are_refused():
    with pytest.raises(EdgesimError, match="invalid YAML"):
        parse_yaml("!!python/object/apply:os.system ['true']")


def test_integer_beyond_pythons_conversion_limit_is_one_line():
    with pytest.raises(EdgesimError, match="invalid YAML: Exceeds the limit"):
        parse_yaml("n: " + "9" * 5000)


def test_read_yaml_refuses_non_regular_files(tmp_path):
    with pytest.raises(EdgesimError, match="not a regular file"):
        read_yaml("/dev/zero", "plan")
    with pytest.raises(EdgesimError, match="is a directory"):
        read_yaml(tmp_path, "plan")
