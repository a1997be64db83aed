"""The docs test's reading of fenced blocks and its output comparisons."""

from tests.docs.markdown import examples, json_values, shape_differences, text_differences


def test_blocks_are_read_with_their_flags_and_outputs(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n\n```sh\necho '{\"a\": 1}'\n```\n\nprose\n\n```json\n{\"a\": 2}\n```\n\n"
                   "- a list item:\n\n  ```sh no-test\n  kubectl apply -f x\n  ```\n\n"
                   "```sh fails\nfalse\n```\n```text\nerror\n```\n```text no-test\nnot an output\n```\n"
                   "```\na picture\n```\n")
    runnable, skipped = examples(doc)
    assert [e.block.text for e in runnable] == ["echo '{\"a\": 1}'\n", "false\n"]
    assert [e.fails for e in runnable] == [False, True]
    assert [[o.lang for o in e.outputs] for e in runnable] == [["json"], ["text"]]
    assert [b.text for b in skipped] == ["kubectl apply -f x\n"]


def test_json_shape_compares_keys_types_and_list_lengths_not_values():
    assert shape_differences({"a": "x", "n": [1]}, {"a": "y", "n": [2], "extra": True}) == []
    assert shape_differences({"a": "x"}, {"b": "x"}) == ["$.a: shown, but absent"]
    assert shape_differences({"a": "1"}, {"a": 1}) == ["$.a: shown as string, is number"]
    assert shape_differences({"donors": []}, {"donors": [{}]}) == ["$.donors: shown with 0 items, has 1"]


def test_json_values_reads_a_stream_and_skips_plain_lines():
    assert json_values('{"a": 1}\nplain text\n[1, 2]\n"s"\n') == [{"a": 1}, [1, 2], "s"]


def test_text_compares_lines_with_ellipsis_wildcards():
    assert text_differences("error: ...\n  reason: X\n", "error: anything here\n  reason: X\n") == []
    assert text_differences("a\n", "b\n") == ["shown 'a', printed 'b'"]
    assert text_differences("a\n", "a\nb\n")[0].startswith("shown 1 lines, printed 2")
