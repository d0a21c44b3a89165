"""What the noxfile's sessions make of their arguments (picklematrix.record.noxargs)."""

import pytest

from picklematrix.envs.matrix import load_matrix
from picklematrix.record import noxargs


def test_options_are_read_in_both_spellings_and_dropped_whole():
    args = ["--from", "a", "--to=b", "--quiet", "--change", "pydantic=2.10.6", "--env", "x", "--env=y"]
    assert noxargs.option(args, "--to") == "b" and noxargs.option(args, "--env", many=True) == ["x", "y"]
    assert noxargs.option(args, "--base") is None
    assert noxargs.without(args, {"--from", "--to", "--change"}) == ["--quiet", "--env", "x", "--env=y"]


@pytest.mark.parametrize("argv, selected", [
    (["nox"], True), (["nox", "-s", "matrix"], True), (["nox", "-s", "matrix(skew-x)"], True),
    (["nox", "-s", "review", "--", "-s", "matrix"], False), (["nox", "--session=tests"], False),
    (["nox", "-s", "report", "lint"], False),
])
def test_the_matrix_session_is_known_to_be_selected_from_noxs_own_arguments(argv, selected):
    assert noxargs.matrix_selected(argv) is selected


def test_an_env_that_cannot_be_resolved_is_bad_input_naming_it(monkeypatch):
    monkeypatch.delenv(noxargs.ON_DEMAND_VAR, raising=False)
    with pytest.raises(noxargs.ArgsError) as err:
        noxargs.on_demand(["--env", "pydantic==="], load_matrix(), "default")
    assert err.value.status == 2 and "pydantic===" in str(err.value) and "nothing was built" in str(err.value)
    assert noxargs.ON_DEMAND_VAR not in __import__("os").environ


def test_a_review_of_recorded_skew_records_is_passed_on_as_given(tmp_path):
    args = ["--from", "cpA", "--to", "cpB~cpC"]
    assert noxargs.review_envs(args, load_matrix(), "default", tmp_path, tmp_path) == args
