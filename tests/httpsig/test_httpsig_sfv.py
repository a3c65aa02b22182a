"""The fast RFC 8941 subset (:mod:`aauth_agents.httpsig.sfv`) against ``http_sfv``: whatever it
accepts, ``http_sfv`` parses or serialises to the same thing; whatever ``http_sfv`` refuses,
it refuses too; and the signature fields in their usual shapes are in its subset. Likewise
the fast split of the common URL against ``urlsplit``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item
from http_sfv.types import Token
from hypothesis import given, settings
from hypothesis import strategies as st

from aauth_agents.httpsig import (
    HttpRequest,
    SignatureKey,
    parse_content_digest,
    parse_signature_input,
    parse_signature_key_member,
    serialize_signature_input,
    serialize_signature_key,
    sign_request,
)
from aauth_agents.httpsig.base import _PLANS, _parse_fast, build_signature_base
from aauth_agents.httpsig.request import (
    _PRINTABLE,
    _SIMPLE_URL,
    ComponentError,
    _canonical_field_value,
    _split_with_urlsplit,
    split_target,
)
from aauth_agents.httpsig.sfv import (
    _inner_list_by_regex,
    canonical_bytes_item,
    canonical_inner_list,
    canonical_token_item,
    parse_dictionary,
    serialize_bare,
    serialize_inner_list,
    serialize_key,
)
from aauth_agents.keys import ED25519, PrivateKey

KEY_START = "abcdefghijklmnopqrstuvwxyz*"
KEY_CHARS = KEY_START + "0123456789_-."
TOKEN_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ*"
TOKEN_CHARS = TOKEN_START + "0123456789:/!#$%&'+-.^_`|~"

keys = st.builds(lambda a, b: a + b, st.sampled_from(KEY_START), st.text(KEY_CHARS, max_size=6))
tokens = st.builds(
    lambda a, b: Token(a + b), st.sampled_from(TOKEN_START), st.text(TOKEN_CHARS, max_size=8)
)
strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
integers = st.integers(-999_999_999_999_999, 999_999_999_999_999)
bares = st.one_of(
    strings,
    tokens,
    integers,
    st.binary(max_size=12),
    st.booleans(),
    st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False, allow_infinity=False),
)
params = st.dictionaries(keys, bares, max_size=3)


@st.composite
def items(draw: Any) -> Item:
    item = Item(draw(bares))
    item.params.update(draw(params))
    return item


@st.composite
def inner_lists(draw: Any) -> InnerList:
    inner = InnerList(draw(st.lists(items(), max_size=4)))
    inner.params.update(draw(params))
    return inner


@st.composite
def dictionaries(draw: Any) -> str:
    """A Dictionary serialised by http_sfv, then re-spaced where RFC 8941 allows it."""
    field = Dictionary()
    members = st.lists(st.tuples(keys, st.one_of(items(), inner_lists())), max_size=4)
    for key, member in draw(members):
        field[key] = member
    if not field:
        field["sig"] = Item(1)
    text = str(field)
    if draw(st.booleans()):
        text = text.replace(", ", draw(st.sampled_from([",", " ,\t", "\t, ", ",  "])))
    if draw(st.booleans()):
        text = text.replace(" ", draw(st.sampled_from(["  ", " "]))).replace("(", "( ")
    return text


#: Text close to the fields' grammar: mostly the characters they use.
noise = st.text(st.sampled_from('sigab*=;,()":/+-.0129 \t?@%\\AZ_'), max_size=30)


def _tag(value: Any) -> Any:
    return (type(value).__name__, value)


def _reference(text: str) -> list[Any] | None:
    field = Dictionary()
    try:
        field.parse(text.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return None

    def member(m: Item | InnerList) -> Any:
        p = [(k, _tag(v)) for k, v in m.params.items()]
        if isinstance(m, InnerList):
            return ("list", [member(i) for i in m], p)
        return ("item", _tag(m.value), p)

    return [(k, member(m)) for k, m in field.items()]


def _fast(text: str) -> list[Any] | None:
    members = parse_dictionary(text)
    if members is None:
        return None

    def member(m: Any) -> Any:
        value, p = m
        tagged = [(k, _tag(v)) for k, v in p.items()]
        if type(value) is list:
            return ("list", [member(i) for i in value], tagged)
        return ("item", _tag(value), tagged)

    return [(k, member(m)) for k, m in members]


def _check_parse(text: str) -> list[Any] | None:
    fast, reference = _fast(text), _reference(text)
    if fast is not None:
        assert reference == fast, text
    if reference is None:
        assert fast is None, text
    return fast


@settings(max_examples=600)
@given(dictionaries())
def test_parse_agrees_on_serialised_dictionaries(text: str) -> None:
    _check_parse(text)


subset_bares = st.one_of(strings, tokens, integers, st.binary(max_size=12))


@settings(max_examples=300)
@given(
    st.dictionaries(
        keys,
        st.tuples(
            st.one_of(
                subset_bares, st.lists(st.tuples(subset_bares, st.dictionaries(keys, subset_bares)))
            ),
            st.dictionaries(keys, subset_bares, max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_subset_takes_the_fast_path(members: dict[str, Any]) -> None:
    """Integers, Strings, Tokens and Byte Sequences, in Items or Inner Lists, with
    parameters: never sent to http_sfv."""
    field = Dictionary()
    for key, (value, p) in members.items():
        if isinstance(value, list):
            member: Item | InnerList = InnerList()
            for bare, item_params in value:
                item = Item(bare)
                item.params.update(item_params)
                member.append(item)
        else:
            member = Item(value)
        member.params.update(p)
        field[key] = member
    text = str(field)
    assert _check_parse(text) is not None, text


@settings(max_examples=1500)
@given(noise)
def test_parse_agrees_on_near_grammar_noise(text: str) -> None:
    _check_parse(text)


@settings(max_examples=500)
@given(st.text(max_size=20))
def test_parse_agrees_on_any_text(text: str) -> None:
    _check_parse(text)


@settings(max_examples=1500)
@given(
    st.one_of(
        bares,
        st.text(max_size=8),
        st.builds(Token, st.text(max_size=6)),
        st.integers(),
        st.floats(allow_nan=False),
        st.none(),
    )
)
def test_serialise_bare_agrees(value: Any) -> None:
    fast = serialize_bare(value)
    try:
        reference: str | None = str(Item(value))
    except (ValueError, TypeError, ArithmeticError):
        reference = None
    if fast is not None:
        assert fast == reference
    if reference is None:
        assert fast is None


@settings(max_examples=800)
@given(
    st.lists(st.one_of(strings, st.text(max_size=5)), max_size=6),
    st.dictionaries(st.one_of(keys, st.text(max_size=4)), bares, max_size=3),
    st.one_of(keys, st.text(max_size=5)),
)
def test_serialise_signature_input_agrees(names: list[str], p: dict[str, Any], label: str) -> None:
    fast = serialize_inner_list(names, p)
    field = Dictionary()
    try:
        inner = InnerList([Item(n) for n in names])
        inner.params.update(p)
        field[label] = inner
        reference: str | None = str(field)
    except (ValueError, IndexError):
        reference = None
    if fast is not None and serialize_key(label) is not None:
        assert f"{label}={fast}" == reference
    if reference is None:
        assert fast is None or serialize_key(label) is None


def test_signature_fields_are_in_the_subset() -> None:
    """The fields AAuth sends in their usual shapes take the fast path, both ways."""
    key = PrivateKey.generate(ED25519)
    signature_key = SignatureKey.from_jwt("eyJh.eyJi.c2ln")
    request = HttpRequest(
        "POST", "https://ps.example/token?x=1", {"content-type": "application/json"}, b"{}"
    )
    headers = sign_request(request, key=key, signature_key=signature_key, created=1, expires=9)
    for name in ("Signature-Input", "Signature", "Signature-Key", "Content-Digest"):
        assert parse_dictionary(headers[name]) is not None, name
    assert _parse_fast(headers["Signature-Input"]) is not None
    assert serialize_signature_key("sig", signature_key) == headers["Signature-Key"]
    hwk = SignatureKey.from_public_key(key.public_key)
    assert parse_dictionary(serialize_signature_key("sig", hwk)) is not None


def test_signature_input_serialisation_matches_http_sfv() -> None:
    names = ["@method", "@authority", "@path", "content-digest", "signature-key"]
    p = {"created": 1_730_217_600, "expires": 1_730_217_660, "nonce": 'a\\b"c', "tag": Token("t")}
    field = Dictionary()
    inner = InnerList([Item(n) for n in names])
    inner.params.update(p)
    field["sig"] = inner
    assert serialize_signature_input("sig", names, p) == str(field)
    assert serialize_bare(Decimal("1.5")) is None
    assert serialize_bare(True) is None


url_parts = st.text(st.sampled_from("aZ09.-:/?#@[]%&=_"), max_size=12)


@settings(max_examples=1500)
@given(st.sampled_from(["http", "https", "HTTP", "ftp"]), url_parts, url_parts)
def test_url_fast_split_agrees_with_urlsplit(scheme: str, authority: str, rest: str) -> None:
    """The common URL is split by one regular expression; the parts are urlsplit's."""
    url = f"{scheme}://{authority}{rest}"
    for candidate in (url, f"{scheme}://host.example{rest}", f"{scheme}://h:{rest}"):
        try:
            reference: Any = _split_with_urlsplit(candidate)
        except ComponentError as exc:
            reference = str(exc)
        try:
            fast: Any = split_target(candidate)
        except ComponentError as exc:
            fast = str(exc)
        if _SIMPLE_URL.fullmatch(candidate) or not _PRINTABLE.fullmatch(candidate):
            assert fast == reference, candidate


