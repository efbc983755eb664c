# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed, encrypted per-host bundles: pack on the controller, verify and open on the host.

One host's rendered files (and the few values its roles need besides them) as one file that
any store may hold (a directory, HTTP, git) without exposing one host's secrets to another:

- **Confidential to its host**: the payload is encrypted to the host's X25519 public key
  (ECDH with a per-bundle ephemeral key, HKDF-SHA256, AES-256-GCM with the header as
  associated data). Only the host's private key (generated on the host, mode 0600) opens it.
- **Authentic**: the controller's Ed25519 signature covers every byte before it (magic,
  header, ciphertext). The host verifies it against its pinned controller key *first*, before
  it reads the header or decrypts anything; there is no way to skip it.
- **Content-addressed and deterministic**: the ephemeral key and nonce derive from the
  signing key, the recipient and the payload's hash, and Ed25519 signatures are
  deterministic, so the same files give the same bundle bytes; a bundle is stored under the
  sha256 of those bytes (:func:`bundle_name`).

Layout::

    MAGIC | header length (4 bytes, big endian) | header (canonical JSON) | ciphertext | signature (64)

The header (signed, in clear: a store sees host names, generations and sizes, nothing else):
``format``, ``host``, ``generation``, ``collection`` (the version that rendered the files),
``recipient`` and ``signer`` (key fingerprints), ``ephemeral`` (the X25519 public key),
``payload_sha256``. The payload (plaintext, zlib-compressed before encryption): a length, a
JSON manifest (``files``: path, mode, size, sha256 each; ``meta``: what the roles need besides
the files) and the files' bytes in manifest order.

``cryptography`` ships with ansible-core (its dependency); a host without it gets a
:class:`BundleError` saying so, not an ImportError.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import struct
import zlib

MAGIC = b"OCS-L3-BUNDLE-1\n"
FORMAT = 1
SIG_LEN = 64
HKDF_INFO = b"ocs-l3 bundle v1"
EPHEMERAL_INFO = b"ocs-l3 bundle ephemeral v1"
SIGNING_PUBLIC = "ocs-ed25519"
HOST_PUBLIC = "ocs-x25519"
HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$")
"""A host name as a store path component (the fabric's host names are labels)."""
NAME_RE = re.compile(r"^[0-9a-f]{64}\.bundle$")
MODE_RE = re.compile(r"^0[0-7]{3}$")
HEADER_KEYS = ("format", "host", "generation", "collection", "recipient", "signer", "ephemeral", "payload_sha256")


class BundleError(Exception):
    """A bundle or key that is refused; the message says why (nothing was written)."""


def _crypto():
    """The primitives from ``cryptography``, or a clear error when it is missing."""
    try:
        from cryptography.exceptions import InvalidSignature, InvalidTag
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:
        raise BundleError("ocs-l3 bundles need the Python package cryptography (an ansible-core dependency; "
                          "Debian: python3-cryptography): %s" % exc)
    return dict(InvalidSignature=InvalidSignature, InvalidTag=InvalidTag, hashes=hashes,
                serialization=serialization, ed25519=ed25519, x25519=x25519, AESGCM=AESGCM, HKDF=HKDF)


def _hkdf(c, secret, salt, info, length):
    return c["HKDF"](algorithm=c["hashes"].SHA256(), length=length, salt=salt, info=info).derive(secret)


def _raw_public(c, key):
    s = c["serialization"]
    return key.public_bytes(encoding=s.Encoding.Raw, format=s.PublicFormat.Raw)


def _raw_private(c, key):
    s = c["serialization"]
    return key.private_bytes(encoding=s.Encoding.Raw, format=s.PrivateFormat.Raw,
                             encryption_algorithm=s.NoEncryption())


