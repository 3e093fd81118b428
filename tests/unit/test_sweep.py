"""The sweep's grid file, its trials, and the statistics of its table, without Ray."""

import json

import numpy as np
import pytest

from a3c.errors import ConfigError
from a3c.run.statistics import bootstrap_ci, iqm, median
from a3c.run.sweep import read_grid, summarize


def test_iqm_is_the_mean_of_the_middle_half_trimmed_as_rliable_trims():
    assert iqm([4, 1, 3, 2]) == 2.5  # one cut from each end: mean of 2 and 3
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8, 100]) == 5.0  # int(9 / 4) = 2 cut each end: 3..7
    assert iqm([1, 2, 30]) == 11.0  # fewer than 4 runs: nothing cut
    assert median([1, 2, 30]) == 2.0 and median([1, 2, 3, 30]) == 2.5
    with pytest.raises(ValueError):
        iqm([])


def test_the_percentile_bootstrap_of_two_runs_spans_them_and_is_reproducible():
    # Resampling [0, 10] gives means 0, 5, 10 with probabilities 1/4, 1/2, 1/4: the 2.5 % and
    # 97.5 % quantiles of 2,000 resamples are the two runs themselves.
    assert bootstrap_ci([0.0, 10.0], np.mean) == (0.0, 10.0)
    assert bootstrap_ci([3.0, 3.0, 3.0], iqm) == (3.0, 3.0)
    scores = [1.0, 4.0, 2.0, 8.0, 5.0, 7.0]
    low, high = bootstrap_ci(scores, iqm)
    assert (low, high) == bootstrap_ci(scores, iqm)  # seeded
    assert min(scores) < low < iqm(scores) < high < max(scores)
    wider = bootstrap_ci(scores, iqm, confidence=0.99)
    assert wider[0] <= low and high <= wider[1]


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_file_makes_one_trial_per_env_combination_and_seed(tmp_path):
    grid = read_grid(write(tmp_path, 'envs = ["CartPole-v1", "Acrobot-v1"]\nseeds = [0, 1, 2]\n'
                                     "[options]\ntotal_steps = 1000\n[grid]\nlr = [0.001, 0.003]\n"
                                     "hidden_sizes = [[32], [64, 64]]\n"))
    trials = grid.trials()
    assert len(trials) == 2 * 2 * 2 * 3
    names = {t.name for t in trials}
    assert len(names) == len(trials)
    assert "CartPole-v1__lr=0.001,hidden_sizes=64-64__seed=2" in names
    first = trials[0]
    assert first.options == {"total_steps": 1000, "workers": 1, "lr": 0.001, "hidden_sizes": [32]}
    assert first.cpus == 1 and first.algo == "a3c"


def test_a_grid_file_in_toml_runs_to_its_budget_with_target_return_none(tmp_path):
    grid = read_grid(write(tmp_path, 'envs = ["CartPole-v1"]\n[options]\ntarget_return = "none"\n'))
    [trial] = grid.trials()
    assert trial.options["target_return"] == "none"  # passed on as written; a3c train reads it as None


@pytest.mark.parametrize("text, message", [
    ('seeds = [0]\n', "envs must be a non-empty list"),
    ('envs = ["CartPole-v1"]\nseeds = [0.5]\n', "seeds must be a non-empty list of integers"),
    ('envs = ["CartPole-v1"]\nrepeats = 3\n', "unknown keys repeats"),
    ('envs = ["CartPole-v1"]\n[options]\nseed = 3\n', "seed is set by seeds"),
    ('envs = ["CartPole-v1"]\n[options]\nbackend = "ray"\n', "backend is set by the sweep"),
    ('envs = ["CartPole-v1"]\n[grid]\nlr = 0.1\n', "grid.lr must be a non-empty list"),
    ('envs = ["CartPole-v1"]\n[grid]\nlr = ["fast"]\n', "lr must be float"),
    ('envs = ["CartPole-v1"]\n[options]\nlearning_rate = 0.1\n', "unknown config keys: learning_rate"),
    ('envs = ["CartPole-v1"]\n[options]\nfinal_eval_episodes = 0\n', "final_eval_episodes must be positive"),
    ('envs = ["CartPole-v1"]\nalgo = "ppo"\n', "unknown algo 'ppo'"),
])
def test_a_bad_grid_file_is_a_config_error_that_names_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        read_grid(write(tmp_path, text))


def test_the_summary_groups_trials_by_env_and_options_over_their_seeds():
    results = [{"env_id": "E", "point": {"lr": lr}, "seed": seed, "score": score, "steps": 100}
               for lr, seed, score in [(0.1, 0, 1.0), (0.1, 1, 3.0), (0.1, 2, 2.0), (0.1, 3, 10.0),
                                       (0.2, 0, 5.0)]]
    fast, slow = summarize(results)
    assert (fast["options"], fast["runs"], fast["seeds"]) == ("lr=0.1", 4, "0 1 2 3")
    assert fast["median"] == 2.5 and fast["iqm"] == 2.5  # 1, 2, 3, 10: the middle two
    assert fast["iqm_ci_low"] <= fast["iqm"] <= fast["iqm_ci_high"]
    assert (slow["runs"], slow["median"], slow["iqm_ci_low"], slow["iqm_ci_high"]) == (1, 5.0, 5.0, 5.0)
    assert json.dumps(fast)  # a plain row, as summary.csv writes it
