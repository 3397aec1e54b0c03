"""Every experiment in conf/experiment composes and runs one fast_dev_run batch; those
on real datasets run on fixture files written in the real formats."""
from pathlib import Path

import pytest

from t2i.run import train
from tests.fixtures import has_fixture, write_fixture

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment, make_cfg, tmp_path):
    cfg = make_cfg([f"experiment={experiment}", "debug=fast_dev_run"])
    data_name = cfg.hydra.runtime.choices["data"]
    # a small batch: this checks that each experiment composes and runs, not its speed
    overrides = [f"experiment={experiment}", "debug=fast_dev_run", "data.batch_size=8"]
    if has_fixture(data_name):
        overrides += write_fixture(data_name, tmp_path / "data")
    cfg = make_cfg(overrides)
    train(cfg)