def fingerprint(raw):
    """The short name of a raw public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(raw).hexdigest()[:16]


def public_text(kind, raw):
    """A public key as one line: ``<kind>:<base64>`` (the kind keeps the two keys apart)."""
    return "%s:%s" % (kind, base64.b64encode(raw).decode())


def parse_public(text, kind):
    """Raw 32 bytes of a ``<kind>:<base64>`` public key line; BundleError naming the problem."""
    text = text.strip()
    prefix, sep, body = text.partition(":")
    if not sep or prefix != kind:
        raise BundleError("not an %s public key (expected '%s:<base64>', got %r...)" % (kind, kind, text[:24]))
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BundleError("%s public key: not 32 bytes of base64" % kind)
    return raw


def generate_key(kind):
    """(private key as PKCS#8 PEM bytes, public key line) of a new key: ``SIGNING_PUBLIC``
    (the controller's Ed25519 signing key) or ``HOST_PUBLIC`` (a host's X25519 key)."""
    c = _crypto()
    mod = c["ed25519"].Ed25519PrivateKey if kind == SIGNING_PUBLIC else c["x25519"].X25519PrivateKey
    key = mod.generate()
    s = c["serialization"]
    pem = key.private_bytes(encoding=s.Encoding.PEM, format=s.PrivateFormat.PKCS8,
                            encryption_algorithm=s.NoEncryption())
    return pem, public_text(kind, _raw_public(c, key.public_key()))


def load_private(pem, kind):
    """A private key from PKCS#8 PEM bytes, checked to be of ``kind``."""
    c = _crypto()
    try:
        key = c["serialization"].load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError("cannot read the private key: %s" % exc)
    want = c["ed25519"].Ed25519PrivateKey if kind == SIGNING_PUBLIC else c["x25519"].X25519PrivateKey
    if not isinstance(key, want):
        raise BundleError("the private key is not an %s key" % ("Ed25519" if kind == SIGNING_PUBLIC else "X25519"))
    return key


def private_public_text(key, kind):
    """The public key line of a private key."""
    return public_text(kind, _raw_public(_crypto(), key.public_key()))


def bundle_name(data):
    """The store name of a bundle: the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest() + ".bundle"


def _payload(files, meta):
    """The plaintext: length, manifest JSON, the files' bytes. files: [(path, mode, bytes)]."""
    entries = [dict(path=p, mode=m, size=len(b), sha256=hashlib.sha256(b).hexdigest()) for p, m, b in files]
    manifest = json.dumps(dict(files=entries, meta=meta), sort_keys=True, separators=(",", ":")).encode()
    return b"".join([struct.pack(">I", len(manifest)), manifest] + [b for dummy, dummy2, b in files])


def _canonical(header):
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def pack(host, generation, files, meta, signing_pem, recipient, collection):
    """The bundle bytes of ``host``: ``files`` [(absolute path, mode "0644", bytes)], ``meta``
    (JSON data for its roles), encrypted to ``recipient`` (its public key line) and signed with
    the controller's key (PKCS#8 PEM). Deterministic for the same inputs."""
    c = _crypto()
    check_host(host)
    signer = load_private(signing_pem, SIGNING_PUBLIC)
    recipient_raw = parse_public(recipient, HOST_PUBLIC)
    plain = _payload(files, meta)
    digest = hashlib.sha256(plain).hexdigest()
    seed = _hkdf(c, _raw_private(c, signer), recipient_raw,
                 EPHEMERAL_INFO + b"\0" + host.encode() + b"\0" + digest.encode() + b"\0" + str(generation).encode(), 32)
    eph = c["x25519"].X25519PrivateKey.from_private_bytes(seed)
    eph_raw = _raw_public(c, eph.public_key())
    header = _canonical(dict(
        format=FORMAT, host=host, generation=generation, collection=collection,
        recipient=fingerprint(recipient_raw), signer=fingerprint(_raw_public(c, signer.public_key())),
        ephemeral=base64.b64encode(eph_raw).decode(), payload_sha256=digest))
    okm = _hkdf(c, eph.exchange(c["x25519"].X25519PublicKey.from_public_bytes(recipient_raw)),
                eph_raw + recipient_raw, HKDF_INFO, 44)
    ciphertext = c["AESGCM"](okm[:32]).encrypt(okm[32:], zlib.compress(plain, 6), header)
    signed = MAGIC + struct.pack(">I", len(header)) + header + ciphertext
    return signed + signer.sign(signed)


def check_host(host):
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise BundleError("%r is not a host name a bundle store can hold" % (host,))


class Bundle:
    """An opened bundle: ``header`` (dict), ``meta`` (dict) and ``files`` [(path, mode, bytes)],
    every check passed."""

    __slots__ = ("header", "meta", "files")

    def __init__(self, header, meta, files):
        self.header = header
        self.meta = meta
        self.files = files

    @property
    def generation(self):
        return self.header["generation"]


def verify(data, signer):
    """The header of ``data`` once its signature verifies against ``signer`` (the pinned
    controller public key line); before that nothing of the bundle is read."""
    c = _crypto()
    signer_raw = parse_public(signer, SIGNING_PUBLIC)
    if len(data) < len(MAGIC) + 4 + SIG_LEN or not data.startswith(MAGIC):
        raise BundleError("not an ocs-l3 bundle (bad magic or truncated)")
    try:
        c["ed25519"].Ed25519PublicKey.from_public_bytes(signer_raw).verify(data[-SIG_LEN:], data[:-SIG_LEN])
    except c["InvalidSignature"]:
        raise BundleError("signature does not verify against the pinned controller key %s: the bundle was "
                          "changed or signed by another key; refused" % fingerprint(signer_raw))
    (size,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start:start + size])
    except ValueError:
        header = None
    if not isinstance(header, dict) or sorted(header) != sorted(HEADER_KEYS) or header["format"] != FORMAT \
            or not isinstance(header["generation"], int) or isinstance(header["generation"], bool):
        raise BundleError("signed bundle with an unknown header format; refused (a newer ocs-l3?)")
    return header, data[start:start + size], data[start + size:-SIG_LEN]


