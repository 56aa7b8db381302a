"""AWS Signature Version 4, verified as SQS and SNS verify it: sans-IO, no clock read, no I/O.

The endpoint hands over the request exactly as it came off the wire (the raw, still percent-encoded
path and query string, the headers, the body bytes), the broker's wall-clock time and a lookup from
access key id to secret. The answer is who signed it, or a :class:`SignatureError` carrying the AWS
error code and HTTP status a real SDK expects. Canonicalisation follows AWS's documentation for
every service but S3 (which is the one that encodes path segments only once): the path as sent, with
dot segments and repeated slashes removed, is URI-encoded once more; query pairs are decoded and
re-encoded with the RFC 3986 unreserved set, then sorted; header names lower-cased, values trimmed
and inner runs of white space folded. botocore's own signer is the test oracle.

The two forms are supported: the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...`` header (dated by ``X-Amz-Date`` or ``Date``) and presigned query strings
(``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``,
``X-Amz-Signature``). ``X-Amz-Security-Token`` is signed like any header or parameter and otherwise
ignored: FerryMQ issues no session tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_plus, unquote_to_bytes

from ferrymq import limits

ALGORITHM = "AWS4-HMAC-SHA256"
MISMATCHED = "SignatureDoesNotMatch"
INCOMPLETE = "IncompleteSignature"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ISO_BASIC = "%Y%m%dT%H%M%SZ"
ISO_BASIC_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
EXPIRES_RE = re.compile(r"[0-9]{1,9}")
QUERY_SAFE = "-_.~"  # RFC 3986 unreserved characters besides letters and digits
PATH_SAFE = "/~"
WIRE_ERRORS = "surrogateescape"  # aiohttp decodes undecodable header and path bytes so; keep them as bytes
SIGNATURE_PARAM = "X-Amz-Signature"
PRESIGN_PARAMS = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", SIGNATURE_PARAM)
HEADER_PARTS = ("Credential", "SignedHeaders", "Signature")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your "
            "AWS Secret Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
MISSING_TOKEN = "Request is missing Authentication Token"
NO_DATE = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
HOST_UNSIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
HASH_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."

SecretLookup = Callable[[str], str | None]


class SignatureError(Exception):
    """A request whose signature cannot be accepted. ``code`` is the AWS error shape and query code
    (``InvalidClientTokenId``, ``SignatureDoesNotMatch``, ``IncompleteSignature``,
    ``MissingAuthenticationToken``, ``RequestExpired``), ``status`` the HTTP status AWS answers with."""

    STATUS: dict[str, int] = {"InvalidClientTokenId": 403, "SignatureDoesNotMatch": 403,
                              "MissingAuthenticationToken": 403, "IncompleteSignature": 400,
                              "RequestExpired": 400}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = self.STATUS[code]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed a verified request, and the scope the signature was made for."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What a request says about its own signature, before any of it is checked."""

    access_key_id: str
    scope: tuple[str, str, str, str]  # date, region, service, terminator
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # ISO 8601 basic format, as the string to sign carries it
    expires_s: int | None  # presigned URLs only
    presigned: bool

    @property
    def scope_text(self) -> str:
        return "/".join(self.scope)


def verify_request(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, *,
    now_ms: int, secret_for: SecretLookup, service: str | None = None,
) -> Identity:
    """Verify one request's SigV4 signature. ``path`` and ``query`` are raw (as sent, undecoded);
    ``headers`` may repeat a name (a multidict's items() are all read); ``service``, when given, is the
    only credential-scope service accepted. Raises :class:`SignatureError`."""
    values = header_values(headers)
    claim = read_claim(query, values)
    secret = secret_for(claim.access_key_id)
    if secret is None:
        raise SignatureError("InvalidClientTokenId", INVALID_TOKEN)
    check_scope(claim, service)
    check_time(claim, now_ms)
    canonical = canonical_request(method, path, canonical_query(query, claim.presigned), values,
                                  claim.signed_headers, payload_hash(values, body))
    to_sign = string_to_sign(claim.timestamp, claim.scope_text, canonical)
    expected = signature(secret, claim.scope, to_sign)
    if not hmac.compare_digest(expected.encode(), claim.signature.encode("utf-8", "replace")):
        raise SignatureError(MISMATCHED, mismatch_message(canonical, to_sign))
    return Identity(claim.access_key_id, claim.scope[1], claim.scope[2])


