"""Signature-Error and Accept-Signature-* agree byte for byte with @hellocoop/httpsig 2.x.

Both directions: what the Node package generates we parse, and what we serialize it parses
and regenerates identically. Runs the package itself (tests/interop/node_modules)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aauth_agents.protocol import (
    SIGNATURE_ERROR_CODES,
    InvalidInputError,
    SignatureErrorInfo,
    UnsupportedAlgorithmError,
    error_from_response,
    parse_accept_signature_alg,
    parse_accept_signature_scheme,
    parse_signature_error,
    serialize_accept_signature_alg,
    serialize_accept_signature_scheme,
    serialize_signature_error,
)

pytestmark = pytest.mark.interop

INTEROP = Path(__file__).resolve().parents[1] / "interop"

SCRIPT = r"""
const h = require('@hellocoop/httpsig')
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const out = cases.map((c) => {
  try {
    switch (c.op) {
      case 'genError': return { ok: h.generateSignatureErrorHeader(c.value) }
      case 'parseError': return { ok: h.parseSignatureError(c.value) }
      case 'genScheme': return { ok: h.generateAcceptSignatureSchemeHeader(c.value) }
      case 'parseScheme': return { ok: h.parseAcceptSignatureScheme(c.value) }
      case 'genAlg': return { ok: h.generateAcceptSignatureAlgHeader(c.value) }
      case 'parseAlg': return { ok: h.parseAcceptSignatureAlg(c.value) }
    }
    return { err: 'unknown op' }
  } catch (e) { return { err: String(e.message || e) } }
})
process.stdout.write(JSON.stringify(out))
"""

REQUIRED_INPUTS = [
    ["@method", "@authority", "@path", "signature-key"],
    ["@method", "@authority", "@path", "signature-key", "content-type", "content-digest"],
    ["@query", "authorization"],
    ['"quoted"', "back\\slash"],
]


def run_node(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if shutil.which("node") is None or not (INTEROP / "node_modules/@hellocoop/httpsig").is_dir():
        pytest.fail("node and `npm ci --prefix tests/interop` are required (README test command)")
    done = subprocess.run(
        ["node", "-e", SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=INTEROP,
        timeout=60,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def test_signature_error_generated_by_httpsig_parses_identically() -> None:
    values: list[dict[str, Any]] = [{"error": c} for c in sorted(SIGNATURE_ERROR_CODES)]
    values += [{"error": "invalid_input", "required_input": r} for r in REQUIRED_INPUTS]
    results = run_node([{"op": "genError", "value": v} for v in values])
    for value, result in zip(values, results, strict=True):
        header = result["ok"]
        required = value.get("required_input")
        assert parse_signature_error(header) == SignatureErrorInfo(
            value["error"], tuple(required) if required else None
        )
        assert serialize_signature_error(value["error"], required) == header  # same bytes


def test_signature_error_we_serialize_parses_in_httpsig() -> None:
    ours = [serialize_signature_error(c) for c in sorted(SIGNATURE_ERROR_CODES)]
    ours += [serialize_signature_error("invalid_input", r) for r in REQUIRED_INPUTS]
    _, headers, _ = InvalidInputError("x", required_input=REQUIRED_INPUTS[1]).to_response()
    ours.append(headers["Signature-Error"])
    results = run_node([{"op": "parseError", "value": h} for h in ours])
    for header, result in zip(ours, results, strict=True):
        info = parse_signature_error(header)
        expected: dict[str, Any] = {"error": info.code}
        if info.required_input:
            expected["required_input"] = list(info.required_input)
        assert result == {"ok": expected}


def test_accept_signature_lists_agree() -> None:
    lists = [["jwt"], ["jwt", "hwk", "jwks_uri"], ["Ed25519"], ["Ed25519", "ES256", "ML-DSA-44"]]
    cases = [{"op": op, "value": v} for v in lists for op in ("genScheme", "genAlg")]
    ours = [serialize_accept_signature_scheme(v) for v in lists]
    ours += [serialize_accept_signature_alg(v) for v in lists]
    cases += [{"op": "parseScheme", "value": h} for h in ours[: len(lists)]]
    cases += [{"op": "parseAlg", "value": h} for h in ours[len(lists) :]]
    results = run_node(cases)
    generated, parsed = results[: 2 * len(lists)], results[2 * len(lists) :]
    for i, value in enumerate(lists):
        scheme, alg = generated[2 * i]["ok"], generated[2 * i + 1]["ok"]
        assert scheme == serialize_accept_signature_scheme(value)
        assert alg == serialize_accept_signature_alg(value)
        assert parse_accept_signature_scheme(scheme) == tuple(value)
        assert parse_accept_signature_alg(alg) == tuple(value)
    assert [r["ok"] for r in parsed] == lists + lists


def test_non_token_members_skipped_like_httpsig() -> None:
    header = 'Ed25519, "ES256", (a b), ES256;q=1, 5'
    [result] = run_node([{"op": "parseAlg", "value": header}])
    assert tuple(result["ok"]) == parse_accept_signature_alg(header) == ("Ed25519", "ES256")


def test_a_401_built_by_httpsig_headers_reads_back_typed() -> None:
    [sig, alg] = run_node(
        [
            {"op": "genError", "value": {"error": "unsupported_algorithm"}},
            {"op": "genAlg", "value": ["Ed25519", "ES256"]},
        ]
    )
    err = error_from_response(
        401, {"Signature-Error": sig["ok"], "Accept-Signature-Alg": alg["ok"]}, None
    )
    assert isinstance(err, UnsupportedAlgorithmError) and err.accept_algs == ("Ed25519", "ES256")
