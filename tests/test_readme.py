"""The README stays true: its config reference is the models' own."""

from config import reference


def test_config_reference_in_readme_is_current():
    text = reference.README.read_text()
    assert reference.START in text and reference.END in text
    assert reference.replace_in(text) == text, "run: venv/bin/python -m config.reference --write"


def test_readme_names_the_two_commands():
    text = reference.README.read_text()
    assert "make plan" in text and "make test" in text