def header_values(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-cased name -> every value sent under it, in order (AWS joins repeats with commas)."""
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), []).append(value)
    return values


def read_claim(query: str, values: dict[str, list[str]]) -> Claim:
    params = query_params(query)
    authorization = first(values, "authorization")  # an empty one is as good as none
    if authorization and "X-Amz-Algorithm" in params:
        raise SignatureError(INCOMPLETE, "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                             "query parameter or the Authorization header should be specified")
    if authorization:
        return header_claim(authorization, values)
    if "X-Amz-Algorithm" in params:
        return query_claim(params)
    raise SignatureError("MissingAuthenticationToken", MISSING_TOKEN)


def query_params(query: str) -> dict[str, str]:
    """Decoded name -> first decoded value; only the authentication parameters are read from it."""
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params.setdefault(unquote_plus(name), unquote_plus(value))
    return params


def header_claim(authorization: str, values: dict[str, list[str]]) -> Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(INCOMPLETE, f"Unsupported AWS 'algorithm': '{algorithm}'")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, value)
    date = first(values, "x-amz-date") or first(values, "date")
    problems = [f"Authorization header requires '{name}' parameter." for name in HEADER_PARTS
                if not parts.get(name)]
    if date is None:
        problems.append(NO_DATE)
    if problems:
        raise SignatureError(INCOMPLETE, " ".join([*problems, f"Authorization={authorization}"]))
    timestamp = header_timestamp(values)
    access_key_id, scope = read_credential(parts["Credential"])
    return Claim(access_key_id, scope, tuple(parts["SignedHeaders"].split(";")), parts["Signature"],
                 timestamp, None, False)


def query_claim(params: dict[str, str]) -> Claim:
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureError(INCOMPLETE,
                             f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'")
    for name in PRESIGN_PARAMS:
        if not params.get(name):
            raise SignatureError(INCOMPLETE, f"AWS query-string parameters must include "
                                 f"'{name}'. Re-examine the query-string parameters.")
    access_key_id, scope = read_credential(params["X-Amz-Credential"])
    return Claim(access_key_id, scope, tuple(params["X-Amz-SignedHeaders"].split(";")),
                 params[SIGNATURE_PARAM], iso_basic(params["X-Amz-Date"]),
                 expires_seconds(params.get("X-Amz-Expires")), True)


def first(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[0].strip() if found else None


def header_timestamp(values: dict[str, list[str]]) -> str:
    """The request's date in ISO 8601 basic format: X-Amz-Date wins over Date (RFC 1123) when both
    are sent; the string to sign always carries the basic format."""
    amz_date = first(values, "x-amz-date")
    if amz_date is not None:
        return iso_basic(amz_date)
    date = first(values, "date") or ""
    try:
        parsed = parsedate_to_datetime(date)
        if parsed.tzinfo is None:  # "-0000", which botocore sends, is UTC without an offset
            parsed = parsed.replace(tzinfo=UTC)
        return iso_basic(parsed.astimezone(UTC).strftime(ISO_BASIC))
    except (TypeError, ValueError, OverflowError):
        raise SignatureError(INCOMPLETE, f"Date must be in RFC 1123 format. Got '{date}'") from None


def iso_basic(text: str) -> str:
    if not ISO_BASIC_RE.fullmatch(text):
        raise SignatureError(INCOMPLETE, f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
                             "See http://en.wikipedia.org/wiki/ISO_8601")
    try:
        to_ms(text)
    except ValueError:
        raise SignatureError(INCOMPLETE, f"Date is not a valid date: '{text}'") from None
    return text


def expires_seconds(text: str | None) -> int | None:
    if text is None:
        return None
    if not EXPIRES_RE.fullmatch(text):
        raise SignatureError(INCOMPLETE, "X-Amz-Expires should be a number")
    expires = int(text)
    if not 1 <= expires <= limits.AWS_PRESIGN_EXPIRES_MAX_S:
        raise SignatureError(INCOMPLETE, "X-Amz-Expires must be between 1 and "
                             f"{limits.AWS_PRESIGN_EXPIRES_MAX_S} seconds (a week)")
    return expires


def read_credential(credential: str) -> tuple[str, tuple[str, str, str, str]]:
    """``<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request``, split from the right."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        raise SignatureError(INCOMPLETE, "Credential is mal-formed; expecting "
                             '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    return parts[0], (parts[1], parts[2], parts[3], parts[4])


def check_scope(claim: Claim, service: str | None) -> None:
    date, _region, scoped_service, terminator = claim.scope
    if terminator != TERMINATOR:
        raise SignatureError(MISMATCHED, "Credential should be scoped with a valid "
                             f"terminator: '{TERMINATOR}', not '{terminator}'.")
    if service is not None and scoped_service != service:
        raise SignatureError(MISMATCHED, f"Credential should be scoped to correct service: '{service}'.")
    if date != claim.timestamp[:8]:
        raise SignatureError(MISMATCHED, "Date in Credential scope does not match YYYYMMDD from "
                             f"ISO-8601 version of date from HTTP: '{date}' != '{claim.timestamp[:8]}', "
                             f"from '{claim.timestamp}'.")
    if "host" not in claim.signed_headers and ":authority" not in claim.signed_headers:
        raise SignatureError(INCOMPLETE, HOST_UNSIGNED)


def check_time(claim: Claim, now_ms: int) -> None:
    """AWS's 15-minute window either side of the signed date; a presigned URL is also good until its
    own X-Amz-Expires runs out (and not after it, even inside the window)."""
    signed_ms = to_ms(claim.timestamp)
    skew = limits.AWS_SIGNATURE_SKEW_MS
    if signed_ms > now_ms + skew:
        raise SignatureError(MISMATCHED, f"Signature not yet current: {claim.timestamp} is still "
                             f"later than {from_ms(now_ms + skew)} ({from_ms(now_ms)} + 15 min.)")
    if claim.expires_s is not None:
        if now_ms > signed_ms + claim.expires_s * 1000:
            raise SignatureError("RequestExpired", f"Request has expired: signed at {claim.timestamp} for "
                                 f"{claim.expires_s} s, now {from_ms(now_ms)}.")
    elif signed_ms < now_ms - skew:
        raise SignatureError(MISMATCHED, f"Signature expired: {claim.timestamp} is now earlier "
                             f"than {from_ms(now_ms - skew)} ({from_ms(now_ms)} - 15 min.)")


def to_ms(timestamp: str) -> int:
    """``YYYYMMDDTHHMMSSZ`` (already matched by ISO_BASIC_RE) in ms; strptime costs 15 us a call."""
    t = timestamp
    when = datetime(int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]), int(t[13:15]),
                    tzinfo=UTC)
    return int(when.timestamp()) * 1000


