"""The generic recorder (offline/recorder.py) on a tiny program of its own, not this project's.

It fails when a Pulumi SDK upgrade changes what the recorder relies on: MockMonitor's RegisterResource
request (type, name, parent, custom, options), its deserialized inputs (secrets wrapped), stack outputs.
"""

from __future__ import annotations

import pulumi
import pytest

from offline import recorder


class Thing(pulumi.CustomResource):
    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tiny:index:Thing", name, props, opts)


class Box(pulumi.ComponentResource):
    def __init__(self, name: str, size: int, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tiny:box:Box", name, None, opts)
        self.thing = Thing(
            f"{name}-thing",
            {"size": size, "label": "hello", "token": pulumi.Output.secret("s3cr3t-value")},
            pulumi.ResourceOptions(parent=self, protect=True, ignore_changes=["label"]),
        )
        self.register_outputs({"size": size})


def program():
    box = Box("box", 3)
    pulumi.export("label", box.thing.label if hasattr(box.thing, "label") else "hello")
    pulumi.export("size", pulumi.Output.from_input(3))


def test_a_component_its_child_and_an_output_are_recorded():
    ev = recorder.record(program, project="tiny", stack="smoke", secret_values={"s3cr3t-value"})
    box, thing = ev.named("box"), ev.named("box-thing")
    assert (box.type, box.custom) == ("tiny:box:Box", False)
    assert (thing.type, thing.custom) == ("tiny:index:Thing", True)
    assert thing.parent == box.urn and ev.children(box) == [thing]
    assert box.urn.startswith("urn:pulumi:smoke::tiny::") and box.urn.endswith("tiny:box:Box::box")
    assert thing.urn.endswith("tiny:box:Box$tiny:index:Thing::box-thing")
    assert thing.inputs == {"size": 3, "label": "hello", "token": "s3cr3t-value"}  # 3, not 3.0
    assert thing.secret_inputs == frozenset({"token"})
    assert thing.protect and thing.ignore_changes == ("label",)
    assert ev.outputs == {"label": "hello", "size": 3}
    assert ev.redact("token=s3cr3t-value") == f"token={recorder.REDACTED}"


def test_a_failing_program_says_why_and_how_far_it_got():
    def failing():
        Box("box", 1)
        raise pulumi.RunError("no such county")

    with pytest.raises(recorder.ProgramFailed) as failure:
        recorder.record(failing, project="tiny", stack="smoke")
    assert "no such county" in failure.value.message and failure.value.registered == 2


def test_the_outputs_the_engine_holds_as_secrets_are_named():
    """As `pulumi stack output` shows `[secret]`: an Output marked secret, or a mapping holding one; an awaitable
    an export holds is left to the engine to await."""

    async def later() -> bool:
        return True

    def exports():
        pulumi.export("token", pulumi.Output.secret("t0ken"))
        pulumi.export("nested", {"plain": "x", "inner": pulumi.Output.secret("y")})
        pulumi.export("plain", pulumi.Output.from_input("z"))
        pulumi.export("text", "w")
        pulumi.export("awaited", later())

    ev = recorder.record(exports, project="tiny", stack="secrets")
    assert ev.secret_outputs == {"token", "nested"}
    assert ev.outputs["nested"] == {"plain": "x", "inner": "y"} and ev.outputs["awaited"] is True
