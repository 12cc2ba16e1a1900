"""Registries: names, wildcards, did-you-mean, duplicates and overrides, namespaces, resolve."""

from __future__ import annotations

import inspect

import pytest
import torch
from pytorch_metric_learning import distances, losses, miners, reducers

import mvm_core
from mvm_core import registry as reg
from mvm_core.metric import MetricObjective, MvMTripletLoss, RealFakeTripletMiner
from mvm_core.registry import (
    DuplicateNameError,
    Registry,
    UnknownKindError,
    UnknownNameError,
    kind_of,
)

pytest_plugins = ["mvm_core.testing"]

torch.set_num_threads(1)


class Alpha:
    """Alpha thing for tests.

    More text that is not part of the description.
    """

    def __init__(self, scale: float = 1.0):
        self.scale = scale


class Beta:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def losses_registry() -> Registry:
    r = Registry("metric_losses")
    r.add("pml:TripletMarginLoss", Alpha, plugin="a")
    r.add("pml:MultiSimilarityLoss", Beta, plugin="a", description="multi similarity")
    r.add("mvm:MvMTripletLoss", Alpha, plugin="b")
    return r


# --- names ---------------------------------------------------------------------------------------


def test_add_records_factory_plugin_and_one_line_description(losses_registry):
    entry = losses_registry.get("pml:TripletMarginLoss")
    assert entry.factory is Alpha
    assert entry.plugin == "a"
    assert entry.kind == "metric_losses"
    assert entry.description == "Alpha thing for tests."  # first docstring line only
    assert losses_registry.get("pml:MultiSimilarityLoss").description == "multi similarity"
    # no docstring and no description: the qualified name
    r = Registry("miners")
    r.add("x:Beta", Beta, plugin="p")
    assert r.get("x:Beta").description.endswith("test_registry.Beta")


def test_create_passes_kwargs(losses_registry):
    obj = losses_registry.create("pml:TripletMarginLoss", scale=2.5)
    assert isinstance(obj, Alpha) and obj.scale == 2.5


def test_create_error_names_entry_and_plugin(losses_registry):
    with pytest.raises(TypeError) as info:
        losses_registry.create("pml:TripletMarginLoss", sclae=2)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "'pml:TripletMarginLoss'" in notes and "plugin 'a'" in notes and "sclae" in notes


@pytest.mark.parametrize(
    "bad", ["TripletLoss", "Pml:Thing", "pml:", "pml:two words", "pml:Trip*", ":Thing", "a:b:c"]
)
def test_invalid_names_are_rejected_with_the_expected_form(bad):
    r = Registry("metric_losses")
    with pytest.raises(ValueError, match=r"'<prefix>:<Name>'.*got"):
        r.add(bad, Alpha, plugin="p")


def test_factory_must_be_callable():
    with pytest.raises(TypeError, match="must be callable"):
        Registry("miners").add("p:Thing", 3, plugin="p")


# --- wildcards -----------------------------------------------------------------------------------


def test_list_wildcards_are_case_insensitive_and_sorted(losses_registry):
    assert losses_registry.list() == [
        "mvm:MvMTripletLoss", "pml:MultiSimilarityLoss", "pml:TripletMarginLoss",
    ]
    assert losses_registry.list("pml:*") == ["pml:MultiSimilarityLoss", "pml:TripletMarginLoss"]
    assert losses_registry.list("*triplet*") == ["mvm:MvMTripletLoss", "pml:TripletMarginLoss"]
    assert losses_registry.list("?vm:*") == ["mvm:MvMTripletLoss"]
    assert losses_registry.list("pml:[mn]*") == ["pml:MultiSimilarityLoss"]
    assert losses_registry.list("nothing*") == []


def test_list_rejects_a_non_string_pattern(losses_registry):
    with pytest.raises(TypeError, match="pattern must be a non-empty string"):
        losses_registry.list(None)


# --- did you mean --------------------------------------------------------------------------------


