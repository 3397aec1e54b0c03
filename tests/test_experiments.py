"""Every experiment in conf/experiment composes and runs one fast_dev_run batch; those
on real datasets run on fixture files written in the real formats."""
import re
from pathlib import Path

import pytest

from t2i.run import train
from tests.fixtures import has_fixture, write_fixture

CONF = Path(__file__).parents[1] / "conf" / "experiment"
EXPERIMENTS = sorted(p.stem for p in CONF.glob("*.yaml"))  # base/*.yaml are parts, not experiments


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


def test_every_experiment_the_readme_lists_is_one_that_runs_above():
    """The README's experiment table names only experiments test_experiment_fast_dev_run covers,
    and lists every experiment except the old names kept as aliases."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("## Experiments", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"`([a-z0-9_]+)`", "\n".join(row.split("|")[1] for row in table.splitlines()[2:])))
    assert listed and listed <= set(EXPERIMENTS), sorted(listed - set(EXPERIMENTS))
    aliases = {name for name in EXPERIMENTS
               if (CONF / f"{name}.yaml").read_text().split("\n")[1].startswith("# Old name")}
    assert set(EXPERIMENTS) - listed == aliases, sorted(set(EXPERIMENTS) - listed - aliases)
