"""The mobile ResNet passes cyclestudio's checks once installed (`pip install -e ".[test]"`)."""

from cyclestudio.core.networks import build_generator, count_parameters
from cyclestudio.plugins.checks import check_architecture
from cyclestudio.plugins.discovery import load_registry


def test_the_entry_point_finds_the_generator():
    plugin = load_registry().plugin("mobile_resnet")
    assert plugin is not None, "not installed: run pip install -e . first"
    assert plugin.status == "ok", plugin.errors
    assert plugin.origin == "package" and plugin.version == "0.1.0"
    assert plugin.generators == ["mobile_resnet"]


def test_mobile_resnet_passes_the_checks():
    # The same checks as `cyclestudio plugins check mobile_resnet`, at small widths.
    reports = check_architecture("mobile_resnet", options={"width": 8, "blocks": 2})
    assert all(r.ok for r in reports), "\n\n".join(r.text() for r in reports)


def test_it_is_much_smaller_than_the_papers_generator():
    mobile = count_parameters(build_generator("mobile_resnet", {}, 3, 3))
    paper = count_parameters(build_generator("resnet_9blocks", {}, 3, 3))
    assert mobile < 0.2 * paper