def test_unknown_name_suggests_closest(losses_registry):
    with pytest.raises(UnknownNameError) as info:
        losses_registry.get("pml:TripletMarginLos")
    message = str(info.value)
    assert "unknown metric loss 'pml:TripletMarginLos'" in message
    assert "Did you mean 'pml:TripletMarginLoss'" in message
    assert "mvm list metric_losses" in message


def test_missing_prefix_suggests_the_prefixed_name(losses_registry):
    with pytest.raises(UnknownNameError, match="Did you mean 'pml:MultiSimilarityLoss'") as info:
        losses_registry.create("MultiSimilarityLoss")
    assert "carry their plugin's prefix" in str(info.value)


def test_unknown_prefix_points_at_plugins(losses_registry):
    with pytest.raises(UnknownNameError, match=r"No loaded plugin provides the prefix 'timm:'"):
        losses_registry.get("timm:resnet18")


def test_unknown_name_is_a_lookup_error(losses_registry):
    assert "pml:Nope" not in losses_registry
    assert "pml:TripletMarginLoss" in losses_registry
    with pytest.raises(LookupError):
        losses_registry.get("pml:Nope")


# --- duplicates and overrides --------------------------------------------------------------------


def test_duplicate_raises_naming_both_plugins(losses_registry):
    with pytest.raises(DuplicateNameError, match="already registered by plugin 'a'; plugin 'c'"):
        losses_registry.add("pml:TripletMarginLoss", Beta, plugin="c")
    assert losses_registry.get("pml:TripletMarginLoss").factory is Alpha  # unchanged


def test_override_replaces_and_is_visible_then_removal_restores(losses_registry):
    entry = losses_registry.add("pml:TripletMarginLoss", Beta, plugin="c", override=True)
    assert entry.overrides == ("a",)
    assert isinstance(losses_registry.create("pml:TripletMarginLoss"), Beta)
    (listed,) = losses_registry.entries("pml:Triplet*")
    assert listed.plugin == "c" and listed.overrides == ("a",)
    assert losses_registry.registered_by("a") == ["pml:MultiSimilarityLoss", "pml:TripletMarginLoss"]
    # a third override stacks; removing the middle plugin keeps the chain consistent
    losses_registry.add("pml:TripletMarginLoss", Alpha, plugin="d", override=True)
    assert losses_registry.get("pml:TripletMarginLoss").overrides == ("a", "c")
    losses_registry.remove_plugin("c")
    assert losses_registry.get("pml:TripletMarginLoss").overrides == ("a",)
    losses_registry.remove_plugin("d")
    restored = losses_registry.get("pml:TripletMarginLoss")
    assert restored.plugin == "a" and restored.overrides == () and restored.factory is Alpha


# --- namespaces ----------------------------------------------------------------------------------


@pytest.fixture
def zoo() -> Registry:
    r = Registry("backbones")
    r.add("mvm:MLPMetricNet", Alpha, plugin="core")
    calls = []

    def build(name, **kwargs):
        calls.append((name, kwargs))
        return (name, kwargs)

    r.add_namespace(
        "zoo", build, plugin="zoo-plugin", list_names=lambda: ["resnet18", "resnet50", "vit_tiny"],
        contains=lambda name: name.split(".")[0] in {"resnet18", "resnet50", "vit_tiny"},
        description="any zoo model",
    )
    r.calls = calls
    return r


def test_namespace_is_one_row_in_plain_listings(zoo):
    assert zoo.list() == ["mvm:MLPMetricNet", "zoo:*"]
    (row,) = [e for e in zoo.entries() if e.namespace]
    assert row.plugin == "zoo-plugin" and row.description == "any zoo model"
    assert zoo.list("z*") == ["zoo:*"]  # wildcard prefix: not expanded


def test_namespace_pattern_naming_the_prefix_lists_the_catalogue(zoo):
    assert zoo.list("zoo:*") == ["zoo:resnet18", "zoo:resnet50", "zoo:vit_tiny"]
    assert zoo.list("zoo:RESNET*") == ["zoo:resnet18", "zoo:resnet50"]
    assert zoo.list("zoo:resnet1?") == ["zoo:resnet18"]