def open_bundle(data, signer, host_pem, host, applied=None):
    """Verify, check and decrypt ``data`` for ``host`` (its X25519 private key as PEM bytes):
    the signature first, then host, recipient, generation (refused when older than
    ``applied``), then the payload's and each file's checksum. Returns a :class:`Bundle`;
    raises BundleError naming the first problem. Writes nothing."""
    c = _crypto()
    header, header_bytes, ciphertext = verify(data, signer)
    if header["host"] != host:
        raise BundleError("bundle is for host %s, not %s; refused" % (header["host"], host))
    key = load_private(host_pem, HOST_PUBLIC)
    own = _raw_public(c, key.public_key())
    if header["recipient"] != fingerprint(own):
        raise BundleError("bundle for %s is encrypted to key %s, not this host's key %s (re-publish with its current "
                          "public key); refused" % (host, header["recipient"], fingerprint(own)))
    generation = header["generation"]
    if applied is not None and generation < applied:
        raise BundleError("bundle generation %s is older than the generation %s that %s has applied: refusing to "
                          "roll it back" % (generation, applied, host))
    try:
        eph_raw = base64.b64decode(header["ephemeral"], validate=True)
        okm = _hkdf(c, key.exchange(c["x25519"].X25519PublicKey.from_public_bytes(eph_raw)), eph_raw + own,
                    HKDF_INFO, 44)
        plain = zlib.decompress(c["AESGCM"](okm[:32]).decrypt(okm[32:], ciphertext, header_bytes))
    except (c["InvalidTag"], zlib.error, ValueError, TypeError):
        raise BundleError("bundle for %s does not decrypt with this host's key; refused" % host)
    if hashlib.sha256(plain).hexdigest() != header["payload_sha256"]:
        raise BundleError("bundle for %s: payload checksum mismatch; refused" % host)
    try:
        manifest, files = _unpayload(plain, host)
        meta = manifest["meta"]
    except (ValueError, KeyError, TypeError, struct.error):
        raise BundleError("bundle for %s: malformed payload; refused" % host)
    return Bundle(header, meta, files)


def _unpayload(plain, host):
    """(manifest, [(path, mode, bytes)]) of a payload, every file's path, mode and sha256 checked."""
    (size,) = struct.unpack(">I", plain[:4])
    manifest = json.loads(plain[4:4 + size])
    pos = 4 + size
    files = []
    for entry in manifest["files"]:
        path, mode = entry["path"], entry["mode"]
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/") or "//" in path \
                or "\0" in path or path.endswith("/"):
            raise BundleError("bundle for %s names a bad path %r; refused" % (host, path))
        if not isinstance(mode, str) or not MODE_RE.match(mode):
            raise BundleError("bundle for %s: %s has a bad mode %r; refused" % (host, path, mode))
        body = plain[pos:pos + entry["size"]]
        pos += entry["size"]
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise BundleError("bundle for %s: checksum mismatch of %s; refused" % (host, path))
        files.append((path, mode, body))
    if pos != len(plain):
        raise BundleError("bundle for %s: payload longer than its manifest; refused" % host)
    return manifest, files


def unpack(bundle, build_dir):
    """Write ``bundle``'s files as a render would: ``<build_dir>/<host>/<path>`` (the host's
    directory swapped in by rename, the build directory mode 0700: the files carry secrets).
    Returns the host directory."""
    host = bundle.header["host"]
    check_host(host)
    os.makedirs(build_dir, mode=0o700, exist_ok=True)
    os.chmod(build_dir, 0o700)
    staging = os.path.join(build_dir, ".staging-" + host)
    live = os.path.join(build_dir, host)
    shutil.rmtree(staging, ignore_errors=True)
    for path, mode, body in bundle.files:
        dest = os.path.join(staging, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        with open(dest, "wb") as fh:
            fh.write(body)
        os.chmod(dest, int(mode, 8) & 0o700)
    os.makedirs(staging, mode=0o700, exist_ok=True)
    old = live + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.isdir(live):
        os.rename(live, old)
    os.rename(staging, live)
    shutil.rmtree(old, ignore_errors=True)
    return live