def from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime(ISO_BASIC)


def payload_hash(values: dict[str, list[str]], body: bytes) -> str:
    """The payload line of the canonical request. A claimed X-Amz-Content-Sha256 must be the body's
    hash (else a signed header would vouch for any body); UNSIGNED-PAYLOAD leaves the body out."""
    claimed = first(values, "x-amz-content-sha256")
    actual = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    if claimed is None or claimed == UNSIGNED_PAYLOAD:
        return claimed or actual
    if not hmac.compare_digest(claimed.lower().encode("utf-8", "replace"), actual.encode()):
        raise SignatureError(MISMATCHED, HASH_MISMATCH)
    return claimed


def canonical_request(method: str, path: str, canonical_query_string: str,
                      values: dict[str, list[str]], signed_headers: tuple[str, ...], payload: str) -> str:
    headers = "".join(f"{name}:{canonical_header_value(values.get(name, []))}\n" for name in signed_headers)
    return "\n".join((method.upper(), canonical_uri(path), canonical_query_string, headers,
                      ";".join(signed_headers), payload))


def canonical_header_value(values: list[str]) -> str:
    return ",".join(" ".join(value.split()) for value in values)


def canonical_uri(path: str) -> str:
    """The raw path without its query, dot segments and empty segments removed (RFC 3986 5.2.4, and
    AWS drops repeated slashes), encoded once more: non-S3 services sign the path double-encoded."""
    path = path.partition("?")[0]
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return quote(lead + "/".join(kept) + trail, safe=PATH_SAFE, errors=WIRE_ERRORS)


def canonical_query(query: str, presigned: bool) -> str:
    """Pairs decoded and re-encoded exactly once (RFC 3986 unreserved kept), sorted by name then
    value; a presigned URL's own X-Amz-Signature is left out."""
    pairs: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = reencode(name)
        if presigned and name == SIGNATURE_PARAM:
            continue
        pairs.append((name, reencode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def reencode(component: str) -> str:
    """A query component decoded as a form decodes it ('+' is a space: botocore sends params so and
    signs them as %20) and encoded again the one way AWS signs it."""
    return quote(unquote_to_bytes(component.replace("+", "%20").encode(errors=WIRE_ERRORS)), safe=QUERY_SAFE)


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode(errors=WIRE_ERRORS)).hexdigest()
    return "\n".join((ALGORITHM, timestamp, scope, digest))


def signature(secret: str, scope: tuple[str, str, str, str], to_sign: str) -> str:
    key = signing_key(secret, scope[0], scope[1], scope[2])
    return hmac.new(key, to_sign.encode(errors=WIRE_ERRORS), hashlib.sha256).hexdigest()


@lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Four HMACs that change once a day per key and scope: cached, so a busy client pays one."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode(errors=WIRE_ERRORS), hashlib.sha256).digest()
    return key


def mismatch_message(canonical: str, to_sign: str) -> str:
    """SQS's own text, followed (as SQS sends it) by what the signer should have signed."""
    return (f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{to_sign}'\n")
