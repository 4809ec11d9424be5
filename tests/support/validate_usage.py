"""Validates usage event details against schemas/ (JSON Schema 2020-12), for the tests.

    validate_usage.py SCHEMA_DIR < events.jsonl

Each stdin line is {"detail_type": ..., "detail": {...}}. Prints
{"validated": N, "errors": ["event 3 (mozaiks.usage.execution) at $.status: ..."]} and exits 0;
exits non-zero with an install hint when the validator is missing or cannot check formats.
"""

import json
import pathlib
import sys

try:
    from jsonschema import Draft202012Validator
except ImportError:
    sys.exit("python3 cannot import jsonschema: pip install jsonschema rfc3339-validator")

SCHEMAS = {
    "mozaiks.usage.execution": "usage-execution.v1.json",
    "mozaiks.usage.llm": "usage-llm.v1.json",
}


def main():
    directory = pathlib.Path(sys.argv[1])
    checker = Draft202012Validator.FORMAT_CHECKER
    for needed in ("date-time", "uuid"):
        if needed not in checker.checkers:
            sys.exit(f"jsonschema cannot check format {needed!r}: pip install rfc3339-validator")
    validators = {}
    for detail_type, name in SCHEMAS.items():
        schema = json.loads((directory / name).read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        validators[detail_type] = Draft202012Validator(schema, format_checker=checker)
    errors = []
    count = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        count += 1
        item = json.loads(line)
        validator = validators.get(item["detail_type"])
        if validator is None:
            errors.append(f"event {count}: no schema for DetailType {item['detail_type']!r}")
            continue
        for error in validator.iter_errors(item["detail"]):
            errors.append(f"event {count} ({item['detail_type']}) at {error.json_path}: {error.message}")
    print(json.dumps({"validated": count, "errors": errors}))


if __name__ == "__main__":
    main()
