"""The configuration's path through ``pyro-vae train``, measured: followed as a parameter from
the command line to the first SVI step, it enters at most 8 modules with at most 2 climbs back
up the layers (issue 26).

The measurement (:func:`follow`) profiles ``main(["train", ...])`` in-process and records each
call of a function of the package one of whose parameters carries the configuration: a
:class:`~pyro_vae.app.config.RunConfig` (resolved or not) or one of its sections, or an object
holding one as an attribute (the job's ``Plan``, the ``Trainer`` as ``self``). It stops when
the trainer takes its first SVI step (``Trainer.step``). The configuration's own methods
(``cfg.validate()``, ``cfg.copy()``, a section's ``problems()``) and what they call are the
configuration asking about itself, not the configuration travelling: they are listed, not
counted. The path is the module where the command built the configuration followed by the
module of each recorded call, in order; a *climb* is a step of that path from a module of a
lower layer into one of a higher layer (:data:`LAYERS`, as in ``tests/unit/test_layers.py``):
the configuration handed back up, by a return or a callback, and passed on from there.
"""

from __future__ import annotations

import dataclasses
import sys
from types import CodeType, FrameType
from typing import Any

from helpers import tiny

from pyro_vae import config as sections
from pyro_vae.app.config import RunConfig
from pyro_vae.cli import main
from pyro_vae.infer.training import Trainer

LAYERS = ("base", "config", "store", "data", "model", "infer", "app", "jobs", "cli")
"""The package's layers, lowest first (``tests/unit/test_layers.py``)."""
CONFIG_TYPES = (
    RunConfig,
    sections.DataConfig,
    sections.ModelConfig,
    sections.TrainConfig,
    sections.DistributedConfig,
)
ORIGIN = "pyro_vae.cli.commands"
"""Where ``pyro-vae train`` holds the configuration it built from the options."""
MAX_MODULES, MAX_CLIMBS = 8, 2


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "base"


def carries(value: Any) -> bool:
    """Whether ``value`` is the configuration, a section of it, or holds one as an attribute."""
    if isinstance(value, CONFIG_TYPES):
        return True
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict) or isinstance(value, type):
        return False
    return any(isinstance(v, CONFIG_TYPES) for v in list(attributes.values()))


def parameters(frame: FrameType) -> list[Any]:
    """The values of a call's parameters (``*args`` and ``**kwargs`` opened), at call time."""
    code: CodeType = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)
    found = []
    for name in code.co_varnames[:count]:
        value = frame.f_locals.get(name)
        if isinstance(value, tuple):
            found.extend(value)
        elif isinstance(value, dict):
            found.extend(value.values())
        else:
            found.append(value)
    return found


def own_method(frame: FrameType) -> bool:
    """A method of the configuration's classes, called on the configuration itself."""
    code = frame.f_code
    if not code.co_argcount or code.co_varnames[0] not in ("self", "cls"):
        return False
    first = frame.f_locals.get(code.co_varnames[0])
    cls = first if isinstance(first, type) else type(first)
    return issubclass(cls, CONFIG_TYPES)


@dataclasses.dataclass
class Path:
    calls: list[tuple[str, str]]  # (module, function) of each counted call, in order
    own: list[str]  # the configuration's own methods called on the way (not counted)

    @property
    def modules(self) -> list[str]:
        return list(dict.fromkeys([ORIGIN, *(m for m, _ in self.calls)]))

    @property
    def climbs(self) -> list[tuple[str, str, str]]:
        walk = [ORIGIN, *(m for m, _ in self.calls)]
        steps = zip(walk[:-1], walk[1:], (f for _, f in self.calls), strict=True)
        return [(a, b, f) for a, b, f in steps if LAYERS.index(layer(a)) < LAYERS.index(layer(b))]

    def __str__(self) -> str:
        lines = [f"  {m}.{f}" for m, f in self.calls]
        return (
            f"{len(self.modules)} modules, {len(self.climbs)} climbs\n"
            + "\n".join(lines)
            + "\nclimbs:\n"
            + "\n".join(f"  {a} -> {b} ({f})" for a, b, f in self.climbs)
            + f"\nmodules: {self.modules}\nown methods (not counted): {sorted(set(self.own))}"
        )


class _FirstStep(BaseException):
    """Raised at the first SVI step: the measurement ends there."""


def follow(argv: list[str], monkeypatch) -> Path:
    """Run ``main(argv)`` up to the trainer's first step; the configuration's path."""
    path = Path([], [])
    inside: list[FrameType] = []  # the configuration's own methods being run

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and inside and frame is inside[-1]:
            inside.pop()
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("pyro_vae") or inside:
            return
        if own_method(frame):
            inside.append(frame)
            path.own.append(f"{module}.{frame.f_code.co_qualname}")
        elif any(carries(v) for v in parameters(frame)):
            path.calls.append((module, frame.f_code.co_qualname))

    def first_step(self, *args, **kwargs):
        sys.setprofile(None)
        raise _FirstStep

    monkeypatch.setattr(Trainer, "step", first_step)
    sys.setprofile(profile)
    try:
        main(argv)
    except _FirstStep:
        pass
    else:
        raise AssertionError("the command returned without an SVI step")
    finally:
        sys.setprofile(None)
    return path


def test_the_configuration_of_train_enters_few_modules_and_climbs_back_up_little(
    tmp_path, monkeypatch
):
    path = follow(["train", *tiny(), "--runs-dir", str(tmp_path), "--name", "t"], monkeypatch)
    print(path)
    assert any(m == "pyro_vae.infer.training" for m, _ in path.calls), path
    assert len(path.modules) <= MAX_MODULES, path
    assert len(path.climbs) <= MAX_CLIMBS, path


def test_the_measurement_counts_a_configuration_handed_back_up(tmp_path, monkeypatch):
    """A command that hands the configuration to a helper of the app layer, which passes it
    back up to the job, enters one module more and climbs once more: the measurement sees
    both."""
    from pyro_vae.jobs import prepare

    argv = ["train", *tiny(), "--runs-dir", str(tmp_path)]
    before = follow([*argv, "--name", "a"], monkeypatch)
    helper: dict[str, Any] = {"__name__": "pyro_vae.app.detour", "prepare": prepare.prepare}
    exec("def detour(cfg, *args, **kwargs):\n    return prepare(cfg, *args, **kwargs)\n", helper)
    monkeypatch.setattr(prepare, "prepare", helper["detour"])  # a function of app/ in between
    after = follow([*argv, "--name", "b"], monkeypatch)
    assert after.modules == [*before.modules[:1], "pyro_vae.app.detour", *before.modules[1:]]
    assert after.climbs == [("pyro_vae.app.detour", "pyro_vae.jobs.prepare", "prepare")] + (
        before.climbs
    )


def test_a_climb_is_a_step_up_the_layers():
    path = Path(
        [
            ("pyro_vae.jobs.prepare", "prepare"),
            ("pyro_vae.app.vae_build", "settle"),
            ("pyro_vae.config.capabilities", "problems"),
            ("pyro_vae.jobs.prepare", "load_data"),
            ("pyro_vae.infer.training", "Trainer.__init__"),
        ],
        [],
    )
    assert [(a, b) for a, b, _ in path.climbs] == [
        ("pyro_vae.config.capabilities", "pyro_vae.jobs.prepare")
    ]
    assert len(path.modules) == 5  # the origin (cli.commands) and four
