#!/usr/bin/env python3
"""JSON-schema checks of GP SERAM messages against the OpenAPI description of the
specification (GlobalPlatform SERAM, spec/gpseram.yaml).

  seram_schema.py --examples        prints the description's examples as JSON
  seram_schema.py < messages.json   validates [{"schema": name, "body": value}, ...]

The description is OpenAPI 3.0, whose schema objects are a JSON Schema draft 4 subset: each
message is checked by a draft 4 validator against `#/components/schemas/<name>` of the whole
document (so its `$ref`s resolve). The `apdu` pattern is not anchored, so it admits any
string; APDUs are also checked against the anchored pattern, the form the schema means.
The description is found at $SERAM_SPEC, else under ../shared/reference/seram/ beside the
repository or its main worktree.
"""

import json
import os
import re
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CANDIDATES = [
    os.environ.get("SERAM_SPEC", ""),
    os.path.join(ROOT, "..", "shared", "reference", "seram", "spec", "gpseram.yaml"),
    os.path.join(ROOT, "..", "..", "shared", "reference", "seram", "spec", "gpseram.yaml"),
]
APDU = re.compile(r"^([0-9A-F]{2})*$")


def load_spec():
    for path in CANDIDATES:
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return yaml.safe_load(f)
    sys.exit("gpseram.yaml not found: set SERAM_SPEC")


def apdus(name, body):
    """The APDU strings of a message, by schema name."""
    if name == "remoteManagementOrder":
        for command in body.get("ramCommands", []):
            yield from command.get("listOfCAPDU", [])
    if name == "remoteManagementReport":
        for response in body.get("ramResponses", []):
            yield from response.get("listOfRAPDU", [])


def validate(spec, messages):
    errors = []
    for i, message in enumerate(messages):
        name, body = message["schema"], message["body"]
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        validator = jsonschema.Draft4Validator(schema)
        for error in validator.iter_errors(body):
            errors.append(f"message {i} ({name}): {error.message} at {list(error.path)}")
        for apdu in apdus(name, body):
            if not APDU.match(apdu):
                errors.append(f"message {i} ({name}): apdu {apdu!r} is not upper-case hex")
    return errors


def main():
    spec = load_spec()
    if sys.argv[1:] == ["--examples"]:
        examples = {k: v["value"] for k, v in spec["components"]["examples"].items()}
        json.dump(examples, sys.stdout)
        return
    messages = json.load(sys.stdin)
    errors = validate(spec, messages)
    for error in errors:
        print(error)
    print(f"{len(messages)} messages, {len(errors)} errors")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
