"""config/versions.py: the one place release strings are parsed and compared."""

import pytest

from config import compatibility, versions


@pytest.mark.parametrize(
    ("text", "form", "expected"),
    [
        ("4.22.0", versions.PLAIN, versions.Release(4, 22, 0)),
        ("v3.8.0", versions.V, versions.Release(3, 8, 0)),
        ("v1.36.3+k3s1", versions.K3S, versions.Release(1, 36, 3, 1)),
        ("v1.36.3+k3s12", versions.K3S, versions.Release(1, 36, 3, 12)),
    ],
)
def test_parses_each_form(text, form, expected):
    assert versions.parse(text, form) == expected
    assert versions.release(text) == expected


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("4.22.0\n", versions.PLAIN),  # a trailing newline `re.match(...$)` would accept
        ("4.22", versions.PLAIN),
        ("04.22.0", versions.PLAIN),
        ("4.22.0-rc.1", versions.PLAIN),
        ("4.22.0+build", versions.PLAIN),
        ("v4.22.0", versions.PLAIN),
        ("3.8.0", versions.V),
        ("v1.36.3", versions.K3S),
        ("v1.36.3+k3s0", versions.K3S),
        ("v1.36.3+k3s1;id", versions.K3S),
        ("v1.36.3+rke2r1", versions.K3S),
        (4.22, versions.PLAIN),
        (None, versions.V),
    ],
)
def test_refuses_other_shapes(text, form):
    with pytest.raises(ValueError):
        versions.parse(text, form)
    assert not versions.is_valid(text, form)


def test_order_counts_the_k3s_build_and_numbers_not_text():
    assert versions.release("v1.36.3+k3s2") > versions.release("v1.36.3+k3s1")
    assert versions.release("v1.36.10+k3s1") > versions.release("v1.36.9+k3s3")
    assert versions.at_least("4.20.0", "4.20.0") and versions.at_least("4.100.0", "4.20.0")
    assert not versions.at_least("4.19.9", "4.20.0")


def test_minor_lines_feed_the_compatibility_table():
    assert versions.minor_line("v1.36.3+k3s1") == "1.36"
    assert compatibility.kubernetes_minor("v1.36.3+k3s1") == "1.36"
    assert compatibility.minor_of("v3.8.0") == "v3.8"
    assert compatibility.minor_of("1.36.0") == "1.36"
