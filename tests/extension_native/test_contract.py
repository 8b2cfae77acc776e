"""The Go constants are generated from envvars.py, the one definition of the contract: the
committed file must be what the generator writes today."""

from __future__ import annotations

from .support import NATIVE, load_script


def test_generated_go_constants_are_current() -> None:
    gen = load_script("gen_envvars")
    expected = gen.render(gen.load_envvars())
    committed = (NATIVE / "internal" / "envvars" / "envvars_gen.go").read_text(encoding="utf-8")
    assert committed == expected, (
        "extension/native/internal/envvars/envvars_gen.go is stale: "
        "run `.venv/bin/python extension/native/gen_envvars.py` and commit the result"
    )


def test_every_public_name_of_envvars_is_generated() -> None:
    gen = load_script("gen_envvars")
    module = gen.load_envvars()
    text = gen.render(module)
    public = [n for n in vars(module) if n.isupper() and not n.startswith("_")]
    assert public, "envvars.py has no public names?"
    for name in public:
        assert f"\t{name} " in text or f"\nvar {name} " in text, f"{name} missing from the generated Go"
    assert "DO NOT EDIT" in text.splitlines()[0]


def test_every_row_of_the_range_table_is_generated() -> None:
    gen = load_script("gen_envvars")
    module = gen.load_envvars()
    text = gen.render(module)
    assert module.SETTINGS, "envvars.py has no range table?"
    for name, s in module.SETTINGS.items():
        row = (
            f"{name}: {{Name: {name}, Default: {s.default}, Minimum: {s.minimum}, "
            f"Maximum: {s.maximum}, Unit: \"{s.unit}\"}},"
        )
        assert f"\t{name}:" in text and row in " ".join(text.split()), f"{name}'s row missing from the Go map"
