"""CRC-32 of a concatenation from the CRC-32s of its parts (zlib's ``crc32_combine``, which
Python's zlib does not expose), so that a gzip stream assembled from parts compressed at
different times needs no second pass over the data for its trailer.

A port of zlib 1.2.12's ``multmodp`` and ``x2nmodp``: CRCs as polynomials over GF(2), in
zlib's reflected bit order.
"""

from __future__ import annotations

_POLY = 0xEDB88320  # CRC-32, reflected
_TOP = 1 << 31  # the polynomial 1 (x^0) in reflected order


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial (``a`` not 0)."""
    m, p = _TOP, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


_X2N = [1 << 30]  # x^(2^k) modulo the polynomial, starting with x^1
for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))


def shift(length: int) -> int:
    """The operator that moves a CRC past ``length`` more bytes: x^(8 * length)."""
    p, k = _TOP, 3
    while length:
        if length & 1:
            p = _multmodp(_X2N[k & 31], p)
        length >>= 1
        k += 1
    return p


def combine(crc1: int, crc2: int, op: int) -> int:
    """The CRC-32 of A + B from crc1 = crc32(A), crc2 = crc32(B) and op = shift(len(B))."""
    return _multmodp(op, crc1) ^ crc2
