"""One typed check for every parameter group: values, names and unknown keys, naming the parameter."""

import pytest
from kedro.config import OmegaConfigLoader

from tests.conftest import PROJECT_ROOT
from ugvae_pipeline.parameters import GROUPS, check_group, check_parameters
from ugvae_pipeline.settings import CONFIG_LOADER_ARGS


def _parameters(env):
    return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)[
        "parameters"
    ]


ENVIRONMENTS = sorted(
    path.name
    for path in (PROJECT_ROOT / "conf").iterdir()
    if path.is_dir() and path.name != "local"
)


def test_every_environment_is_checked():
    assert {"base", "celeba", "domain_alignment", "official", "paper_scale"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_shipped_parameters_of_every_environment_pass(env):
    params = _parameters(env)
    assert set(GROUPS) <= set(params)  # every group the project ships is checked
    check_parameters(params)


def test_the_paper_scale_environment_is_the_official_model_on_full_mnist():
    official, paper_scale = _parameters("official"), _parameters("paper_scale")
    assert paper_scale["model"] == official["model"]
    differ = {
        key
        for key in official["train"].keys() | paper_scale["train"].keys()
        if official["train"].get(key) != paper_scale["train"].get(key)
    }
    assert differ == {"epochs", "monitor_every", "monitor_groups"}
    assert paper_scale["data"]["source"] == "mnist"
    # 54,000 training digits in groups of 128: the official run's ~3,750 steps
    assert abs(paper_scale["train"]["epochs"] * (54_000 // 128) - 3750) < 54_000 // 128


def test_series_of_training_digits_in_order_are_a_valid_protocol():
    params = _parameters("base")
    params["groups"]["evaluation"]["split"] = "train"
    params["groups"]["series"]["draw"] = "in_order"
    check_parameters(params)
    params["groups"]["series"]["draw"] = "in order"
    with pytest.raises(ValueError, match=r"groups.series.draw"):
        check_parameters(params)


@pytest.mark.parametrize(
    "model, train, message",
    [
        (
            {"contrastive_weight": 1.0},
            {"groups_per_step": 1},
            r"model.contrastive_weight=1.0 .*train.groups_per_step=1: set train.groups_per_step "
            r"to 2 or more",
        ),
        (
            {"name": "beta_vae"},
            {"global_kl_free_bits": 0.5},
            r"train.global_kl_free_bits=0.5 .*BetaVAE has not; set it to 0",
        ),
    ],
)
def test_model_and_training_options_that_do_not_fit_are_refused_before_any_node(
    model, train, message
):
    params = _parameters("base")
    params["model"].update(model)
    params["train"].update(train)
    with pytest.raises(ValueError, match=message):
        check_parameters(params)
    params["train"]["groups_per_step"] = 2  # the contrastive halves have partners now
    params["train"]["global_kl_free_bits"] = 0.0
    check_parameters(params)


def check_evaluate_parameters(evaluate, groups, source="mnist_embedded"):
    check_parameters({"evaluate": evaluate, "groups": groups, "data": {"source": source}})


def test_the_interpolation_must_name_group_types_the_evaluation_groups_will_have():
    params = _parameters("base")
    groups, evaluate = params["groups"], params["evaluate"]
    check_evaluate_parameters(evaluate, groups)  # unset: the figure takes the first two types
    evaluate["interpolation"].update(from_type="even", to_type="odd")
    check_evaluate_parameters(evaluate, groups)  # auto: series for a digit source
    with pytest.raises(
        ValueError,
        match=r"from_type='even' is not a group type of groups.evaluation.strategy=attribute",
    ):
        check_evaluate_parameters(evaluate, groups, source="celeba")  # auto: attribute groups
    groups["evaluation"]["strategy"] = "attribute"  # Black_Hair=1, Blond_Hair=1 (and random)
    with pytest.raises(
        ValueError,
        match=r"from_type='even' is not a group type of groups.evaluation.strategy=attribute; "
        r"choose one of \['Black_Hair=1', 'Blond_Hair=1', 'random'\]",
    ):
        check_evaluate_parameters(evaluate, groups)
    evaluate["interpolation"].update(from_type="Blond_Hair=1", to_type="random")
    check_evaluate_parameters(evaluate, groups)
    groups["evaluation"]["random"]["n_groups"] = 0  # no random reference groups to interpolate to
    with pytest.raises(ValueError, match=r"to_type='random' is not a group type"):
        check_evaluate_parameters(evaluate, groups)
    groups["attribute"]["n_random_groups"] = 5  # attribute groups can bring their own random ones
    check_evaluate_parameters(evaluate, groups)
    groups["evaluation"]["strategy"] = "class"  # types depend on the data; their form does not
    evaluate["interpolation"]["from_type"] = "label=3"
    with pytest.raises(
        ValueError, match=r"to_type='random' but there are no random evaluation groups"
    ):
        check_evaluate_parameters(evaluate, groups)
    evaluate["interpolation"]["to_type"] = "label=8"
    check_evaluate_parameters(evaluate, groups)
    groups["class"]["column"] = "domain"
    with pytest.raises(
        ValueError, match=r"class groups are named 'domain=<value>' \(groups.class.column=domain\)"
    ):
        check_evaluate_parameters(evaluate, groups)
    groups["evaluation"]["strategy"] = "domain"
    groups["domain"]["domains"] = ["mnist_embedded", "uci_digits"]
    with pytest.raises(
        ValueError, match=r"choose one of \['mnist_embedded', 'uci_digits', 'mixed'\]"
    ):
        check_evaluate_parameters(evaluate, groups, source="mixed")
    groups["domain"]["domains"] = None  # in ingestion order: known once the data is
    check_evaluate_parameters(evaluate, groups, source="mixed")
    groups["evaluation"]["strategy"] = "series"
    groups["series"]["names"] = "even"
    with pytest.raises(
        ValueError, match=r"groups.series.names must be a non-empty list, got 'even'"
    ):
        check_evaluate_parameters(evaluate, groups)


@pytest.mark.parametrize(
    "group, params, message",
    [
        (
            "data",
            {"source": "svhn"},
            r"data.source='svhn' is unknown; choose one of 'mnist_embedded', .*'mixed'",
        ),
        (
            "groups",
            {"training": {"strategy": "sorted"}},
            r"groups.training.strategy='sorted' is unknown",
        ),
        (
            "groups",
            {"evaluation": {"strategy": None}},
            r"groups.evaluation.strategy=None is unknown",
        ),
        (
            "groups",
            {"evaluation": {"strategy": "hair"}},
            r"groups.evaluation.strategy='hair' is unknown; choose one of 'auto', 'attribute'",
        ),
        (
            "groups",
            {"clusters": {"features": "latents"}},
            r"groups.clusters.features='latents' is unknown; choose one of 'pixels', "
            r"'local_codes' or 'mixture_probs'",
        ),
        (
            "groups",
            {"clusters": {"refresh_every": 0}},
            r"groups.clusters.refresh_every",
        ),
        (
            "groups",
            {"series": {"names": ["squares"]}},
            r"groups.series.names: unknown series \['squares'\]; registered: \['even'",
        ),
        (
            "extract",
            {"groups_per_chunk": 0},
            r"extract.groups_per_chunk must be an integer >= 1, got 0",
        ),
        ("extract", {"progress": "quiet"}, r"extract.progress='quiet' is unknown; use one of"),
    ],
)
def test_unknown_names_are_refused_naming_the_valid_ones(group, params, message):
    with pytest.raises(ValueError, match=message):
        check_group(group, params)


@pytest.mark.parametrize(
    "group, params, message",
    [
        (
            "groups",
            {"series": {"group_szie": 3}},
            "unknown parameter groups.series.group_szie; valid names there: "
            "['digits', 'draw', 'group_size', 'groups_per_series', 'names', 'seed']",
        ),
        (
            "groups",
            {"klass": {}},
            "unknown parameter groups.klass; valid names there: ['attribute', 'class', 'clusters', 'domain',",
        ),
        (
            "data",
            {"heldout_fraction": 0.2},
            "unknown parameter data.heldout_fraction; valid names there: ['celeba', ",
        ),
        (
            "data",
            {"image_folder": {"heldout_fraction": 0.2}},
            "unknown parameter data.image_folder.heldout_fraction",
        ),
        (
            "evaluate",
            {"sweep": {"radious": 1.0}},
            "unknown parameter evaluate.sweep.radious; valid names there: ['component', 'radius', 'steps']",
        ),
        (
            "figures",
            {"n_image": 3},
            "unknown parameter figures.n_image; valid names there: ['n_groups', 'n_images', 'seed']",
        ),
        (
            "compare",
            {"metric": []},
            "unknown parameter compare.metric; valid names there: ['experiment', 'filter', 'metrics']",
        ),
        ("extract", {"groups_per_chunks": 3}, "unknown parameter extract.groups_per_chunks"),
        ("train", {"epoch": 3}, "unknown train parameter(s) ['epoch']; valid names are"),
        ("model", {"dim_betta": 3}, "unknown model parameter(s) ['model.dim_betta']"),
    ],
)
def test_a_typo_in_any_group_is_refused_with_its_path_and_the_valid_names(group, params, message):
    with pytest.raises(ValueError) as err:
        check_group(group, params)
    assert message in str(err.value)


def test_an_unquoted_off_is_the_off_progress_mode():
    check_group("extract", {"progress": False})  # YAML 1.1 reads `progress: off` as false


@pytest.mark.parametrize(
    "params, message",
    [
        ({"test_fraction": "0.2"}, "data.test_fraction must be a number, got '0.2'"),
        ({"validation_fraction": 1.0}, "data.validation_fraction must be a number < 1.0, got 1.0"),
        (
            {"validation_fraction": 0.5, "test_fraction": 0.5},
            "data.validation_fraction + data.test_fraction must be below 1",
        ),
        (
            {"image_folder": {"test_fraction": 0.9}},
            "data.image_folder.validation_fraction + data.image_folder.test_fraction",
        ),
        (  # uci_digits takes the top-level fractions it leaves out, as ingestion does
            {"validation_fraction": 0.5, "uci_digits": {"test_fraction": 0.5}},
            "data.uci_digits.validation_fraction + data.uci_digits.test_fraction must be below 1",
        ),
        ({"split_seed": -1}, "data.split_seed must be an integer >= 0, got -1"),
        (
            {"image_folder": {"image_size": 0}},
            "data.image_folder.image_size must be an integer >= 1, got 0",
        ),
        (
            {"image_folder": {"channels": 4}},
            "data.image_folder.channels=4 is unknown; choose one of 1 or 3",
        ),
        ({"celeba": {"limit": 2.5}}, "data.celeba.limit must be an integer, got 2.5"),
        (
            {"celeba": {"skip_bad_images": "yes"}},
            "data.celeba.skip_bad_images must be true or false",
        ),
        ({"mnist": {"download": 1}}, "data.mnist.download must be true or false, got 1"),
    ],
)
def test_bad_data_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        check_group("data", params)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"heldout": {"group_size": -1}},
            "groups.heldout.group_size must be an integer >= 1, got -1",
        ),
        ({"heldout": {"n_groups": "7"}}, "groups.heldout.n_groups must be an integer, got '7'"),
        ({"series": {"seed": 1.5}}, "groups.series.seed must be an integer, got 1.5"),
        ({"domain": {"p": 1.5}}, "groups.domain.p must be a number <= 1.0, got 1.5"),
        ({"attribute": {"exclusive": "no"}}, "groups.attribute.exclusive must be true or false"),
        (
            {"evaluation": {"split": "training"}},
            "groups.evaluation.split='training' is unknown; choose one of 'validation', 'test' or 'train'",
        ),
        (
            {"series": {"digits": "all"}},
            "groups.series.digits='all' is unknown; choose one of 'first_256' or 'all_of_first_256_numbers'",
        ),
        (
            {"evaluation": {"random": {"n_groups": -1}}},
            "groups.evaluation.random.n_groups must be an integer >= 0",
        ),
        (
            {"evaluation": {"random": {"n_groups": None}}},
            "groups.evaluation.random.n_groups must be an integer, got None",
        ),
    ],
)
def test_bad_groups_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        check_group("groups", params)
    assert message in str(err.value)


