"""The plugin host: safe entry-point loading, env switches, inventory, and the CLI commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import mvm_core
from mvm_core import cli, hookimpl
from mvm_core.plugins import (
    DISABLE_ENV,
    LOAD_ENV,
    STRICT_ENV,
    PluginError,
    PluginHost,
    PluginWarning,
    list_plugins,
    use_host,
)
from mvm_core.registry import get_registry

pytest_plugins = ["mvm_core.testing", "pytester"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

torch.set_num_threads(1)

BROKEN = "import mvm_core\nraise ImportError('missing dependency: libwidget is not installed')\n"

GOOD = textwrap.dedent('''
    """A good third-party plugin."""
    from mvm_core import hookimpl


    class Smoothness:
        """Penalize nothing; a stand-in generator term."""

        needs_pairs = False

        def __init__(self, weight=1.0):
            self.weight = weight

        def __call__(self, ctx):
            return ctx.fake.sum() * 0


    @hookimpl
    def mvm_register_regularizers(register):
        register("good:Smoothness", Smoothness)
''')


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (STRICT_ENV, LOAD_ENV, DISABLE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def broken_and_good(mvm_fake_distribution):
    """Two installed distributions: one whose import fails, one that works."""
    mvm_fake_distribution("fake-broken", version="1.2.3", entry_points={"broken": "fake_broken"},
                          modules={"fake_broken": BROKEN})
    return mvm_fake_distribution("fake-good", version="0.4.0", entry_points={"good": "fake_good"},
                                 modules={"fake_good": GOOD})


def _by_name(infos):
    return {info.name: info for info in infos}


def _fresh_host():
    return use_host(PluginHost(entry_points=True))


# --- a broken plugin does not break the host -----------------------------------------------------


def test_broken_plugin_is_reported_and_skipped(broken_and_good):
    with _fresh_host(), pytest.warns(PluginWarning) as caught:
        names = mvm_core.list_metric_losses("pml:Triplet*")  # registry use still works
        infos = _by_name(list_plugins())
    assert names == ["pml:TripletMarginLoss"]
    message = "\n".join(str(w.message) for w in caught)
    for part in ("'broken'", "fake-broken 1.2.3", "'broken = fake_broken'", "ImportError",
                 "libwidget is not installed", DISABLE_ENV):
        assert part in message
    broken = infos["broken"]
    assert broken.status == "failed" and broken.distribution == "fake-broken"
    assert broken.version == "1.2.3" and broken.entry_point == "broken = fake_broken"
    assert broken.error == "ImportError: missing dependency: libwidget is not installed"
    assert "raise ImportError" in broken.traceback
    assert broken.hooks == () and dict(broken.registered) == {}
    good = infos["good"]
    assert good.status == "loaded" and good.version == "0.4.0"
    assert good.hooks == ("mvm_register_regularizers",)
    assert dict(good.registered) == {"regularizers": ("good:Smoothness",)}
    assert infos["mvm_core.default_plugins.pml"].builtin


def test_broken_plugin_does_not_stop_mvm_plugins(broken_and_good, capsys):
    with _fresh_host(), warnings.catch_warnings():
        warnings.simplefilter("error")  # the command must not let load warnings escape
        assert cli.main(["plugins"]) == 0
        out, err = capsys.readouterr()
        assert "broken  [FAILED]  (fake-broken 1.2.3, entry point 'broken = fake_broken')" in out
        assert "error: ImportError: missing dependency" in out
        assert "good  [loaded]" in out and "regularizers: good:Smoothness" in out
        assert "mvm_core.default_plugins" not in out  # built-ins only with --all
        assert "1 plugin(s) with problems: broken" in err
        assert cli.main(["plugins", "--check"]) == 1
        capsys.readouterr()
        assert cli.main(["plugins", "--json", "--all"]) == 0
        listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["broken"]["status"] == "failed" and listed["good"]["status"] == "loaded"
    assert listed["mvm_core.default_plugins.metric"]["registered"]["miners"] == [
        "mvm:RealFakeTripletMiner"
    ]


def test_broken_plugin_does_not_stop_mvm_plugins_in_a_subprocess(broken_and_good):
    """A fresh process: `import mvm_core` loads no plugin code, then `mvm plugins --json` runs.

    Registering (every hook of every installed plugin) imports no heavy library either: the timm
    plugin, when installed, claims its namespace without importing timm.
    """
    code = (
        "import sys, mvm_core\n"
        "heavy = [m for m in sys.modules if m.startswith(('mvm_core.default_plugins', 'timm',"
        " 'mvm_core_', 'fake_', 'faiss'))]\n"
        "assert not heavy, f'imported at import mvm_core: {heavy}'\n"
        "from mvm_core.cli import main\n"
        "code = main(['plugins', '--json'])\n"
        "assert 'timm' not in sys.modules, 'a plugin imported timm while registering'\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(broken_and_good), "OMP_NUM_THREADS": "1"}
    for name in (STRICT_ENV, LOAD_ENV, DISABLE_ENV):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    assert listed["broken"]["status"] == "failed"
    assert "libwidget" in listed["broken"]["error"]
    assert listed["good"]["registered"] == {"regularizers": ["good:Smoothness"]}


def test_strict_mode_raises_with_the_original_error(broken_and_good, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with _fresh_host(), pytest.raises(PluginError, match="'broken'.*fake-broken 1.2.3") as info:
        mvm_core.list_regularizers()
    assert isinstance(info.value.__cause__, ImportError)


def test_strict_flag_must_be_boolean(monkeypatch, mvm_installed_plugins):
    monkeypatch.setenv(STRICT_ENV, "maybe")
    with pytest.raises(PluginError, match=f"{STRICT_ENV} must be 1 or 0; got 'maybe'"):
        mvm_core.list_miners()


# --- environment switches ------------------------------------------------------------------------


def test_load_plugins_loads_only_the_listed_ones(broken_and_good, monkeypatch):
    monkeypatch.setenv(LOAD_ENV, "good")
    with _fresh_host(), warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        infos = _by_name(list_plugins())
    assert infos["good"].status == "loaded"
    assert infos["broken"].status == "disabled" and infos["broken"].note == f"not listed in {LOAD_ENV}"
    assert "fake_broken" not in sys.modules  # never imported


def test_load_plugins_accepts_distribution_names_and_empty(broken_and_good, monkeypatch):
    monkeypatch.setenv(LOAD_ENV, " Fake_Good ")
    with _fresh_host():
        assert mvm_core.list_regularizers("good:*") == ["good:Smoothness"]
    monkeypatch.setenv(LOAD_ENV, "")
    with _fresh_host():
        infos = _by_name(list_plugins())
        assert {infos["good"].status, infos["broken"].status} == {"disabled"}
        assert mvm_core.list_regularizers("good:*") == []


def test_disable_plugins_loads_all_but_these(broken_and_good, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "broken")
    with _fresh_host(), warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        infos = _by_name(list_plugins())
    assert infos["broken"].status == "disabled" and infos["broken"].note == f"listed in {DISABLE_ENV}"
    assert infos["good"].status == "loaded"


def test_switch_naming_nothing_installed_is_reported(broken_and_good, monkeypatch):
    monkeypatch.setenv(LOAD_ENV, "good,gööd-typo")
    with _fresh_host(), pytest.warns(PluginWarning, match=f"{LOAD_ENV} names 'gööd-typo'.*installed: "):
        list_plugins()
    monkeypatch.setenv(STRICT_ENV, "1")
    monkeypatch.setenv(DISABLE_ENV, "broken,nothing-here")
    monkeypatch.delenv(LOAD_ENV)
    with _fresh_host(), pytest.raises(PluginError, match=f"{DISABLE_ENV} names 'nothing-here'"):
        list_plugins()


# --- hooks that misbehave ------------------------------------------------------------------------


class RaisesInHook:
    @hookimpl
    def mvm_register_backbones(self, register):
        register("half:First", dict)
        raise RuntimeError("model zoo offline")


class TakesDuplicate:
    @hookimpl
    def mvm_register_miners(self, register):
        register("mvm:RealFakeTripletMiner", dict)


class Overrides:
    @hookimpl
    def mvm_register_miners(self, register):
        register("mvm:RealFakeTripletMiner", dict, description="a replacement", override=True)


class UnknownHook:
    @hookimpl
    def mvm_register_backbone(self, register):  # typo: the hook is mvm_register_backbones
        register("typo:Net", dict)


class OptionalUnknownHook:
    @hookimpl(optionalhook=True)
    def mvm_register_widgets(self, register):
        pass


class WrongArgument:
    @hookimpl
    def mvm_register_backbones(self, registry):
        pass


def test_failure_inside_a_hook_of_a_code_plugin_raises_and_rolls_back(mvm_plugins):
    mvm_plugins.register(RaisesInHook(), "raiser")  # hooks of unused kinds run on first use
    with pytest.raises(PluginError, match="failed in mvm_register_backbones: RuntimeError"):
        mvm_core.list_backbones()
    assert mvm_core.list_backbones("half:*") == []  # rolled back, the host goes on
    assert _by_name(mvm_plugins.plugins())["raiser"].status == "failed"
    with pytest.raises(PluginError, match="model zoo offline"):  # kind in use: raises at once
        mvm_plugins.register(RaisesInHook(), "raiser2")
    assert "raiser2" not in _by_name(mvm_plugins.plugins())
    assert mvm_core.list_backbones("half:*") == []


def test_failure_inside_a_hook_of_an_installed_plugin_is_reported(mvm_fake_distribution):
    source = "from mvm_core import hookimpl\n\n\n@hookimpl\ndef mvm_register_backbones(register):\n" \
             "    register('half:First', dict)\n    raise RuntimeError('model zoo offline')\n"
    mvm_fake_distribution("fake-half", entry_points={"half": "fake_half"},
                          modules={"fake_half": source})
    with _fresh_host(), pytest.warns(PluginWarning, match="'half'.*failed in mvm_register_backbones"):
        assert mvm_core.list_backbones("half:*") == []
        assert mvm_core.list_backbones("mvm:*") == ["mvm:DCGANMetricNet", "mvm:MLPMetricNet"]
        info = _by_name(list_plugins())["half"]
    assert info.status == "failed" and info.error == "RuntimeError: model zoo offline"


def test_duplicate_without_override_fails_that_plugin_only(mvm_plugins):
    mvm_plugins.register(TakesDuplicate(), "dup")
    with pytest.raises(PluginError, match="already registered by plugin 'mvm_core.default_plugins"):
        mvm_core.list_miners()
    entry = get_registry("miners").get("mvm:RealFakeTripletMiner")
    assert entry.plugin == "mvm_core.default_plugins.metric"


def test_override_is_listed_and_unregister_restores(mvm_register_plugin, mvm_plugins, capsys):
    mvm_register_plugin(Overrides(), "replacer")
    entry = get_registry("miners").get("mvm:RealFakeTripletMiner")
    assert entry.plugin == "replacer" and entry.overrides == ("mvm_core.default_plugins.metric",)
    assert mvm_core.create_miner("mvm:RealFakeTripletMiner") == {}
    assert cli.main(["list", "miners", "mvm:*"]) == 0
    assert "[overrides mvm_core.default_plugins.metric]" in capsys.readouterr().out
    mvm_plugins.unregister("replacer")
    assert get_registry("miners").get("mvm:RealFakeTripletMiner").plugin == (
        "mvm_core.default_plugins.metric"
    )


def test_unknown_hooks_are_reported_with_the_closest_hook(mvm_plugins, mvm_fake_distribution):
    with pytest.raises(PluginError, match="unknown hook 'mvm_register_backbone'.*did you mean "
                                          "'mvm_register_backbones'"):
        mvm_plugins.register(UnknownHook(), "typo")
    mvm_plugins.register(OptionalUnknownHook(), "optional")  # optionalhook=True: accepted
    source = "from mvm_core import hookimpl\n\n\n@hookimpl\ndef mvm_register_backbone(register):\n" \
             "    pass\n"
    mvm_fake_distribution("fake-typo", entry_points={"typo": "fake_typo"},
                          modules={"fake_typo": source})
    with _fresh_host(), pytest.warns(PluginWarning, match="unknown hook 'mvm_register_backbone'"):
        info = _by_name(list_plugins())["typo"]
    assert info.status == "loaded" and "mvm_register_backbone" in info.warnings[0]


def test_hookimpl_with_wrong_arguments_is_rejected(mvm_plugins):
    with pytest.raises(PluginError, match="(?s)'wrong' is invalid.*registry"):
        mvm_plugins.register(WrongArgument(), "wrong")
    assert "wrong" not in _by_name(mvm_plugins.plugins())


def test_two_distributions_with_one_entry_point_name(mvm_fake_distribution):
    mvm_fake_distribution("fake-one", entry_points={"same": "fake_one"},
                          modules={"fake_one": "x = 1\n"})
    mvm_fake_distribution("fake-two", entry_points={"same": "fake_two"},
                          modules={"fake_two": "x = 2\n"})
    with _fresh_host(), pytest.warns(PluginWarning, match="already registered"):
        infos = list_plugins()
    same = [i for i in infos if i.name.startswith("same")]
    assert sorted(i.status for i in same) == ["failed", "loaded"]


def test_registration_after_first_use_is_visible_at_once(mvm_register_plugin):
    assert mvm_core.list_regularizers("good:*") == []

    class Late:
        @hookimpl
        def mvm_register_regularizers(self, register):
            register("good:Late", dict)

    assert mvm_register_plugin(Late()) == "Late"  # default name: the class (or module) name
    assert mvm_core.list_regularizers("good:*") == ["good:Late"]
    assert get_registry("regularizers").get("good:Late").plugin == "Late"

    class Other:
        pass

    assert [mvm_register_plugin(Other()) for _ in range(2)] == ["Other", "Other#2"]


# --- the list command ----------------------------------------------------------------------------


def test_mvm_list(mvm_plugins, capsys):
    assert cli.main(["list", "metric-losses", "*triplet*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mvm:MvMTripletLoss", "pml:TripletMarginLoss"]
    assert cli.main(["list", "miners", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["mvm:RealFakeTripletMiner"] == {
        "name": "mvm:RealFakeTripletMiner", "plugin": "mvm_core.default_plugins.metric",
        "description": get_registry("miners").get("mvm:RealFakeTripletMiner").description,
        "overrides": [], "namespace": False,
    }
    assert set(listed) == set(mvm_core.list_miners())
    assert cli.main(["list"]) == 0
    counts = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert counts["miners"] == str(len(mvm_core.list_miners()))
    assert cli.main(["list", "mienrs"]) == 2
    assert "Did you mean 'miners'" in capsys.readouterr().err
    assert cli.main(["list", "miners", "zzz*"]) == 1
    assert "no miners match 'zzz*'" in capsys.readouterr().err


# --- the example of docs/plugins.md --------------------------------------------------------------


def _docs_example():
    """Files (blocks whose first line is ``# <path>``) and console sessions of docs/plugins.md."""
    files, sessions = {}, {}
    for body in re.findall(r"```\w*\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S):
        first, _, rest = body.partition("\n")
        if re.fullmatch(r"# [\w./-]+\.(py|toml)", first):
            files[first[2:]] = body
        elif first.startswith("$ "):
            for command in re.split(r"^\$ ", body, flags=re.M)[1:]:
                line, _, output = command.partition("\n")
                sessions[line] = output.rstrip("\n").splitlines()
    return files, sessions


def test_the_docs_example_plugin_installs_loads_and_passes_its_tests(
    mvm_fake_distribution, pytester, capsys
):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    files, sessions = _docs_example()
    assert set(files) == {"pyproject.toml", "mvm_smooth/__init__.py", "tests/test_mvm_smooth.py"}
    project = tomllib.loads(files["pyproject.toml"])["project"]
    mvm_fake_distribution(
        project["name"], version=project["version"],
        entry_points=project["entry-points"]["mvm_core"],
        modules={"mvm_smooth.__init__": files["mvm_smooth/__init__.py"]},
    )
    # the console sessions shown in the docs are what the commands print
    with _fresh_host():
        for command, expected in sessions.items():
            args = shlex.split(command)[1:]
            assert cli.main(args) == 0
            out = capsys.readouterr().out.splitlines()
            start = out.index(expected[0])
            assert out[start:start + len(expected)] == expected, command
    # the plugin's own tests, as written in the docs, pass with the fixtures
    pytester.makepyfile(test_mvm_smooth=files["tests/test_mvm_smooth.py"])
    result = pytester.runpytest_inprocess("-p", "mvm_core.testing", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


# --- the pytest plugin's tiny networks -----------------------------------------------------------


def test_tiny_networks_are_seeded_and_leave_the_global_rng_alone(
    mvm_tiny_backbone, mvm_tiny_generator, mvm_step_context
):
    state = torch.random.get_rng_state()
    a, b = mvm_tiny_backbone((3, 8, 8), emb_dim=5, seed=3), mvm_tiny_backbone((3, 8, 8), 5, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    images = torch.zeros(2, 3, 8, 8)
    assert a(images).shape == (2, 5) and torch.equal(a(images), b(images))
    generator = mvm_tiny_generator(4, (1, 6, 6), num_classes=3)
    samples = generator(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert samples.shape == (5, 1, 6, 6) and samples.abs().max() <= 1
    with pytest.raises(ValueError, match="conditional: pass cond"):
        generator(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"input_shape must be \(D,\) for vectors or \(C, H, W\)"):
        mvm_tiny_backbone((2, 3))
    ctx = mvm_step_context(batch_size=6, pairs=True, z_dim=3, emb_dim=2)
    assert ctx.fake_emb.shape == (6, 2) and ctx.fake.requires_grad
    first, second = ctx.halves(ctx.z)
    assert torch.equal(first, ctx.z[:3]) and torch.equal(second, ctx.z[3:])
    with pytest.raises(ValueError, match="even batch_size"):
        mvm_step_context(batch_size=5, pairs=True)


def test_a_plugin_calling_sys_exit_at_import_is_contained(mvm_fake_distribution, capsys):
    mvm_fake_distribution("fake-exits", version="0.1", entry_points={"exits": "fake_exits"},
                          modules={"fake_exits": "import sys\nsys.exit(3)\n"})
    with _fresh_host(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert mvm_core.list_metric_losses("pml:Triplet*") == ["pml:TripletMarginLoss"]
        assert cli.main(["plugins"]) == 0
        out, _ = capsys.readouterr()
        assert "exits  [FAILED]" in out and "SystemExit: 3" in out


class ReplacesTheDefaultLoss:
    @hookimpl
    def mvm_register_metric_losses(self, register):
        from mvm_core.metric import MvMTripletLoss

        register("mvm:MvMTripletLoss", MvMTripletLoss, description="a replacement", override=True)


def test_an_override_the_run_uses_is_announced_and_recorded(mvm_register_plugin, tmp_path, capsys):
    from mvm_core.checkpoint import load_checkpoint

    mvm_register_plugin(ReplacesTheDefaultLoss(), "loss-replacer")
    run = tmp_path / "run"
    assert cli.main(["train", "--data", "ring", "--steps", "2", "--batch-size", "16", "--width", "16",
                     "--depth", "1", "--emb-dim", "4", "--no-progress", "--device", "cpu",
                     "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert "mvm:MvMTripletLoss is plugin 'loss-replacer'" in err and "override=True" in err
    (note,) = load_checkpoint(run)["extra"]["overrides"]
    assert "replacing mvm_core.default_plugins" in note
