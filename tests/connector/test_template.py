"""The request template language: paths, optional parts, and value expressions."""

from __future__ import annotations

import pytest

from connector._template import MISSING, TemplateError, evaluate, expand_path, expression_inputs, path_inputs


@pytest.mark.parametrize(
    ("template", "inputs", "path"),
    [
        ("/{recordType}/{recordId}", {"recordType": "Leads", "recordId": "a/b c"}, "/Leads/a%2Fb%20c"),
        ("/{+recordType}", {"recordType": "settings/taxes"}, "/settings/taxes"),
        ("[/{+p}/{pid}]/{+t}", {"t": "tasks"}, "/tasks"),
        ("[/{+p}/{pid}]/{+t}", {"t": "tasks", "p": "projects", "pid": "8"}, "/projects/8/tasks"),
        ("[/{+p}/{pid}]/{+t}", {"t": "tasks", "p": "projects"}, "/tasks"),  # a half-given group is left out
    ],
)
def test_paths(template: str, inputs: dict[str, str], path: str) -> None:
    assert expand_path(template, inputs) == path


@pytest.mark.parametrize("value", ["../oauth", "a/../../b", "./x"])
def test_reserved_expansion_refuses_dot_segments(value: str) -> None:
    with pytest.raises(TemplateError, match=r"'\.' or '\.\.'"):
        expand_path("/{+url}", {"url": value})


def test_missing_required_path_input() -> None:
    with pytest.raises(TemplateError, match="recordId"):
        expand_path("/{recordType}/{recordId}", {"recordType": "Leads"})


def test_path_inputs_split_always_and_optional() -> None:
    assert path_inputs("[/{+p}/{pid}]/{+t}/{id}") == ({"t", "id"}, {"p", "pid"})
    with pytest.raises(TemplateError):
        path_inputs("[/{p}")


def test_expressions() -> None:
    inputs = {"fields": ["A", "B"], "kv": [{"key": "x", "value": 1}], "obj": {"y": 2, "x": 3}}
    assert evaluate({"$input": "fields", "$join": ","}, inputs) == "A,B"
    assert evaluate({"$input": "absent"}, inputs) is MISSING
    assert evaluate({"a": {"$input": "absent"}, "b": 1}, inputs) == {"b": 1}
    assert evaluate({"$merge": [{"$input": "obj"}, {"$input": "kv"}]}, inputs) == {"y": 2, "x": 1}
    files = evaluate({"$files": {"$input": "kv"}, "$names": {"z": "ignored"}}, inputs)
    assert files == {"x": {"content": 1, "filename": "x"}}


def test_expression_inputs_and_unknown_operators() -> None:
    assert expression_inputs({"data": [{"$merge": [{"$input": "a"}, {"$input": "b"}]}]}) == {"a", "b"}
    with pytest.raises(TemplateError, match=r"\$inptu"):
        expression_inputs({"$inptu": "a"})
