"""The deterministic accept/reject draw: a uniform ``u`` in [0, 1) per document.

``u`` is a pure function of (seed, language, split, shard, position in the shard): a
counter-based generator (SplitMix64 of the position, keyed by BLAKE2b of the rest). The same
documents are therefore kept however the stream is split over workers or nodes, or restarted.
"""

from __future__ import annotations

import hashlib

import numpy as np


def shard_key(seed: int, language: str, split: str, shard: int) -> int:
    """A 64-bit key for one shard: the first 8 bytes of BLAKE2b of ``seed/language/split/shard``."""
    digest = hashlib.blake2b(f"{seed}/{language}/{split}/{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014), a bijective 64-bit mixer."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform_draws(key: int, positions) -> np.ndarray:
    """``u = mix(key + mix(position)) / 2**64`` in [0, 1) for each position, with 53 bits kept.

    A counter-based generator: each draw depends on the key and the position alone.
    """
    pos = np.asarray(positions, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(np.uint64(key) + _splitmix64(pos))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


# --- documents without a (shard, position): keyed by their id or their content ------------------


def document_key(seed: int, language: str) -> int:
    """A 64-bit key for the draws of documents identified by an id or their text (no shard, no position):
    the first 8 bytes of BLAKE2b of ``seed/language/document``."""
    digest = hashlib.blake2b(f"{seed}/{language}/document".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash64(value) -> int:
    """A stable 64-bit hash of a document id or text: the first 8 bytes of BLAKE2b of its UTF-8 bytes.

    ``bytes`` are hashed as they are, anything else as ``str(value)`` (so the id ``7`` and ``"7"``
    are the same document). Unlike Python's ``hash``, it is the same in every process.
    """
    data = value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def hashes64(values) -> np.ndarray:
    """:func:`hash64` of each value, as ``uint64`` (the ``positions`` of :func:`uniform_draws`): the
    digests joined and read as little-endian 64-bit integers, the same numbers in one pass."""
    blake = hashlib.blake2b
    if all(type(v) is str for v in values):  # ids and texts: the common case, without a test per value
        digests = b"".join([blake(v.encode("utf-8", "surrogatepass"), digest_size=8).digest() for v in values])
    else:
        digests = b"".join([
            blake(v if isinstance(v, (bytes, bytearray)) else str(v).encode("utf-8", "surrogatepass"),
                  digest_size=8).digest() for v in values])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


# --- further copies of a document (weighted upsampling) -------------------------------------------


def copy_key(key: int, k: int) -> int:
    """The key of the draws of copy ``k`` of the documents of ``key`` (a shard's or a corpus's key).

    ``copy_key(key, 0) = key``, so copy 0 is decided by the document's own draw, as without
    upsampling; for ``k >= 1``: ``copy_key(key, k) = mix(key XOR mix(k))`` (SplitMix64), a key
    unrelated to ``key`` and to the other copies'. ``u_k = uniform_draws(copy_key(key, k), position)``
    is then a pure function of (the document's key, k): the same whatever workers, tasks or restarts.
    """
    if k == 0:
        return key
    with np.errstate(over="ignore"):
        return int(_splitmix64(np.uint64(key) ^ _splitmix64(np.uint64(k))))
