"""Every dataset with one command: `python -m t2i.data.download NAME [--root DIR]`, or
`data.download=true` on an experiment. Files come from the table in `sources.py`
(a `--mirror` first), are checked, and are laid out as the readers expect."""
from t2i.data.download.dataset import DownloadError, fetch_dataset, unpack_local
from t2i.data.download.sources import DATASETS

__all__ = ["DATASETS", "DownloadError", "fetch_dataset", "unpack_local"]
