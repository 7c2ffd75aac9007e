import pytest

from assistant import structured
from assistant.errors import GenerationError

SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string", "minLength": 1},
                         "age": {"type": "integer", "minimum": 0},
                         "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}}


def test_valid_value_has_no_errors():
    assert structured.errors({"name": "Maya", "age": 30, "tags": ["a"]}, SCHEMA) == []


@pytest.mark.parametrize("value,fragment", [
    ({"name": "Maya"}, "missing 'age'"),
    ({"name": "Maya", "age": "30"}, "expected integer"),
    ({"name": "Maya", "age": True}, "expected integer"),
    ({"name": "", "age": 3}, "shorter"),
    ({"name": "M", "age": -1}, "below"),
    ({"name": "M", "age": 1, "tags": ["c"]}, "not in"),
    ([], "expected object"),
])
def test_invalid_values_are_reported(value, fragment):
    assert any(fragment in e for e in structured.errors(value, SCHEMA))


def test_parse_cut_json_is_a_clear_failure():
    with pytest.raises(GenerationError, match="not complete JSON"):
        structured.parse('{"name": "Ma', SCHEMA)
    with pytest.raises(GenerationError, match="does not fit the schema"):
        structured.parse('{"name": "Maya"}', SCHEMA)
    assert structured.parse('{"name": "Maya", "age": 3}', SCHEMA) == {"name": "Maya", "age": 3}
