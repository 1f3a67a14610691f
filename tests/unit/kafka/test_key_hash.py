"""Our murmur2 is Kafka's: byte for byte what aiokafka's reference copy (and so Faust's and the
Java client's partitioner) computes, for every length and tail."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.key_hash import _short_key_hash, key_hash, murmur2


@given(st.binary(max_size=400))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == reference(data)


def test_key_hash_clears_the_sign_bit_for_every_tail_length() -> None:
    for key in (b"", b"a", b"ab", b"abc", b"abcd", b"\xff\xfe\xfd\xfc\xfb"):
        assert key_hash(key) == reference(key) & 0x7FFFFFFF


def test_long_keys_hash_right_and_are_not_kept() -> None:
    before = _short_key_hash.cache_info().currsize
    for size in (257, 1_000, 70_001):
        key = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert key_hash(key) == reference(key) & 0x7FFFFFFF
    assert _short_key_hash.cache_info().currsize == before
