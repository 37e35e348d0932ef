#!/usr/bin/env python3
"""An independent implementation of WOPR's topic rendezvous (docs/PROTOCOL.md section 16), written from
that text and section 1, that checks docs/vectors/rendezvous.json: it rebuilds every key, entry and value
from the inputs, opens the value, refuses each refused value with the error the vector names, and judges
each checked entry as the vector says.

Usage: python3 docs/vectors/verify_rendezvous.py [docs/vectors/rendezvous.json]. Needs `cryptography` and
`pynacl` (docs/vectors/requirements.txt).
"""

import hashlib
import hmac
import json
import sys
from pathlib import Path

try:
    import nacl.exceptions
    import nacl.signing
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as e:
    sys.exit(f"verify_rendezvous.py needs its packages: pip install -r docs/vectors/requirements.txt ({e})")

SLOT_MS = 60_000
BUCKETS = 4
MAX_VALUE = 1000
NONCE_LEN, TAG_LEN = 12, 16
MAX_ENTRIES = 9
MIN_ENTRY = 32 + 8 + 2 + 64
MAX_HINTS, MAX_HINT_LEN = 4, 96
TTL_MS = 120_000
SKEW_MS = 5 * 60 * 1000
DOMAIN = "rendezvous-member"


class Refused(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error


def u8(v): return v.to_bytes(1, "big")
def u16(v): return v.to_bytes(2, "big")
def u32(v): return v.to_bytes(4, "big")
def u64(v): return v.to_bytes(8, "big")


# ---- Section 15.1: keys ---------------------------------------------------------------------------------

def hkdf(name, info, length):
    prk = hmac.new(b"wopr/v3 rendezvous", name.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


class Slot:
    def __init__(self, name, slot):
        assert 1 <= len(name.encode("utf-8")) <= 128
        self.slot = slot
        self.binding = hkdf(name, b"bind", 32)
        self.seed = hkdf(name, b"sign" + u64(slot), 32)
        self.signer = nacl.signing.SigningKey(self.seed)
        self.bep44_key = bytes(self.signer.verify_key)
        self.seal = hkdf(name, b"seal" + u64(slot), 32)
        self.salts = [hkdf(name, b"salt" + u64(slot) + u8(b), 16) for b in range(BUCKETS)]

    def home(self, key):
        h = hashlib.sha256(b"wopr/v3 rendezvous bucket" + u64(self.slot) + key).digest()
        return h[0] % BUCKETS

    def target(self, b):
        return hashlib.sha1(self.bep44_key + self.salts[b]).digest()


# ---- Section 15.2: entries ------------------------------------------------------------------------------

def domain_bytes(domain, message):
    return b"wopr/v3\x00" + domain.encode("ascii") + b"\x00" + message


def entry_unsigned(key, seen, hints):
    return key + u64(seen) + u16(len(hints)) + b"".join(u32(len(h)) + h.encode("ascii") for h in hints)


def sign_entry(seed, binding, seen, hints):
    signer = nacl.signing.SigningKey(seed)
    key = bytes(signer.verify_key)
    signed = binding + entry_unsigned(key, seen, hints)
    sig = signer.sign(domain_bytes(DOMAIN, signed)).signature
    return key, signed, sig, entry_unsigned(key, seen, hints) + sig


def printable(h):
    return len(h) >= 1 and all(0x21 <= c <= 0x7E for c in h)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.remaining():
            raise Refused("Truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self): return int.from_bytes(self.take(2), "big")
    def u32(self): return int.from_bytes(self.take(4), "big")
    def u64(self): return int.from_bytes(self.take(8), "big")


def read_entry(r):
    key = r.take(32)
    seen = r.u64()
    count = r.u16()
    if count > MAX_HINTS:
        raise Refused("TooLong")
    if count * 4 > r.remaining():
        raise Refused("Truncated")
    hints = []
    for _ in range(count):
        n = r.u32()
        if n > MAX_HINT_LEN:
            raise Refused("TooLong")
        raw = r.take(n)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("InvalidUtf8")
        hints.append(raw)
    if not all(printable(h) for h in hints):
        raise Refused("BadHint")
    sig = r.take(64)
    return {"key": key, "seen": seen, "hints": [h.decode("ascii") for h in hints], "sig": sig}


def judge(entry, binding, now):
    if entry["seen"] > now + SKEW_MS:
        return "FromTheFuture"
    if now - entry["seen"] > TTL_MS:
        return "Stale"
    signed = binding + entry_unsigned(entry["key"], entry["seen"], entry["hints"])
    try:
        nacl.signing.VerifyKey(entry["key"]).verify(domain_bytes(DOMAIN, signed), entry["sig"])
    except (nacl.exceptions.BadSignatureError, ValueError):
        return "BadSignature"
    return "ok"


# ---- Section 15.3: values -------------------------------------------------------------------------------

def seal(keys, b, plaintext, nonce):
    return nonce + AESGCM(keys.seal).encrypt(nonce, plaintext, keys.salts[b])


def open_value(keys, b, value):
    if len(value) > MAX_VALUE:
        raise Refused("TooLarge")
    if len(value) < NONCE_LEN + TAG_LEN:
        raise Refused("Unsealed")
    try:
        plain = AESGCM(keys.seal).decrypt(value[:NONCE_LEN], value[NONCE_LEN:], keys.salts[b])
    except InvalidTag:
        raise Refused("Unsealed")
    r = Reader(plain)
    count = r.u16()
    if count > MAX_ENTRIES:
        raise Refused("TooManyEntries")
    if count * MIN_ENTRY > r.remaining():
        raise Refused("Truncated")
    entries = [read_entry(r) for _ in range(count)]
    if r.remaining():
        raise Refused("TrailingBytes")
    return entries


def bep44_signable(salt, seq, v):
    return b"4:salt" + str(len(salt)).encode() + b":" + salt + b"3:seqi" + str(seq).encode() + b"e1:v" + \
        str(len(v)).encode() + b":" + v


# ---- The checks ------------------------------------------------------------------------------------------

def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "rendezvous.json")
    doc = json.loads(path.read_text())
    failures = []

    def check(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    now = doc["now_ms"]
    check("slot", now // SLOT_MS, doc["slot"])
    keys = Slot(doc["topic"], doc["slot"])
    k = doc["keys"]
    check("binding", keys.binding.hex(), k["binding"])
    check("sign_seed", keys.seed.hex(), k["sign_seed"])
    check("bep44_key", keys.bep44_key.hex(), k["bep44_key"])
    check("seal", keys.seal.hex(), k["seal"])
    check("salts", [s.hex() for s in keys.salts], k["salts"])
    check("targets", [keys.target(b).hex() for b in range(BUCKETS)], k["targets"])
    check("domain", doc["signature_domain"], DOMAIN)

    encoded = {}
    for m in doc["members"]:
        key, signed, sig, entry = sign_entry(bytes.fromhex(m["seed"]), keys.binding, m["seen_ms"], m["hints"])
        check(f"{m['name']} key", key.hex(), m["key"])
        check(f"{m['name']} home bucket", keys.home(key), m["home_bucket"])
        check(f"{m['name']} signed bytes", signed.hex(), m["signed_bytes"])
        check(f"{m['name']} signature", sig.hex(), m["signature"])
        check(f"{m['name']} entry", entry.hex(), m["entry"])
        encoded[m["name"]] = entry

    v = doc["value"]
    b = v["bucket"]
    plaintext = u16(len(v["entries"])) + b"".join(encoded[n] for n in v["entries"])
    check("plaintext", plaintext.hex(), v["plaintext"])
    sealed = seal(keys, b, plaintext, bytes.fromhex(v["nonce"]))
    check("value", sealed.hex(), v["value"])
    signable = bep44_signable(keys.salts[b], v["seq"], sealed)
    check("bep44 signable", signable.hex(), v["bep44_signable"])
    check("bep44 signature", keys.signer.sign(signable).signature.hex(), v["bep44_signature"])
    opened = open_value(keys, b, sealed)
    lk = doc["lookup"]
    found = [e["key"].hex() for e in opened if judge(e, keys.binding, lk["now_ms"]) == "ok"]
    check("lookup members", found, lk["members"])

    for case in doc["refused_values"]:
        try:
            open_value(keys, case["bucket"], bytes.fromhex(case["value"]))
            got = "accepted"
        except Refused as e:
            got = e.error
        check(f"refused value {case['name']!r}", got, case["error"])

    ce = doc["checked_entries"]
    entries = open_value(keys, ce["bucket"], bytes.fromhex(ce["value"]))
    check("checked entries count", len(entries), len(ce["results"]))
    for e, want in zip(entries, ce["results"]):
        check(f"entry {want['why']!r}", judge(e, keys.binding, ce["now_ms"]), want["result"])

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    cases = len(doc["refused_values"]) + len(ce["results"])
    print(f"all rendezvous vectors agree ({len(doc['members'])} members, {cases} cases)")


if __name__ == "__main__":
    main()