@st.composite
def signature_fields(draw: Any) -> str:
    """The three signature fields and Content-Digest in their one-member shapes, as
    http_sfv writes them, sometimes altered (non-canonical numbers, spacing, extra members)."""
    field = Dictionary()
    label = draw(keys)
    shape = draw(st.sampled_from(["input", "key", "bytes"]))
    p = draw(st.dictionaries(keys, st.one_of(strings, integers, tokens), max_size=3))
    if shape == "input":
        member: Item | InnerList = InnerList([Item(n) for n in draw(st.lists(strings, max_size=5))])
    elif shape == "key":
        member = Item(draw(tokens))
    else:
        member = Item(draw(st.binary(max_size=40)))
        p = {}
    member.params.update(p)
    field[label] = member
    text = str(field)
    alteration = draw(st.sampled_from(["", "=0", "=-0", "=007", '" "', ", b=1", "  "]))
    if alteration in ("=0", "=-0", "=007"):
        text = text.replace("=0", alteration, 1) if "=0" in text else text + f";z{alteration}"
    elif alteration == '" "':
        text = text.replace('" "', '"  "', 1)
    else:
        text += alteration
    return text


def _one_member(text: str) -> tuple[str, Any] | None:
    field = Dictionary()
    try:
        field.parse(text.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return None
    return next(iter(field.items())) if len(field) == 1 else ("", None)


def _typed(p: Any) -> dict[str, Any]:
    return {k: _tag(v) for k, v in p.items()}


@settings(max_examples=1500)
@given(st.one_of(signature_fields(), noise))
def test_canonical_shapes_agree_with_http_sfv(text: str) -> None:
    reference = _one_member(text)
    inner = canonical_inner_list(text)
    token = canonical_token_item(text)
    octets = canonical_bytes_item(text)
    if reference is None:
        assert inner is None and token is None and octets is None, text
        return
    label, member = reference
    if inner is not None:
        assert isinstance(member, InnerList), text
        assert inner[0] == label and inner[1] == str(member)
        assert [_tag(i.value) for i in member] == [_tag(n) for n in inner[2]]
        assert not any(i.params for i in member)
        assert _typed(member.params) == _typed(inner[3])
    if token is not None:
        assert isinstance(member, Item) and isinstance(member.value, Token), text
        assert (token[0], token[1]) == (label, member.value)
        assert _typed(member.params) == _typed(token[2])
    if octets is not None:
        assert isinstance(member, Item) and not member.params, text
        assert octets == (label, member.value)


def test_canonical_shapes_cover_what_signers_send() -> None:
    key = PrivateKey.generate(ED25519)
    request = HttpRequest("POST", "https://ps.example/t?x=1", {"content-type": "a/b"}, b"{}")
    headers = sign_request(
        request, key=key, signature_key=SignatureKey.from_jwt("eyJh.eyJi.c2ln"), created=7
    )
    assert canonical_inner_list(headers["Signature-Input"]) is not None
    assert canonical_token_item(headers["Signature-Key"]) is not None
    assert canonical_bytes_item(headers["Signature"]) is not None
    assert canonical_bytes_item(headers["Content-Digest"]) is not None


@settings(max_examples=600)
@given(st.one_of(dictionaries(), signature_fields()))
def test_field_parsers_agree_with_http_sfv(text: str) -> None:
    """The public parsers give the same answer (or the same error) on the fast path as
    through http_sfv: compared with the parse of the same field made unparseable by the
    fast subset (a leading space, which RFC 8941 §4.2 discards)."""
    for parse in (parse_signature_input, parse_signature_key_member, parse_content_digest):
        outcomes = []
        for variant in (text, " " + text):
            try:
                outcomes.append(("ok", parse(variant)))
            except Exception as exc:  # the error itself is compared
                outcomes.append(("error", type(exc), str(exc)))
        fast, slow = outcomes
        assert fast == slow, (parse.__name__, text)


def test_a_remembered_component_list_derives_and_fails_as_the_first_time() -> None:
    """The second base over one component list takes the remembered plan: same lines, and
    the same error for a header that is now missing or a value that is not ASCII."""
    names = ["@method", "@authority", "@path", "@query", "x-first-use-only", "content-type"]
    params = '("x");created=1'
    full = HttpRequest(
        "POST", "https://a.example/p?q", {"x-first-use-only": " v ", "content-type": "t"}, b"1"
    )
    first = build_signature_base(full, names, params)
    again = build_signature_base(full, names, params)
    assert first == again
    assert tuple(names) in _PLANS
    missing = HttpRequest("POST", "https://a.example/p?q", {"content-type": "t"}, b"1")
    with pytest.raises(ComponentError, match="covered header 'x-first-use-only' is not present"):
        build_signature_base(missing, names, params)
    accented = HttpRequest(
        "POST", "https://a.example/p?q", {"x-first-use-only": "é", "content-type": "t"}
    )
    with pytest.raises(ComponentError, match="not US-ASCII"):
        build_signature_base(accented, names, params)
    other = HttpRequest(
        "GET", "https://b.example:8443/", {"x-first-use-only": "w", "content-type": "u"}
    )
    assert build_signature_base(other, names, params).decode() == "\n".join(
        [
            '"@method": GET',
            '"@authority": b.example:8443',
            '"@path": /',
            '"@query": ?',
            '"x-first-use-only": w',
            '"content-type": u',
            '"@signature-params": ("x");created=1',
        ]
    )


#: What may follow a remembered Inner List: ``created`` as signers write it, and near misses.
_SUFFIXES = st.one_of(
    st.builds(lambda n: f";created={n}", integers),
    st.sampled_from(
        [
            "",
            ";created=0",
            ";created=00",
            ";created=007",
            ";created=-0",
            ";created=999999999999999",
            ";created=1000000000000000",
            ";created=",
            ";created=12a",
            ";created=\u00b2",
            ";created=1;expires=2",
            ';created="1"',
            ";expires=5",
            ";created=1 ",
            ", b=1",
        ]
    ),
)


@settings(max_examples=800)
@given(
    st.one_of(keys, st.sampled_from(["Sig", "", "s g"])),
    st.lists(st.one_of(strings, st.sampled_from(["a)b", ")", "@path"])), max_size=4),
    _SUFFIXES,
    _SUFFIXES,
)
def test_a_remembered_inner_list_reads_as_the_regex_reads_it(
    label: str, names: list[str], first: str, second: str
) -> None:
    """Once an Inner List has matched, a field made of it (any label, any parameters) gets
    the answer of the regular expression -- itself held to http_sfv above."""
    inner = "(" + " ".join(f'"{n}"' for n in names) + ")"
    _inner_list_by_regex(f"{label}={inner}{first}")  # remembered, when it matches
    text = f"{label}={inner}{second}"
    assert canonical_inner_list(text) == _inner_list_by_regex(text), text
    reference = _one_member(text)
    fast = canonical_inner_list(text)
    if fast is not None:
        assert reference is not None and reference[0] == fast[0], text
        assert str(reference[1]) == fast[1], text


@settings(max_examples=500)
@given(keys, tokens, keys, strings, strings)
def test_a_remembered_token_head_reads_as_http_sfv_reads_it(
    label: str, token: Token, name: str, first: str, second: str
) -> None:
    """``label=token;name="..."``: the second String under a head already seen is read as
    ``http_sfv`` reads the field."""
    canonical_token_item(f'{label}={token};{name}="{first}"')
    text = f'{label}={token};{name}="{second}"'
    parsed = canonical_token_item(text)
    reference = _one_member(text)
    if reference is None:
        assert parsed is None, text
        return
    if parsed is not None:
        member = reference[1]
        assert (parsed[0], parsed[1]) == (reference[0], member.value), text
        assert _typed(member.params) == _typed(parsed[2]), text


_FIELD_VALUES = st.text(st.sampled_from("ab \t\r\n\x00,"), max_size=6)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "A"]), _FIELD_VALUES), max_size=5))
def test_header_combines_lines_as_rfc9421_says(lines: list[tuple[str, str]]) -> None:
    """RFC 9421 §2.1: each line of the name canonicalised (or refused), joined by ", " --
    whether the name has one line or several."""
    request = HttpRequest("GET", "https://a.example/", lines)
    for name in ("a", "A", "b", "c"):
        values = [v for k, v in lines if k.lower() == name.lower()]
        try:
            expected: object = (
                ", ".join(_canonical_field_value(v) for v in values) if values else None
            )
        except ComponentError as exc:
            expected = str(exc)
        try:
            got: object = request.header(name)
        except ComponentError as exc:
            got = str(exc)
        assert got == expected, (lines, name)
