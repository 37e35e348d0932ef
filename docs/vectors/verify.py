#!/usr/bin/env python3
"""An independent implementation of WOPR protocol v3, written from docs/PROTOCOL.md alone, that checks
every test vector: it rebuilds each positive vector from its inputs and refuses each negative one with
the error the vector names (PROTOCOL.md section 13).

Usage: python3 docs/vectors/verify.py [docs/vectors]. Needs `cryptography` and `pynacl`
(docs/vectors/requirements.txt). Ed25519 verification follows section 1 in pure Python, and libsodium
(through pynacl) must agree with it on every signature checked.
"""

import base64
import hashlib
import hmac
import json
import re
import sys
from pathlib import Path

try:
    import nacl.exceptions
    import nacl.signing
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as e:
    sys.exit(f"verify.py needs its packages: pip install -r docs/vectors/requirements.txt ({e})")


# ---- Errors ---------------------------------------------------------------------------------------------

class Refused(Exception):
    """A refusal: the error's name (section 13) and the code it carries on the wire, if any."""

    def __init__(self, error, code=None):
        super().__init__(error)
        self.error = error
        self.code = code


class CodecError(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


# ---- Section 1: canonical encoding ----------------------------------------------------------------------

def u8(v): return v.to_bytes(1, "big")
def u16(v): return v.to_bytes(2, "big")
def u32(v): return v.to_bytes(4, "big")
def u64(v): return v.to_bytes(8, "big")
def blob(b): return u32(len(b)) + b
def string(s): return blob(s.encode("utf-8"))
def lst(items, enc): return u16(len(items)) + b"".join(enc(i) for i in items)
def option(v, enc): return b"\x00" if v is None else b"\x01" + enc(v)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.remaining():
            raise CodecError("Truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self): return self.take(1)[0]
    def u16(self): return int.from_bytes(self.take(2), "big")
    def u32(self): return int.from_bytes(self.take(4), "big")
    def u64(self): return int.from_bytes(self.take(8), "big")

    def blob(self, maximum):
        n = self.u32()
        if n > maximum:  # the maximum is checked before the remaining input
            raise CodecError("TooLong")
        return self.take(n)

    def string(self, maximum):
        try:
            return self.blob(maximum).decode("utf-8")
        except UnicodeDecodeError:
            raise CodecError("InvalidUtf8") from None

    def list(self, maximum, smallest_item, item):
        n = self.u16()
        if n > maximum:
            raise CodecError("TooLong")
        if n * smallest_item > self.remaining():
            raise CodecError("Truncated")
        return [item() for _ in range(n)]

    def option(self, item):
        flag = self.u8()
        if flag == 0:
            return None
        if flag == 1:
            return item()
        raise CodecError("UnknownTag")

    def finish(self):
        if self.remaining():
            raise CodecError("TrailingBytes")


def decode_all(data, decoder):
    r = Reader(data)
    value = decoder(r)
    r.finish()
    return value


# ---- Section 1: signatures (Ed25519, strict) -----------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
BASE_Y = 4 * pow(5, P - 2, P) % P


def decompress(b):
    """A point (extended coordinates) from its 32-byte encoding, or None. y is the low 255 bits,
    little-endian, reduced mod p (a non-canonical y is accepted); the sign bit is bit 255."""
    y = (int.from_bytes(b, "little") & (2**255 - 1)) % P
    sign = b[31] >> 7
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * pow(v, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = (P - x) % P
    return (x, y, 1, x * y % P)


def add(p1, p2):
    """Twisted Edwards addition in extended coordinates (a = -1), complete for every pair of points."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, hh = b - a, d - c, d + c, b + a
    return (e * f % P, g * hh % P, f * g % P, e * hh % P)


def mul(k, pt):
    acc = IDENTITY
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def neg(pt):
    x, y, z, t = pt
    return ((P - x) % P, y, z, (P - t) % P)


def compress(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def is_identity(pt):
    x, y, z, _ = pt
    return x % P == 0 and (y - z) % P == 0


IDENTITY = (0, 1, 1, 0)
BASE = decompress(BASE_Y.to_bytes(32, "little"))


def domain_bytes(domain, message):
    return b"wopr/v3\x00" + domain.encode("ascii") + b"\x00" + message


def strict_verify_rules(key, message, sig):
    """Section 1, step by step."""
    a = decompress(key)
    if a is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    r = decompress(sig[:32])
    if r is None:
        return False
    if is_identity(mul(8, r)) or is_identity(mul(8, a)):
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + key + message).digest(), "little") % L
    return compress(add(mul(s, BASE), mul(k, neg(a)))) == sig[:32]


def verify(key, domain, message, sig):
    msg = domain_bytes(domain, message)
    ours = strict_verify_rules(key, msg, sig)
    try:
        nacl.signing.VerifyKey(key).verify(msg, sig)
        sodium = True
    except (nacl.exceptions.BadSignatureError, ValueError):
        sodium = False
    if ours != sodium:
        raise AssertionError(f"section 1 says {ours}, libsodium says {sodium} for key {key.hex()}")
    return ours


def sign(seed, domain, message):
    return nacl.signing.SigningKey(seed).sign(domain_bytes(domain, message)).signature


def public_of(seed):
    return bytes(nacl.signing.SigningKey(seed).verify_key)


# ---- Section 2: identity ---------------------------------------------------------------------------------

def clamp(secret):
    b = bytearray(secret)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def x25519_public(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def x25519(secret, public):
    """The shared secret, or None when it is all zeros (a low-order peer key)."""
    try:
        shared = X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        return None
    return None if shared == bytes(32) else shared


def short_id(key):
    return hashlib.sha256(key).hexdigest()[:8]


# Unicode White_Space, which is what "surrounding whitespace" means in sections 2 and 8.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def parse_public_id(text):
    t = text.strip(WHITESPACE)
    if t.startswith("wopr://"):
        t = t[len("wopr://"):]
    if not re.fullmatch(r"[0-9a-fA-F]{64}", t):
        raise Refused("InvalidPublicKey")
    key = bytes.fromhex(t)
    if decompress(key) is None:
        raise Refused("InvalidPublicKey")
    return key


# ---- Section 3 and 6: frames and sealed frames -----------------------------------------------------------

MAX_FRAME = 1024 * 1024 + 4 * 1024
MAX_PAYLOAD = 1024 * 1024


def frame(body):
    return u32(len(body)) + body


def decode_frame(data):
    if len(data) < 4:
        raise Refused("Truncated", 3)
    length = int.from_bytes(data[:4], "big")
    if length > MAX_FRAME:
        raise Refused("TooLarge", 3)
    body = data[4:]
    if len(body) < length:
        raise Refused("Truncated", 3)
    if len(body) > length:
        raise Refused("TrailingBytes", 3)
    return body


class Opener:
    def __init__(self, key, aad):
        self.aead, self.aad, self.counter, self.failed = AESGCM(key), aad, 0, False

    def open(self, body):
        if self.failed:
            raise Refused("Failed", 3)
        if len(body) < 16:
            self.failed = True
            raise Refused("OpenFailed", 3)
        try:
            plain = self.aead.decrypt(self.counter.to_bytes(12, "big"), body, self.aad)
        except InvalidTag:
            self.failed = True
            raise Refused("OpenFailed", 3) from None
        self.counter += 1
        return plain


def seal(key, aad, counter, plaintext):
    return frame(AESGCM(key).encrypt(counter.to_bytes(12, "big"), plaintext, aad))


# ---- Section 4 and 5: handshake --------------------------------------------------------------------------

SUPPORTED = [3]
MAX_SKEW = 5 * 60 * 1000


def hello_unsigned(h):
    return u8(1) + lst(h["versions"], u16) + h["static_key"] + h["ephemeral"] + u64(h["timestamp_ms"]) + h["nonce"]


def ack_unsigned(a):
    return (u8(2) + u16(a["version"]) + lst(a["versions"], u16) + a["static_key"] + a["ephemeral"]
            + u64(a["timestamp_ms"]) + a["nonce"])


def encode_handshake(m):
    if m["type"] == 1:
        return hello_unsigned(m) + m["signature"]
    if m["type"] == 2:
        return ack_unsigned(m) + m["signature"]
    return u8(3) + u8(m["code"]) + string(m["message"])


def decode_handshake(data):
    def dec(r):
        t = r.u8()
        versions = lambda: r.list(16, 2, r.u16)  # noqa: E731
        if t == 1:
            return {"type": 1, "versions": versions(), "static_key": r.take(32), "ephemeral": r.take(32),
                    "timestamp_ms": r.u64(), "nonce": r.take(32), "signature": r.take(64)}
        if t == 2:
            return {"type": 2, "version": r.u16(), "versions": versions(), "static_key": r.take(32),
                    "ephemeral": r.take(32), "timestamp_ms": r.u64(), "nonce": r.take(32), "signature": r.take(64)}
        if t == 3:
            code = r.u8()
            if code not in ERROR_CODES:
                raise CodecError("UnknownTag")
            return {"type": 3, "code": code, "message": r.string(1024)}
        raise CodecError("UnknownTag")
    try:
        return decode_all(data, dec)
    except CodecError as e:
        raise Refused("Malformed." + e.kind, 3) from None


def best_common(a, b):
    common = set(a) & set(b)
    return max(common) if common else None


def hello_signed_bytes(h, responder):
    return hello_unsigned(h) + responder


def ack_signed_bytes(a, hello_bytes):
    return blob(hello_bytes) + ack_unsigned(a)


def transcript_hash(hello_bytes, ack_bytes):
    return hashlib.sha256(domain_bytes("transcript", blob(hello_bytes) + blob(ack_bytes))).digest()


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand32(prk, info):
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def label(direction, stream=None):
    base = b"wopr/v3 " + direction.encode()
    return base if stream is None else base + u64(stream)


def check_clock(timestamp_ms, now_ms):
    if abs(timestamp_ms - now_ms) > MAX_SKEW:
        raise Refused("ClockSkew", 3)


def respond(responder_seed, remote, hello_bytes, now_ms, eph_secret, nonce):
    hello = decode_handshake(hello_bytes)
    if hello["type"] != 1:
        raise Refused("Unexpected", 3)
    version = best_common(SUPPORTED, hello["versions"])
    if version is None:
        raise Refused("NoCommonVersion", 5)
    if hello["static_key"] != remote:
        raise Refused("SignerMismatch", 7)
    check_clock(hello["timestamp_ms"], now_ms)
    me = public_of(responder_seed)
    if not verify(hello["static_key"], "handshake hello", hello_signed_bytes(hello, me), hello["signature"]):
        raise Refused("BadSignature", 3)
    ack = {"type": 2, "version": version, "versions": SUPPORTED, "static_key": me,
           "ephemeral": x25519_public(eph_secret), "timestamp_ms": now_ms, "nonce": nonce}
    if x25519(eph_secret, hello["ephemeral"]) is None:
        raise Refused("WeakEphemeral", 3)
    ack["signature"] = sign(responder_seed, "handshake ack", ack_signed_bytes(ack, hello_bytes))
    return ack


def start(initiator_seed, responder, eph_secret, nonce, now_ms):
    hello = {"type": 1, "versions": SUPPORTED, "static_key": public_of(initiator_seed),
             "ephemeral": x25519_public(eph_secret), "timestamp_ms": now_ms, "nonce": nonce}
    hello["signature"] = sign(initiator_seed, "handshake hello", hello_signed_bytes(hello, responder))
    return hello


def finish(hello, responder, eph_secret, reply_bytes, now_ms):
    reply = decode_handshake(reply_bytes)
    if reply["type"] == 3:
        raise Refused("Rejected", reply["code"])
    if reply["type"] == 1:
        raise Refused("Unexpected", 3)
    if reply["static_key"] != responder:
        raise Refused("SignerMismatch", 7)
    if best_common(hello["versions"], reply["versions"]) != reply["version"]:
        raise Refused("Downgrade", 5)
    check_clock(reply["timestamp_ms"], now_ms)
    hello_bytes = encode_handshake(hello)
    if not verify(responder, "handshake ack", ack_signed_bytes(reply, hello_bytes), reply["signature"]):
        raise Refused("BadSignature", 3)
    shared = x25519(eph_secret, reply["ephemeral"])
    if shared is None:
        raise Refused("WeakEphemeral", 3)
    return reply["version"], transcript_hash(hello_bytes, reply_bytes)


# ---- Section 7: envelopes --------------------------------------------------------------------------------

ERROR_CODES = {2, 3, 4, 5, 7}
SIGNED_TYPES = {1, 2, 6, 10}
MAX_CONNECT_NOTE = 1024
REASONS = {1: "scheduled", 2: "compromise", 3: "upgrade"}


def rotation_signed_bytes(rec):
    return rec["old_key"] + rec["new_key"] + rec["new_encrypt_pub"] + u64(rec["timestamp_ms"]) + u8(rec["reason"])


def encode_body(t, m, with_signature=True):
    sig = m.get("signature", b"") if with_signature else b""
    if t == 1:
        return m["author"] + string(m["session"]) + string(m["text"]) + u8(m["hop_count"]) + sig
    if t == 2:
        return m["author"] + string(m["session"]) + string(m["text"]) + sig
    if t == 3:
        return string(m["text"])
    if t == 4:
        return u8(m["status"])
    if t == 5:
        return string(m["name"]) + string(m["detail"])
    if t == 6:
        return m["author"] + blob(m["token"]) + sig
    if t == 7:
        return lst(m["sessions"], string) + u8(m["capabilities"])
    if t == 8:
        return rotation_signed_bytes(m) + m["old_sig"] + m["new_sig"]
    if t == 9:
        return u8(m["code"]) + string(m["message"]) + option(m["retry_after_ms"], u64)
    if t == 10:
        return (m["author"] + string(m["topic"]) + blob(m["profile"]) + option(m["session"], string)
                + string(m["note"]) + sig)
    if t == 11:
        return u8(1 if m["accepted"] else 0) + lst(m["sessions"], string) + u8(m["capabilities"]) + string(m["reason"])
    return blob(m["request"] if t == 12 else m["accept"])


def encode_envelope(nonce, timestamp_ms, t, m, with_signature=True):
    return nonce + u64(timestamp_ms) + u8(t) + encode_body(t, m, with_signature)


def envelope_signed_bytes(recipient, env):
    return recipient + encode_envelope(env["nonce"], env["timestamp_ms"], env["type"], env["message"], False)


def decode_envelope(data):
    def dec(r):
        nonce, ts, t = r.take(16), r.u64(), r.u8()
        session = lambda: r.string(255)  # noqa: E731
        text = lambda: r.string(MAX_PAYLOAD)  # noqa: E731
        if t == 1:
            m = {"author": r.take(32), "session": session(), "text": text(), "hop_count": r.u8(),
                 "signature": r.take(64)}
        elif t == 2:
            m = {"author": r.take(32), "session": session(), "text": text(), "signature": r.take(64)}
        elif t == 3:
            m = {"text": text()}
        elif t == 4:
            status = r.u8()
            if status > 3:
                raise CodecError("UnknownTag")
            m = {"status": status}
        elif t == 5:
            m = {"name": r.string(255), "detail": text()}
        elif t == 6:
            author = r.take(32)
            token = r.blob(MAX_PAYLOAD)
            decode_token(token)
            m = {"author": author, "token": token, "signature": r.take(64)}
        elif t == 7:
            sessions = r.list(32, 4, session)
            caps = r.u8()
            if caps & ~3:
                raise CodecError("UnknownTag")
            m = {"sessions": sessions, "capabilities": caps}
        elif t == 8:
            m = {"old_key": r.take(32), "new_key": r.take(32), "new_encrypt_pub": r.take(32),
                 "timestamp_ms": r.u64(), "reason": r.u8()}
            if m["reason"] not in REASONS:
                raise CodecError("UnknownTag")
            m["old_sig"], m["new_sig"] = r.take(64), r.take(64)
        elif t == 9:
            code = r.u8()
            if code not in ERROR_CODES:
                raise CodecError("UnknownTag")
            m = {"code": code, "message": r.string(4096), "retry_after_ms": r.option(r.u64)}
        elif t == 10:
            m = {"author": r.take(32), "topic": r.string(MAX_TOPIC_NAME)}
            m["profile"] = r.blob(MAX_PROFILE_BYTES)
            inner_codec_rules(decode_profile, m["profile"])
            m["session"] = r.option(session)
            m["note"], m["signature"] = r.string(MAX_CONNECT_NOTE), r.take(64)
        elif t == 11:
            accepted = r.u8()
            if accepted not in (0, 1):
                raise CodecError("UnknownTag")
            sessions = r.list(32, 4, session)
            caps = r.u8()
            if caps & ~3:
                raise CodecError("UnknownTag")
            m = {"accepted": accepted == 1, "sessions": sessions, "capabilities": caps,
                 "reason": r.string(MAX_CONNECT_NOTE)}
        elif t in (12, 13):
            kind = "request" if t == 12 else "accept"
            m = {kind: r.blob(FRIEND_MAX_BYTES)}
            inner_codec_rules(lambda b: decode_friend(b, kind), m[kind])
        else:
            raise CodecError("UnknownTag")
        return {"nonce": nonce, "timestamp_ms": ts, "type": t, "message": m}
    return decode_all(data, dec)


def inner_codec_rules(decoder, data):
    """A structure carried as bytes inside an envelope (a profile, a friend message): its decoding errors
    are the envelope's, and a field rule it breaks that is no codec error is the envelope's Invalid."""
    try:
        decoder(data)
    except Refused as e:
        raise CodecError(e.error[len("Malformed."):] if e.error.startswith("Malformed.") else "Invalid") from None


def verify_envelope(env, recipient):
    """The author (for a rotation, the old key) or None; raises BadSignature."""
    m = env["message"]
    if env["type"] == 8:
        signed = rotation_signed_bytes(m)
        if not (verify(m["old_key"], "rotation", signed, m["old_sig"])
                and verify(m["new_key"], "rotation", signed, m["new_sig"])):
            raise Refused("BadSignature", 3)
        return m["old_key"]
    if env["type"] not in SIGNED_TYPES:
        return None
    if not verify(m["author"], "message", envelope_signed_bytes(recipient, env), m["signature"]):
        raise Refused("BadSignature", 3)
    return m["author"]


def verify_from(env, recipient, remote):
    author = verify_envelope(env, recipient)
    if env["type"] in SIGNED_TYPES and author != remote:
        raise Refused("AuthorMismatch", 7)
    return author


# ---- Section 8: invites ----------------------------------------------------------------------------------

def token_unsigned(t):
    return (t["issuer"] + t["issuer_encrypt_pub"] + t["subject"] + lst(t["sessions"], string) + u8(t["capabilities"])
            + u64(t["expires_ms"]) + t["nonce"] + lst(t["hints"], string))


def decode_token(data):
    """Raises CodecError; field rules included (section 8)."""
    def dec(r):
        t = {"issuer": r.take(32), "issuer_encrypt_pub": r.take(32), "subject": r.take(32),
             "sessions": r.list(32, 4, lambda: r.string(255))}
        t["capabilities"] = r.u8()
        if t["capabilities"] & ~3:
            raise CodecError("UnknownTag")
        t["expires_ms"], t["nonce"] = r.u64(), r.take(16)
        t["hints"] = r.list(8, 4, lambda: r.string(256))
        t["signature"] = r.take(64)
        if not t["sessions"] or any(s == "" for s in t["sessions"]) or t["capabilities"] == 0:
            raise CodecError("Invalid")
        return t
    return decode_all(data, dec)


def b64url_decode_strict(s):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s) or len(s) % 4 == 1:
        raise Refused("BadBase64", 3)
    data = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != s:  # non-zero unused bits
        raise Refused("BadBase64", 3)
    return data


def check_token(t, now_ms):
    if not verify(t["issuer"], "invite", token_unsigned(t), t["signature"]):
        raise Refused("BadSignature", 3)
    if now_ms >= t["expires_ms"]:
        raise Refused("Expired", 3)


def parse_invite(uri, now_ms):
    s = uri.strip(WHITESPACE)
    if not s.startswith("wop1://"):
        raise Refused("BadPrefix", 3)
    body = s[len("wop1://"):]
    if len(body.encode("utf-8")) > 16384:
        raise Refused("TooLong", 3)
    raw = b64url_decode_strict(body)
    try:
        t = decode_token(raw)
    except CodecError as e:
        raise Refused("Truncated" if e.kind == "Truncated" else "Invalid." + e.kind, 3) from None
    check_token(t, now_ms)
    return t


def verify_claim(t, issuer, claimant, now_ms, used):
    if t["issuer"] != issuer:
        raise Refused("WrongIssuer", 3)
    check_token(t, now_ms)
    if t["subject"] != claimant:
        raise Refused("WrongClaimant", 7)
    if t["nonce"] in used:
        raise Refused("NonceUsed", 3)
    return t


# ---- Section 9: rotation records as JSON ------------------------------------------------------------------

ROTATION_FIELDS = ["oldKey", "newKey", "newEncryptPub", "reason", "timestamp", "oldSig", "newSig"]


def rotation_from_json(text):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate field")
        return dict(pairs)

    def hex_exact(v, n):
        if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]*", v) or len(v) != 2 * n:
            raise ValueError("bad hex")
        return bytes.fromhex(v)

    try:
        obj = json.loads(text, object_pairs_hook=no_duplicates)
        if not isinstance(obj, dict) or any(f not in obj for f in ROTATION_FIELDS):
            raise ValueError("missing field")
        reason = {v: k for k, v in REASONS.items()}.get(obj["reason"]) if isinstance(obj["reason"], str) else None
        ts = obj["timestamp"]
        if reason is None or not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < 2**64:
            raise ValueError("bad reason or timestamp")
        if not isinstance(obj["oldKey"], str) or not isinstance(obj["newKey"], str):
            raise ValueError("keys are strings")
        rec = {"old_key": parse_public_id(obj["oldKey"]), "new_key": parse_public_id(obj["newKey"]),
               "new_encrypt_pub": hex_exact(obj["newEncryptPub"], 32), "timestamp_ms": ts, "reason": reason,
               "old_sig": hex_exact(obj["oldSig"], 64), "new_sig": hex_exact(obj["newSig"], 64)}
    except (ValueError, Refused):
        raise Refused("Json") from None
    signed = rotation_signed_bytes(rec)
    if not (verify(rec["old_key"], "rotation", signed, rec["old_sig"])
            and verify(rec["new_key"], "rotation", signed, rec["new_sig"])):
        raise Refused("BadSignature")
    return rec


# ---- Section 11: replay window ---------------------------------------------------------------------------

class ReplayWindow:
    def __init__(self, window_ms, capacity):
        self.window, self.capacity, self.expiry = window_ms, capacity, {}

    def check(self, nonce, timestamp_ms, now_ms):
        self.expiry = {n: e for n, e in self.expiry.items() if e >= now_ms}
        if abs(timestamp_ms - now_ms) > self.window:
            raise Refused("Stale", 3)
        if nonce in self.expiry:
            raise Refused("Replayed", 3)
        if len(self.expiry) >= self.capacity:
            raise Refused("Full", 4)
        self.expiry[nonce] = timestamp_ms + self.window


# ---- Section 15: friend requests and accepts -------------------------------------------------------------

FRIEND_TAGS = {"request": "FRIEND_REQUEST", "accept": "FRIEND_ACCEPT"}
FRIEND_DOMAINS = {"request": "friend request", "accept": "friend accept"}
FRIEND_MAX_BYTES = 2400
FRIEND_MAX_LINE = 8192
HINT_PLAIN = set(range(0x21, 0x7F)) - {ord("%"), ord(","), ord("|")}


def friend_name_ok(name):
    return (0 < len(name.encode("utf-8")) <= 32 and re.fullmatch(r"[A-Za-z0-9._-]+", name) is not None
            and name[0] not in ".-" and ".." not in name)


def friend_unsigned(m, kind):
    out = m["to"] + string(m["name"]) + m["key"] + m["encrypt_pub"] + lst(m["hints"], string)
    if kind == "accept":
        out += m["request_sig"]
    return out + u64(m["ts_ms"])


def friend_field_rules(m):
    """Raises CodecError: the rules applied once every field is read."""
    if not friend_name_ok(m["name"]):
        raise CodecError("Invalid")
    if len(m["hints"]) > 8 or any(len(h.encode("utf-8")) > 256 for h in m["hints"]):
        raise CodecError("TooLong")
    if any(h == "" for h in m["hints"]) or m["to"] == m["key"]:
        raise CodecError("Invalid")


def decode_friend(data, kind):
    if len(data) > FRIEND_MAX_BYTES:
        raise Refused("TooLarge", 3)

    def dec(r):
        m = {"to": r.take(32), "name": r.string(32), "key": r.take(32), "encrypt_pub": r.take(32),
             "hints": r.list(8, 4, lambda: r.string(256))}
        if kind == "accept":
            m["request_sig"] = r.take(64)
        m["ts_ms"], m["signature"] = r.u64(), r.take(64)
        friend_field_rules(m)
        return m
    try:
        return decode_all(data, dec)
    except CodecError as e:
        raise Refused("Malformed." + e.kind, 3) from None


def escape_hint(hint):
    return "".join(chr(b) if b in HINT_PLAIN else f"%{b:02X}" for b in hint.encode("utf-8"))


def unescape_hint(text):
    raw, out, i = text.encode("utf-8"), bytearray(), 0
    while i < len(raw):
        if raw[i] in HINT_PLAIN:
            out.append(raw[i])
            i += 1
            continue
        digits = raw[i + 1:i + 3]
        if raw[i] != ord("%") or not re.fullmatch(rb"[0-9A-F]{2}", digits) or int(digits, 16) in HINT_PLAIN:
            raise Refused("BadField.hints", 3)
        out.append(int(digits, 16))
        i += 3
    try:
        if not out:
            raise UnicodeDecodeError("utf-8", b"", 0, 0, "empty")
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("BadField.hints", 3) from None


def friend_line(m, kind):
    fields = [("to", m["to"].hex()), ("from", m["name"]), ("pubkey", m["key"].hex()),
              ("encryptPub", m["encrypt_pub"].hex()), ("hints", ",".join(escape_hint(h) for h in m["hints"]))]
    if kind == "accept":
        fields.append(("requestSig", m["request_sig"].hex()))
    fields += [("ts", str(m["ts_ms"])), ("sig", m["signature"].hex())]
    return FRIEND_TAGS[kind] + "".join(f" | {k}:{v}" for k, v in fields)


def parse_friend_line(text, want):
    s = text.strip(WHITESPACE)
    if len(s.encode("utf-8")) > FRIEND_MAX_LINE:
        raise Refused("LineTooLong", 3)
    parts = s.split("|")
    kinds = {tag: kind for kind, tag in FRIEND_TAGS.items()}
    kind = kinds.get(parts[0].strip(WHITESPACE))
    if kind is None:
        raise Refused("NotAFriendLine", 3)
    names = ["to", "from", "pubkey", "encryptPub", "hints"] + (["requestSig"] if kind == "accept" else []) + ["ts", "sig"]
    rest, m = parts[1:], {}
    for n, name in enumerate(names):
        part = rest[n].strip(WHITESPACE) if n < len(rest) else None
        if part is None or not part.startswith(name + ":"):
            raise Refused("BadField." + name, 3)
        v = part[len(name) + 1:]
        if name in ("to", "pubkey", "encryptPub", "requestSig", "sig"):
            size = 64 if name in ("requestSig", "sig") else 32
            if not re.fullmatch(f"[0-9a-f]{{{2 * size}}}", v):
                raise Refused("BadField." + name, 3)
            m[{"to": "to", "pubkey": "key", "encryptPub": "encrypt_pub", "requestSig": "request_sig",
               "sig": "signature"}[name]] = bytes.fromhex(v)
        elif name == "from":
            if not friend_name_ok(v):
                raise Refused("BadName", 3)
            m["name"] = v
        elif name == "hints":
            m["hints"] = [] if v == "" else [unescape_hint(h) for h in v.split(",")]
        elif not re.fullmatch(r"0|[1-9][0-9]*", v) or int(v) >= 2**64:
            raise Refused("BadField.ts", 3)
        else:
            m["ts_ms"] = int(v)
    if len(rest) > len(names):
        raise Refused("BadField.sig", 3)
    try:
        friend_field_rules(m)
    except CodecError as e:
        raise Refused("Malformed." + e.kind, 3) from None
    if kind != want:
        raise Refused("WrongKind", 3)
    return m


def verify_friend_signed(m, kind, me, now_ms):
    if not verify(m["key"], FRIEND_DOMAINS[kind], friend_unsigned(m, kind), m["signature"]):
        raise Refused("BadSignature", 3)
    if abs(m["ts_ms"] - now_ms) > MAX_SKEW:
        raise Refused("Stale", 3)
    if m["to"] != me:
        raise Refused("NotForMe", 7)


def verify_friend_accept(a, me, now_ms, pending):
    verify_friend_signed(a, "accept", me, now_ms)
    if a["request_sig"] != pending["signature"] or pending["key"] != me:
        raise Refused("RequestMismatch", 3)
    if a["key"] != pending["to"]:
        raise Refused("WrongAccepter", 7)


def verify_friend_accept_among(a, me, now_ms, pendings):
    verify_friend_signed(a, "accept", me, now_ms)
    ours = [i for i, p in enumerate(pendings) if p["signature"] == a["request_sig"] and p["key"] == me]
    if not ours:
        raise Refused("UnknownRequest", 3)
    if a["key"] != pendings[ours[0]]["to"]:
        raise Refused("WrongAccepter", 7)
    return ours[0]


# ---- Section 14: discovery ------------------------------------------------------------------------------

MAX_CONTENT = 2048
MAX_TOPICS = 8
MAX_TOPIC_NAME = 128
MAX_HINTS = 8
MAX_HINT_LEN = 256
MAX_PROFILE_BYTES = 3968
MAX_TOPIC_MESSAGE = 4096
PEER_TTL = 60_000


def topic_id(name):
    return hashlib.sha256(b"wopr:topic:" + name.encode("utf-8")).digest()


def profile_unsigned(p):
    return (p["author"] + p["encrypt_pub"] + string(p["content"]) + lst(p["topics"], string) + lst(p["hints"], string)
            + u64(p["updated_ms"]))


def read_profile(r):
    return {"author": r.take(32), "encrypt_pub": r.take(32), "content": r.string(MAX_CONTENT),
            "topics": r.list(MAX_TOPICS, 4, lambda: r.string(MAX_TOPIC_NAME)),
            "hints": r.list(MAX_HINTS, 4, lambda: r.string(MAX_HINT_LEN)),
            "updated_ms": r.u64(), "signature": r.take(64)}


def decode_profile(data):
    """Refused("TooLarge"), Refused("Malformed.<codec error>") or a field rule's name (section 14)."""
    if len(data) > MAX_PROFILE_BYTES:
        raise Refused("TooLarge")
    try:
        p = decode_all(data, read_profile)
    except CodecError as e:
        raise Refused("Malformed." + e.kind) from None
    return profile_rules(p)


def profile_rules(p):
    if not 1 <= len(p["topics"]) <= MAX_TOPICS:
        raise Refused("TopicCount")
    if any(not t for t in p["topics"]):
        raise Refused("BadTopicName")
    if any(not h for h in p["hints"]):
        raise Refused("BadHints")
    return p


def withdraw_unsigned(w):
    return w["author"] + string(w["topic"]) + u64(w["withdrawn_ms"])


# The smallest encoding that decodes as a profile: two keys, empty content, empty topic and hint lists,
# the date and the signature.
MIN_PROFILE_LEN = 32 + 32 + 4 + 2 + 2 + 8 + 64
MAX_SHARED_PROFILES = 64


def decode_share(body):
    """Section 14.3, type 3: the whole share decodes first, then each profile by an announce's rules."""
    try:
        share = decode_all(body, lambda r: {"nonce": r.u64(), "profiles": r.list(
            MAX_SHARED_PROFILES, MIN_PROFILE_LEN, lambda: read_profile(r))})
    except CodecError as e:
        raise Refused("Malformed." + e.kind) from None
    for p in share["profiles"]:
        if len(profile_unsigned(p)) + 64 > MAX_PROFILE_BYTES:
            raise Refused("TooLarge")
        profile_rules(p)
    return share


def decode_friend_post(body, kind):
    try:
        return decode_friend(body, kind)
    except Refused as e:
        raise Refused("Friend." + e.error) from None


def parse_topic_message(data):
    if len(data) > MAX_TOPIC_MESSAGE:
        raise Refused("TooLarge")
    if not data:
        raise Refused("Malformed.Truncated")
    if data[0] == 1:
        return {"type": 1, "profile": decode_profile(data[1:])}
    if data[0] == 3:
        return {"type": 3, "share": decode_share(data[1:])}
    if data[0] == 4:
        return {"type": 4, "friend": decode_friend_post(data[1:], "request")}
    if data[0] == 5:
        return {"type": 5, "friend": decode_friend_post(data[1:], "accept")}
    if data[0] == 2:
        try:
            return {"type": 2, "withdraw": decode_all(data[1:], lambda r: {
                "author": r.take(32), "topic": r.string(MAX_TOPIC_NAME), "withdrawn_ms": r.u64(),
                "signature": r.take(64)})}
        except CodecError as e:
            raise Refused("Malformed." + e.kind) from None
    raise Refused("Malformed.UnknownTag")


def verify_profile_for(p, topic, now_ms):
    if not verify(p["author"], "profile", profile_unsigned(p), p["signature"]):
        raise Refused("BadSignature")
    if topic not in p["topics"]:
        raise Refused("WrongTopic")
    if p["updated_ms"] - now_ms > MAX_SKEW:
        raise Refused("FromTheFuture")


def verify_withdraw_for(w, topic):
    if not verify(w["author"], "withdraw", withdraw_unsigned(w), w["signature"]):
        raise Refused("BadSignature")
    if w["topic"] != topic:
        raise Refused("WrongTopic")


class PeerTable:
    """What a receiver keeps of a topic's messages (section 14): the newest profile per author and topic."""

    def __init__(self, me, joined, only, capacity):
        self.me, self.only, self.capacity = me, only, capacity
        self.topics = {t: {} for t in joined}
        # Per topic, who withdrew and when: a profile of theirs dated at or before it lists no one.
        self.withdrawn = {t: {} for t in joined}

    def offer(self, topic, msg, now_ms):
        """The table's answer, or Refused for Stale, Full and a failed check. A share is offered profile by
        profile (see offer_share); friend posts list no one."""
        if msg["type"] in (3, 4, 5):
            return {"offer": "Ignored"}
        body = msg.get("profile") or msg.get("withdraw")
        author = body["author"]
        if author == self.me or (self.only is not None and author not in self.only) or topic not in self.topics:
            return {"offer": "Ignored"}
        peers = self.topics[topic]
        known = peers.get(author)
        if msg["type"] == 2:
            if known is None or known["updated_ms"] > body["withdrawn_ms"]:
                return {"offer": "Unchanged"}
            verify_withdraw_for(body, topic)
            del peers[author]
            self.withdrawn[topic][author] = body["withdrawn_ms"]
            return {"offer": "Withdrawn"}
        if known is not None and known["updated_ms"] >= body["updated_ms"]:
            return {"offer": "Unchanged"}
        withdrew = self.withdrawn[topic].get(author)
        if body["updated_ms"] + PEER_TTL + MAX_SKEW < now_ms or (withdrew is not None and body["updated_ms"] <= withdrew):
            raise Refused("Stale")
        verify_profile_for(body, topic, now_ms)
        if known is None and len(peers) >= self.capacity:
            raise Refused("Full")
        peers[author] = body
        if known is None:
            return {"offer": "New"}
        return {"offer": "Updated", "content_changed": known["content"] != body["content"]}


def check_connect_request(m, now_ms):
    """The profile a connect-request carries is its author's, for its topic, not from the future."""
    try:
        if m["profile"]["author"] != m["author"]:
            raise Refused("BadSignature")
        verify_profile_for(m["profile"], m["topic"], now_ms)
    except Refused as e:
        raise Refused("Profile." + e.error, 3) from None


# ---- The vectors -----------------------------------------------------------------------------------------

def h(s):
    return bytes.fromhex(s)


class Vectors:
    def __init__(self, positive):
        self.v = positive
        self.seeds = {i["name"]: h(i["ed25519_seed"]) for i in positive["identities"]}
        self.keys = {n: public_of(s) for n, s in self.seeds.items()}
        self.names = {k: n for n, k in self.keys.items()}
        self.checked = 0

    def key(self, ref):
        return self.keys[ref] if ref in self.keys else h(ref)

    def name(self, key):
        return self.names.get(key, key.hex())

    def eq(self, what, ours, theirs):
        self.checked += 1
        if ours != theirs:
            raise AssertionError(f"{what}: computed {ours!r}, the vector says {theirs!r}")

    # -- positive structures

    def identities(self):
        for i in self.v["identities"]:
            seed, xs = h(i["ed25519_seed"]), h(i["x25519_secret"])
            self.eq(i["name"] + " public_key", public_of(seed).hex(), i["public_key"])
            self.eq(i["name"] + " clamped", clamp(xs).hex(), i["x25519_secret_clamped"])
            self.eq(i["name"] + " encrypt_pub", x25519_public(xs).hex(), i["encrypt_pub"])
            self.eq(i["name"] + " encrypt_pub clamped", x25519_public(clamp(xs)).hex(), i["encrypt_pub"])
            self.eq(i["name"] + " short_id", short_id(public_of(seed)), i["short_id"])
        for d in self.v["domains"]:
            self.eq("domain " + d["domain"], domain_bytes(d["domain"], b"").hex(), d["prefix"])

    def handshake(self):
        hs = self.v["handshake"]
        alice, bob = self.seeds[hs["initiator"]], self.seeds[hs["responder"]]
        bob_key = public_of(bob)
        hello = start(alice, bob_key, h(hs["initiator_ephemeral_secret"]), h(hs["initiator_nonce"]),
                      hs["hello_timestamp_ms"])
        self.eq("versions", hello["versions"], hs["versions"])
        self.eq("hello signed bytes", hello_signed_bytes(hello, bob_key).hex(), hs["hello_signed_bytes"])
        hello_bytes = encode_handshake(hello)
        self.eq("hello", hello_bytes.hex(), hs["hello"])
        self.eq("hello frame", frame(hello_bytes).hex(), hs["hello_frame"])
        self.eq("initiator ephemeral", hello["ephemeral"].hex(), hs["initiator_ephemeral_public"])
        ack = respond(bob, public_of(alice), hello_bytes, hs["ack_timestamp_ms"],
                      h(hs["responder_ephemeral_secret"]), h(hs["responder_nonce"]))
        ack_bytes = encode_handshake(ack)
        self.eq("ack signed bytes", ack_signed_bytes(ack, hello_bytes).hex(), hs["ack_signed_bytes"])
        self.eq("ack", ack_bytes.hex(), hs["ack"])
        self.eq("responder ephemeral", ack["ephemeral"].hex(), hs["responder_ephemeral_public"])
        version, th = finish(hello, bob_key, h(hs["initiator_ephemeral_secret"]), ack_bytes, hs["ack_timestamp_ms"] + 1)
        self.eq("transcript hash", th.hex(), hs["transcript_hash"])
        shared = x25519(h(hs["initiator_ephemeral_secret"]), ack["ephemeral"])
        self.eq("shared", shared.hex(), hs["shared_secret"])
        self.eq("shared, other side", x25519(h(hs["responder_ephemeral_secret"]), hello["ephemeral"]), shared)
        prk = hkdf_extract(th, shared)
        for d in ("i2r", "r2i"):
            self.eq("key_" + d, hkdf_expand32(prk, label(d)).hex(), hs["key_" + d])
            self.eq("stream 4 " + d, hkdf_expand32(prk, label(d, 4)).hex(), hs[f"stream_4_key_{d}"])
        for r in hs["rejects"]:
            self.eq("reject", encode_handshake({"type": 3, "code": r["code"], "message": r["message"]}).hex(), r["bytes"])
        self.prk = prk

    def envelopes(self):
        self.by_name = {}
        for e in self.v["envelopes"]:
            t, f = e["type"], dict(e["message"])
            for k in ("author", "old_key", "new_key"):
                if k in f:
                    f[k] = self.key(f[k])
            for k in ("signature", "token", "new_encrypt_pub", "old_sig", "new_sig", "profile", "request", "accept"):
                if k in f:
                    f[k] = h(f[k])
            env = {"nonce": h(e["nonce"]), "timestamp_ms": e["timestamp_ms"], "type": t, "message": f}
            if t in SIGNED_TYPES:
                recipient = self.key(e["recipient"])
                signed = envelope_signed_bytes(recipient, env)
                self.eq(e["name"] + " signed bytes", signed.hex(), e["signed_bytes"])
                seed = self.seeds[self.name(f["author"])]
                self.eq(e["name"] + " signature", sign(seed, "message", signed), f["signature"])
            if t == 8:
                signed = rotation_signed_bytes(f)
                self.eq("rotation old_sig", sign(self.seeds[self.name(f["old_key"])], "rotation", signed), f["old_sig"])
                self.eq("rotation new_sig", sign(self.seeds[self.name(f["new_key"])], "rotation", signed), f["new_sig"])
            raw = encode_envelope(env["nonce"], env["timestamp_ms"], t, f)
            self.eq(e["name"] + " envelope", raw.hex(), e["envelope"])
            self.eq(e["name"] + " decodes", decode_envelope(raw), env)
            self.by_name[e["name"]] = raw

    def frames(self):
        for f in self.v["sealed_frames"]:
            key = hkdf_expand32(self.prk, label(f["direction"]))
            plain = self.by_name[f["envelope"]]
            self.eq("connection frame plaintext", plain.hex(), f["plaintext_envelope"])
            self.eq("connection frame", seal(key, label(f["direction"]), f["counter"], plain).hex(), f["frame"])
        for s in self.v["streams"]:
            sid = s["stream_id"]
            sent = {"i2r": 0, "r2i": 0}
            openers = {}
            for d in ("i2r", "r2i"):
                self.eq(f"stream {sid} key {d}", hkdf_expand32(self.prk, label(d, sid)).hex(), s["key_" + d])
                self.eq(f"stream {sid} aad {d}", label(d, sid).hex(), s["aad_" + d])
                openers[d] = Opener(h(s["key_" + d]), label(d, sid))
            for f in s["frames"]:
                d = f["direction"]
                self.eq(f"stream {sid} counter", sent[d], f["counter"])
                wire = seal(h(s["key_" + d]), label(d, sid), sent[d], self.by_name[f["envelope"]])
                self.eq(f"stream {sid} frame {f['envelope']}", wire.hex(), f["frame"])
                self.eq("opens", openers[d].open(decode_frame(wire)), self.by_name[f["envelope"]])
                sent[d] += 1

    def invite(self):
        inv = self.v["invite"]
        alice = self.seeds[inv["issuer"]]
        t = {"issuer": public_of(alice), "issuer_encrypt_pub": x25519_public(self.x25519(inv["issuer"])),
             "subject": self.keys[inv["subject"]], "sessions": inv["sessions"], "capabilities": inv["capabilities"],
             "expires_ms": inv["expires_ms"], "nonce": h(inv["nonce"]), "hints": inv["hints"]}
        self.eq("invite expiry is 7 days", inv["expires_ms"] - self.v["now_ms"], 7 * 24 * 3600 * 1000)
        signed = token_unsigned(t)
        self.eq("invite signed bytes", signed.hex(), inv["signed_bytes"])
        token = signed + sign(alice, "invite", signed)
        self.eq("token", token.hex(), inv["token"])
        uri = "wop1://" + base64.urlsafe_b64encode(token).rstrip(b"=").decode()
        self.eq("uri", uri, inv["uri"])
        self.eq("uri parses", parse_invite(uri, self.v["now_ms"])["signature"], token[-64:])

    def x25519(self, name):
        return h(next(i["x25519_secret"] for i in self.v["identities"] if i["name"] == name))

    def rotation(self):
        rot = self.v["rotation"]
        rec = {"old_key": self.keys[rot["old"]], "new_key": self.keys[rot["new"]],
               "new_encrypt_pub": x25519_public(self.x25519(rot["new"])), "timestamp_ms": rot["timestamp_ms"],
               "reason": rot["reason"]}
        signed = rotation_signed_bytes(rec)
        self.eq("rotation signed bytes", signed.hex(), rot["signed_bytes"])
        rec["old_sig"] = sign(self.seeds[rot["old"]], "rotation", signed)
        rec["new_sig"] = sign(self.seeds[rot["new"]], "rotation", signed)
        as_json = {"oldKey": rec["old_key"].hex(), "newKey": rec["new_key"].hex(),
                   "newEncryptPub": rec["new_encrypt_pub"].hex(), "reason": REASONS[rec["reason"]],
                   "timestamp": rec["timestamp_ms"], "oldSig": rec["old_sig"].hex(), "newSig": rec["new_sig"].hex()}
        self.eq("rotation json", as_json, rot["record_json"])
        self.eq("rotation json text", json.dumps(as_json, separators=(",", ":")), rot["record_json_text"])
        self.eq("rotation json parses", rotation_from_json(rot["record_json_text"]), rec)
        env = decode_envelope(h(rot["envelope"]))
        self.eq("rotation envelope record", env["message"], rec)
        self.eq("rotation envelope length", len(h(rot["envelope"])) - 25, 233)

    def friend(self):
        f = self.v["friend"]
        built = {}
        for kind in ("request", "accept"):
            v = f[kind]
            m = {"to": self.keys[v["to"]], "name": v["name"], "key": self.keys[v["from"]],
                 "encrypt_pub": x25519_public(self.x25519(v["from"])), "hints": v["hints"], "ts_ms": v["ts_ms"]}
            if kind == "accept":
                m["request_sig"] = built["request"]["signature"]
                self.eq("the accept answers the request", m["to"], built["request"]["key"])
            signed = friend_unsigned(m, kind)
            self.eq(f"friend {kind} signed bytes", signed.hex(), v["signed_bytes"])
            m["signature"] = sign(self.seeds[v["from"]], FRIEND_DOMAINS[kind], signed)
            self.eq(f"friend {kind} bytes", (signed + m["signature"]).hex(), v["bytes"])
            self.eq(f"friend {kind} line", friend_line(m, kind), v["line"])
            self.eq(f"friend {kind} line parses", parse_friend_line(v["line"], kind), m)
            self.eq(f"friend {kind} bytes decode", decode_friend(h(v["bytes"]), kind), m)
            built[kind] = m
        verify_friend_signed(built["request"], "request", built["request"]["to"], built["request"]["ts_ms"])
        verify_friend_accept(built["accept"], built["request"]["key"], built["accept"]["ts_ms"], built["request"])

    def discovery(self):
        d = self.v["discovery"]
        for t in d["topic_ids"]:
            self.eq("topic id " + t["name"], topic_id(t["name"]).hex(), t["id"])
        self.eq("topic id of coffee (section 14)", topic_id("coffee").hex(),
                "2fa096a34c45ef8daf121c3c065059a8c06ef5740b7327ff85e2ca2ce596c0de")
        v = d["profile"]
        p = {"author": self.keys[v["author"]], "encrypt_pub": x25519_public(self.x25519(v["author"])),
             "content": v["content"], "topics": v["topics"], "hints": v["hints"], "updated_ms": v["updated_ms"]}
        self.eq("profile encrypt_pub", p["encrypt_pub"].hex(), v["encrypt_pub"])
        signed = profile_unsigned(p)
        self.eq("profile signed bytes", signed.hex(), v["signed_bytes"])
        p["signature"] = sign(self.seeds[v["author"]], "profile", signed)
        self.eq("profile bytes", (signed + p["signature"]).hex(), v["bytes"])
        self.eq("announce", (u8(1) + signed + p["signature"]).hex(), v["announce"])
        self.eq("announce parses", parse_topic_message(h(v["announce"]))["profile"], p)
        verify_profile_for(p, v["topics"][0], v["updated_ms"])
        w = d["withdraw"]
        x = {"author": self.keys[w["author"]], "topic": w["topic"], "withdrawn_ms": w["withdrawn_ms"]}
        signed = withdraw_unsigned(x)
        self.eq("withdraw signed bytes", signed.hex(), w["signed_bytes"])
        x["signature"] = sign(self.seeds[w["author"]], "withdraw", signed)
        self.eq("withdraw bytes", (u8(2) + signed + x["signature"]).hex(), w["bytes"])
        self.eq("withdraw parses", parse_topic_message(h(w["bytes"]))["withdraw"], x)
        verify_withdraw_for(x, w["topic"])
        # The envelopes of types 10 to 13 carry exactly these structures.
        env = decode_envelope(self.by_name["connect_request"])
        self.eq("connect-request profile", env["message"]["profile"].hex(), v["bytes"])
        check_connect_request({**env["message"], "profile": decode_profile(env["message"]["profile"])},
                              env["timestamp_ms"])
        for kind in ("request", "accept"):
            env = decode_envelope(self.by_name["friend_" + kind])
            self.eq("friend " + kind + " envelope", env["message"][kind].hex(), self.v["friend"][kind]["bytes"])

    # -- behaviour cases

    def run(self, check, i):
        k = lambda f: self.key(i[f])  # noqa: E731
        if check == "public_id":
            return {"key": parse_public_id(i["text"]).hex()}
        if check == "frame":
            return {"body": decode_frame(h(i["frame"])).hex()}
        if check == "sealed":
            opener, result = Opener(h(i["key"]), h(i["aad"])), None
            for f in i["frames"]:
                try:
                    result = {"plaintext": opener.open(decode_frame(h(f))).hex()}
                except Refused as e:
                    result = e
            if isinstance(result, Refused):
                raise result
            return result
        if check == "handshake_respond":
            ack = respond(self.seeds[i["responder"]], k("remote"), h(i["hello"]), i["now_ms"],
                          h(i["responder_ephemeral_secret"]), h(i["responder_nonce"]))
            return {"ack": encode_handshake(ack).hex(), "version": ack["version"]}
        if check == "handshake_finish":
            secret = h(i["initiator_ephemeral_secret"])
            hello = start(self.seeds[i["initiator"]], k("responder"), secret, h(i["initiator_nonce"]), i["start_ms"])
            self.eq("the initiator's hello", encode_handshake(hello).hex(), i["hello"])
            version, th = finish(hello, k("responder"), secret, h(i["reply"]), i["now_ms"])
            return {"version": version, "transcript_hash": th.hex()}
        if check == "envelope_decode":
            try:
                return {"type": decode_envelope(h(i["envelope"]))["type"]}
            except CodecError as e:
                raise Refused(e.kind, 3) from None
        if check == "envelope_verify":
            try:
                env = decode_envelope(h(i["envelope"]))
            except CodecError as e:
                raise Refused("Malformed." + e.kind, 3) from None
            author = verify_from(env, k("recipient"), k("remote"))
            return {"author": None if author is None else self.name(author)}
        if check == "replay":
            w = ReplayWindow(i["window_ms"], i["capacity"])
            for m in i["accepted_before"]:
                w.check(h(m["nonce"]), m["timestamp_ms"], m["now_ms"])
            w.check(h(i["nonce"]), i["timestamp_ms"], i["now_ms"])
            return {}
        if check == "invite_parse":
            t = parse_invite(i["uri"], i["now_ms"])
            return {"token": (token_unsigned(t) + t["signature"]).hex()}
        if check == "invite_claim":
            t = decode_token(h(i["token"]))
            verify_claim(t, k("issuer"), k("claimant"), i["now_ms"], {h(n) for n in i["used_nonces"]})
            return {"sessions": t["sessions"], "capabilities": t["capabilities"]}
        if check == "rotation_json":
            return {"signed_bytes": rotation_signed_bytes(rotation_from_json(i["json"])).hex()}
        if check == "friend_request_line":
            m = parse_friend_line(i["line"], "request")
            verify_friend_signed(m, "request", k("me"), i["now_ms"])
            return {"request": (friend_unsigned(m, "request") + m["signature"]).hex()}
        if check == "friend_request":
            m = decode_friend(h(i["request"]), "request")
            verify_friend_signed(m, "request", k("me"), i["now_ms"])
            return {"line": friend_line(m, "request")}
        if check == "friend_accept":
            a = decode_friend(h(i["accept"]), "accept")
            pendings = [decode_friend(h(p), "request") for p in i["pending"]]
            index = verify_friend_accept_among(a, k("me"), i["now_ms"], pendings)
            return {"line": friend_line(a, "accept"), "answers": index}
        if check == "friend_accept_line":
            a = parse_friend_line(i["line"], "accept")
            verify_friend_accept(a, k("me"), i["now_ms"], parse_friend_line(i["pending"], "request"))
            return {"accept": (friend_unsigned(a, "accept") + a["signature"]).hex()}
        if check == "topic_message":
            table = PeerTable(k("me"), i["joined"], None if i["only"] is None else {self.key(o) for o in i["only"]},
                              i["capacity"])
            for m in i["before"]:
                taken = table.offer(m["topic"], parse_topic_message(h(m["message"])), m["now_ms"])
                self.eq("an earlier message is taken", taken["offer"] in ("New", "Updated", "Withdrawn"), True)
            msg = parse_topic_message(h(i["message"]))
            if msg["type"] == 3:
                offers = []
                for p in msg["share"]["profiles"]:
                    try:
                        offers.append(table.offer(i["topic"], {"type": 1, "profile": p}, i["now_ms"]))
                    except Refused as e:
                        offers.append({"refused": e.error})
                result = {"offer": "Share", "offers": offers}
            else:
                result = table.offer(i["topic"], msg, i["now_ms"])
            result["listed"] = sorted(self.name(a) for a in table.topics.get(i["topic"], {}))
            return result
        if check == "connect_request":
            try:
                env = decode_envelope(h(i["envelope"]))
            except CodecError as e:
                raise Refused("Malformed." + e.kind, 3) from None
            verify_from(env, k("recipient"), k("remote"))
            m = env["message"]
            check_connect_request({**m, "profile": decode_profile(m["profile"])}, i["now_ms"])
            return {"author": self.name(m["author"]), "topic": m["topic"], "session": m["session"], "note": m["note"]}
        raise AssertionError(f"unknown check {check}")

    def cases(self, cases):
        for c in cases:
            what = f"{c['check']} case {c['name']}"
            try:
                result = self.run(c["check"], c["input"])
            except Refused as e:
                if "error" not in c:
                    raise AssertionError(f"{what} must succeed, refused with {e.error}") from None
                self.eq(what + ": error", e.error, c["error"])
                self.eq(what + ": code", e.code, c["code"])
                continue
            if "error" in c:
                raise AssertionError(f"{what} must fail with {c['error']}, got {result}")
            self.eq(what, result, c["result"])
        return len(cases)


def main():
    d = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    positive = json.loads((d / "v3.json").read_text())
    negative = json.loads((d / "v3-negative.json").read_text())
    v = Vectors(positive)
    v.identities()
    v.handshake()
    v.envelopes()
    v.frames()
    v.invite()
    v.rotation()
    v.friend()
    v.discovery()
    accepted = v.cases(positive["accepted"])
    refused = v.cases(negative["negative"])
    print(f"{v.checked} checks, {accepted} accepted and {refused} negative cases: all vectors agree")


if __name__ == "__main__":
    main()