def test_no_random_reference_groups_is_allowed():
    check_group("groups", {"evaluation": {"random": {"n_groups": 0, "seed": 0}}})


@pytest.mark.parametrize(
    "strategy, source, message",
    [
        (
            "series",
            "image_folder",
            r"groups.evaluation.strategy=series cannot be built from data.source=image_folder "
            r"\(it needs one of \['mnist_embedded', 'mnist', 'uci_digits'\]\); choose one of \['auto', 'attribute', 'class', 'folder'\]",
        ),
        (
            "domain",
            "celeba",
            r"groups.evaluation.strategy=domain cannot be built from data.source=celeba",
        ),
        ("folder", "mnist_embedded", r"choose one of \['auto', 'attribute', 'class', 'series'\]"),
    ],
)
def test_evaluation_groups_a_source_cannot_build_are_refused(strategy, source, message):
    groups = _parameters("base")["groups"]
    groups["evaluation"]["strategy"] = strategy
    with pytest.raises(ValueError, match=message):
        check_parameters({"groups": groups, "data": {"source": source}})


@pytest.mark.parametrize(
    "source, strategy",
    [
        ("mnist_embedded", "series"),
        ("uci_digits", "series"),
        ("celeba", "attribute"),
        ("mixed", "domain"),
        ("image_folder", "folder"),
    ],
)
def test_auto_evaluation_groups_follow_the_source(source, strategy):
    from ugvae_pipeline.data.grouping.strategies import evaluation_strategy

    assert evaluation_strategy({"evaluation": {"strategy": "auto"}}, {"source": source}) == strategy


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"trian": {"epochs": 1}},
            "unknown parameter group(s) 'trian' (did you mean 'train'?); the parameter groups are "
            "['model', 'train', 'data', 'groups', 'extract', 'evaluate', 'figures', 'compare', "
            "'encode', 'search'] (and ['mlflow_experiment'] on the command line)",
        ),
        ({"grups": {}, "colour": 3}, "'grups' (did you mean 'groups'?), 'colour';"),
        ({"mlflow_experment": "study"}, "'mlflow_experment' (did you mean 'mlflow_experiment'?)"),
    ],
)
def test_a_top_level_name_that_is_no_group_is_refused_with_the_nearest_group(params, message):
    shipped = _parameters("base")
    with pytest.raises(ValueError) as err:
        check_parameters({**shipped, **params})
    assert message in str(err.value)


def test_the_runtime_experiment_name_is_no_typo():
    check_parameters({**_parameters("base"), "mlflow_experiment": "study"})


def test_held_out_groups_default_to_the_training_group_size():
    assert _parameters("base")["groups"]["heldout"]["group_size"] is None  # documented default
    check_group("groups", {"heldout": {"group_size": None}})
    check_group("groups", {"heldout": {"group_size": 16}})
    with pytest.raises(
        ValueError, match=r"groups.heldout.group_size must be an integer >= 1, got 0"
    ):
        check_group("groups", {"heldout": {"group_size": 0}})


@pytest.mark.parametrize("group", ["train", "evaluate", "model"])
def test_a_group_that_is_no_mapping_is_refused(group):
    with pytest.raises(ValueError, match=rf"{group} must be a mapping of parameters, got 3"):
        check_group(group, 3)