def test_namespace_create_passes_the_short_name(zoo):
    assert zoo.create("zoo:resnet18", embedding_dim=8) == ("resnet18", {"embedding_dim": 8})
    assert zoo.create("zoo:resnet50.tagged") == ("resnet50.tagged", {})  # contains() accepts tags
    assert zoo.get("zoo:vit_tiny").plugin == "zoo-plugin"


def test_namespace_unknown_name_suggests_from_the_catalogue(zoo):
    with pytest.raises(UnknownNameError, match="Did you mean 'zoo:resnet18'"):
        zoo.create("zoo:resnt18")


def test_namespace_duplicates_and_override(zoo):
    with pytest.raises(DuplicateNameError, match="namespace 'zoo:' is already claimed"):
        zoo.add_namespace("zoo", tuple, plugin="other", list_names=list)
    row = zoo.add_namespace("zoo", lambda name: name.upper(), plugin="other", list_names=lambda: ["a"],
                            override=True)
    assert row.overrides == ("zoo-plugin",)
    assert zoo.create("zoo:a") == "A"
    zoo.remove_plugin("other")
    assert zoo.create("zoo:resnet18")[0] == "resnet18"


def test_namespace_prefix_is_validated():
    with pytest.raises(ValueError, match="namespace prefix"):
        Registry("backbones").add_namespace("Zoo:", tuple, plugin="p", list_names=list)


# --- kinds and resolve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, kind",
    [("metric_losses", "metric_losses"), ("metric loss", "metric_losses"),
     ("metric-loss", "metric_losses"), ("Backbone", "backbones"), ("feature-extractors",
                                                                    "feature_extractors")],
)
def test_kind_of_accepts_plural_singular_and_dashes(given, kind):
    assert kind_of(given) == kind


def test_unknown_kind_suggests():
    with pytest.raises(UnknownKindError, match="Did you mean 'miners'"):
        kind_of("mienrs")


def test_resolve_names_mappings_and_objects(mvm_plugins):
    loss = mvm_core.resolve("metric_losses", "pml:TripletMarginLoss", margin=0.3)
    assert isinstance(loss, losses.TripletMarginLoss) and loss.margin == pytest.approx(0.3)
    from_config = mvm_core.resolve("metric_loss", {"name": "pml:TripletMarginLoss", "margin": 0.1},
                                   margin=0.2)
    assert from_config.margin == pytest.approx(0.2)  # kwargs win over the mapping
    miner = RealFakeTripletMiner()
    assert mvm_core.resolve("miners", miner) is miner
    assert mvm_core.resolve("miners", None) is None


def test_resolve_rejects_kwargs_with_an_object_and_nameless_mappings(mvm_plugins):
    with pytest.raises(TypeError, match=r"keyword arguments \['margin'\].*only apply to names"):
        mvm_core.resolve("metric_losses", losses.TripletMarginLoss(), margin=0.1)
    with pytest.raises(ValueError, match="needs a 'name' key"):
        mvm_core.resolve("metric_losses", {"margin": 0.1})


# --- built-ins -----------------------------------------------------------------------------------


def _pml_concrete(module, base):
    return {
        f"pml:{name}" for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and not name.startswith(("Base", "Generic"))
    }


def test_pml_classes_are_discovered_under_pml_prefix(mvm_plugins):
    expected_losses = _pml_concrete(losses, losses.BaseMetricLossFunction) | {
        "pml:CrossBatchMemory", "pml:SelfSupervisedLoss", "pml:MultipleLosses"
    }
    assert set(mvm_core.list_metric_losses("pml:*")) == expected_losses
    assert set(mvm_core.list_miners("pml:*")) == _pml_concrete(miners, miners.BaseMiner)
    assert set(mvm_core.list_distances("pml:*")) == _pml_concrete(distances, distances.BaseDistance)
    assert set(mvm_core.list_reducers("pml:*")) == _pml_concrete(reducers, reducers.BaseReducer)
    assert len(expected_losses) >= 30
    assert isinstance(mvm_core.create_distance("pml:CosineSimilarity"), distances.CosineSimilarity)
    assert isinstance(mvm_core.create_reducer("pml:MeanReducer"), reducers.MeanReducer)


