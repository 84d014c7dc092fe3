"""Type and range checks of the data: and groups: parameters, naming the parameter."""

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from ugvae_pipeline.data.params import check_data_parameters, check_groups_parameters


def test_the_shipped_defaults_pass():
    conf = PROJECT_ROOT / "conf" / "base"
    check_data_parameters(yaml.safe_load((conf / "parameters_ingestion.yml").read_text())["data"])
    check_groups_parameters(yaml.safe_load((conf / "parameters_grouping.yml").read_text())["groups"])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"heldout_fraction": "0.2"}, "data.heldout_fraction must be a number in (0, 1), got '0.2'"),
        ({"heldout_fraction": 1.0}, "data.heldout_fraction must be a number in (0, 1)"),
        ({"split_seed": -1}, "data.split_seed must be an integer >= 0, got -1"),
        ({"image_folder": {"image_size": 0}}, "data.image_folder.image_size must be an integer >= 1, got 0"),
        ({"image_folder": {"channels": 4}}, "data.image_folder.channels must be 1 (grayscale) or 3 (RGB)"),
        ({"celeba": {"limit": 2.5}}, "data.celeba.limit must be an integer >= 1 or null, got 2.5"),
        ({"celeba": {"skip_bad_images": "yes"}}, "data.celeba.skip_bad_images must be true or false"),
        ({"mnist": {"download": 1}}, "data.mnist.download must be true or false, got 1"),
    ],
)
def test_bad_data_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        check_data_parameters(params)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"heldout": {"group_size": -1}}, "groups.heldout.group_size must be an integer >= 1, got -1"),
        ({"heldout": {"n_groups": "7"}}, "groups.heldout.n_groups must be an integer >= 1, got '7'"),
        ({"series": {"seed": 1.5}}, "groups.series.seed must be an integer >= 0, got 1.5"),
        ({"domain": {"p": 1.5}}, "groups.domain.p must be a probability in [0, 1], got 1.5"),
        ({"attribute": {"exclusive": "no"}}, "groups.attribute.exclusive must be true or false"),
        ({"evaluation": {"random": {"n_groups": -1}}}, "groups.evaluation.random.n_groups must be an integer >= 0"),
    ],
)
def test_bad_groups_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        check_groups_parameters(params)
    assert message in str(err.value)


def test_no_random_reference_groups_is_allowed():
    check_groups_parameters({"evaluation": {"random": {"n_groups": 0, "seed": 0}}})
