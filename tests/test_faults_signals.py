"""Every message true (issue 38): Ctrl-C and SIGTERM outside training give one line and
exit 130 / 143; "last.ckpt saved" is said only once the file is complete."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from pytorch_lightning.utilities.exceptions import SIGTERMException

from t2i.callbacks.checkpointing import SaveOnStop
from tests.faults_common import ROOT


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_entry_point_loads_is_one_line(tmp_path, sig, code):
    proc = subprocess.Popen([sys.executable, "evaluate.py", f"ckpt_path={tmp_path / 'x.ckpt'}",
                             f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # in torch's import (our handler is installed first, within the first second)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and f"exit {code}" in err and "Traceback" not in err


def test_saved_is_said_only_once_the_checkpoint_is_complete(tmp_path):
    stop = SaveOnStop(tmp_path)

    def save_interrupted(path, weights_only=False):
        raise KeyboardInterrupt  # e.g. the disk stalls and the user gives up
    trainer = SimpleNamespace(fast_dev_run=False, global_step=3, save_checkpoint=save_interrupted)
    with pytest.raises(KeyboardInterrupt):
        stop.on_exception(trainer, None, SIGTERMException())
    assert stop.stopped_by is None  # train() then says nothing was saved

    trainer.save_checkpoint = lambda path, weights_only=False: path.write_bytes(b"complete")
    stop.on_exception(trainer, None, SIGTERMException())
    assert stop.stopped_by == signal.SIGTERM and (tmp_path / "last.ckpt").read_bytes() == b"complete"


def test_a_second_signal_during_the_save_waits_for_it(tmp_path):
    stop = SaveOnStop(tmp_path)

    def save(path, weights_only=False):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C again, mid-write
        path.write_bytes(b"complete")
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        stop.on_exception(SimpleNamespace(fast_dev_run=False, global_step=3, save_checkpoint=save), None,
                          SIGTERMException())
    finally:
        signal.signal(signal.SIGINT, previous[0])
    assert signal.getsignal(signal.SIGTERM) is previous[1]  # the save put it back
    assert stop.stopped_by == signal.SIGTERM and (tmp_path / "last.ckpt").read_bytes() == b"complete"