def test_mvm_builtins(mvm_plugins):
    assert isinstance(mvm_core.create_metric_loss("mvm:MvMTripletLoss", margin=2.0), MvMTripletLoss)
    miner = mvm_core.create_miner("mvm:RealFakeTripletMiner", triplets_per_anchor=3)
    assert isinstance(miner, RealFakeTripletMiner) and miner.triplets_per_anchor == 3
    distance = mvm_core.create_distance("mvm:SquaredEuclidean")
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert distance(a, b).item() == pytest.approx(25.0)
    entry = reg.get_registry("metric_losses").get("mvm:MvMTripletLoss")
    assert entry.plugin == "mvm_core.default_plugins.metric"


def test_builtin_nets_and_datasets(mvm_plugins):
    from mvm_core.nets import MLPGenerator, MLPMetricNet

    assert mvm_core.list_backbones("mvm:*") == ["mvm:DCGANMetricNet", "mvm:MLPMetricNet"]
    assert mvm_core.list_generators("mvm:*") == ["mvm:DCGANGenerator", "mvm:MLPGenerator"]
    assert isinstance(mvm_core.create_backbone("mvm:MLPMetricNet", emb_dim=3), MLPMetricNet)
    assert isinstance(mvm_core.create_generator("mvm:MLPGenerator", hidden=8), MLPGenerator)
    assert mvm_core.list_datasets() == [
        "mvm:digits", "mvm:grid", "mvm:image_folder", "mvm:mnist", "mvm:ring", "mvm:stacked-mnist",
        "mvm:tensor",
    ]
    assert len(mvm_core.create_dataset("mvm:ring", n=12)) == 12


def test_a_loss_by_name_trains_the_same_as_the_object(mvm_plugins):
    """The registry's object is the real pml class: same loss value as one built directly."""
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen) + 1.0
    direct = MetricObjective(losses.MultiSimilarityLoss(alpha=2.0), miner=None)
    named = MetricObjective(
        mvm_core.resolve("metric_losses", "pml:MultiSimilarityLoss", alpha=2.0), miner=None
    )
    value = named(real, fake)
    assert value.item() == pytest.approx(direct(real, fake).item(), rel=1e-6)
    assert value.item() > 0


def test_registries_fill_lazily_per_kind(mvm_plugins):
    assert not mvm_plugins.loaded
    mvm_core.list_miners()
    assert mvm_plugins.loaded
    assert mvm_plugins.registry("miners").populated
    assert not mvm_plugins.registry("backbones").populated


def test_builtin_faiss_miner_and_evaluation_metrics(mvm_plugins):
    from mvm_core.metric import real_fake_labels
    from mvm_core.metrics import METRICS, evaluate
    from mvm_core.mining import FaissHardNegativeMiner

    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(10, 3, generator=gen)
    labels = real_fake_labels(5, 5)
    options = {"k": 2, "positives": "hardest", "backend": "torch"}
    named = mvm_core.create_miner("mvm:FaissHardNegativeMiner", **options)
    assert isinstance(named, FaissHardNegativeMiner)
    mined, direct = named(emb, labels), FaissHardNegativeMiner(**options)(emb, labels)
    assert len(mined[0]) == 10 and all(torch.equal(x, y) for x, y in zip(mined, direct))

    assert mvm_core.list_metrics() == sorted(f"mvm:{name}" for name in METRICS)
    real, fake = torch.randn(40, 3, generator=gen), torch.randn(40, 3, generator=gen) + 0.5
    fid = mvm_core.create_metric("mvm:fid", space="toy")
    value = fid(real, fake)
    assert value == evaluate(real, fake, ("fid",), space="toy") and value["fid@toy"] > 0
    with pytest.raises(TypeError, match="computes 'fid' only"):
        mvm_core.create_metric("mvm:fid", metrics=["kid"])
