"""The shared helpers of ser_model.errors: one-line error text and the unknown-key check."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ser_model.errors import ParameterError, check_keys, one_line, unknown_keys


@pytest.mark.parametrize(("err", "first", "joined"), [
    (ValueError("  bad value\nmore detail\n"), "bad value", "bad value more detail"),
    (OSError(), "OSError", "OSError"),
    (RuntimeError(" \n "), "RuntimeError", "RuntimeError"),
])  # fmt: skip
def test_one_line(err: BaseException, first: str, joined: str) -> None:
    assert one_line(err) == first
    assert one_line(err, join=True) == joined


@dataclass
class _Settings:
    rate: int = 1
    size: int = 2


def test_unknown_keys_from_a_dataclass_or_names() -> None:
    assert unknown_keys({"size": 3, "zeta": 1, "alpha": 2}, _Settings) == ["alpha", "zeta"]
    assert unknown_keys({"a": 1, "b": 2}, ("a",)) == ["b"]
    assert unknown_keys({}, _Settings) == []


def test_check_keys_names_the_unknown_ones() -> None:
    check_keys({"rate": 1}, _Settings, "test settings")
    with pytest.raises(ParameterError, match=r"^unknown test settings: alpha, zeta$"):
        check_keys({"zeta": 1, "alpha": 2, "rate": 3}, _Settings, "test settings")
