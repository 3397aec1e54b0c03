"""A trained generator as a self-contained folder, and the two-line API over it:

    g = t2i.load_generator("DIR")
    images = g(["a red flower with five petals"], n=8, seed=0)   # PIL images, 8 per caption

`export(ckpt_path, out)` (export.py) writes, following huggingface_hub's ModelHubMixin
layout (`save_pretrained` / `from_pretrained`, so the folder pushes to and pulls from the
Hub as it is):
- model.safetensors        the generator's weights only (its EMA average where it has one)
- config.json              architecture, its settings, image size, channels, text settings,
                           what it was trained on, the step, example test captions
- vocabulary.json          the words, in id order
- word_vectors.safetensors the standardised word-vector matrix (vocab x dim) and which rows are known
- metrics.json             the run's metrics with their protocol (when the run wrote one)
- samples.png, README.md   a sample grid and the model card
Loading reads JSON and safetensors only: no pickle, so a shared folder cannot run code;
the architecture is looked up in ARCHITECTURES, never imported from a name in the file."""
from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import torch
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torchvision.utils import save_image

from t2i.atomic_files import atomic_path, atomic_write_text
from t2i.checkpoint_checks import read_checkpoint
from t2i.data.caption_datamodule import CaptionDataModule
from t2i.errors import ModelFolderError
from t2i.generate import images_for_captions
from t2i.images import grid, to_pil
from t2i.model_card import SAMPLES, describe, metrics_markdown, model_card, read_json
from t2i.retired_options import without_retired
from t2i.run import rebuild
from t2i.run_folder import RunFolder
from t2i.tasks.cond_dcgan_lstm import CondDCGANLSTM
from t2i.tasks.dcgan import DCGAN
from t2i.tasks.df_gan import DFGAN
from t2i.tasks.gan_cls import GANCLS
from t2i.tensors import evaluating
from t2i.value_checks import check_value

log = logging.getLogger("t2i")
__all__ = ["ExportedGenerator", "export", "load_generator", "looks_local", "metrics_markdown", "model_override"]

ARCHITECTURES = {"gan_cls": GANCLS, "df_gan": DFGAN, "cond_dcgan_lstm": CondDCGANLSTM, "dcgan": DCGAN}
CONFIG, WEIGHTS, VOCABULARY, VECTORS = "config.json", "model.safetensors", "vocabulary.json", "word_vectors.safetensors"
METRICS, CARD = "metrics.json", "README.md"


def architecture_of(model) -> str:
    for name, cls in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} cannot be exported: export supports {', '.join(ARCHITECTURES)} "
                     "(text-to-image GANs and the unconditional DCGAN)")


class ExportedGenerator:
    """A generator ready to draw: the model (eval mode, CPU by default) and, for
    text-to-image models, the text pipeline it was trained with."""

    def __init__(self, model, text: CaptionDataModule | None, config: dict, folder: Path | None = None,
                 metrics: dict | None = None):
        self.model, self.text, self.config, self.folder = model.eval(), text, config, folder
        self.metrics = dict(metrics or {})  # the run's metrics.json, with its protocols

    # ------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "ExportedGenerator":
        """A folder written by `save_pretrained` (or a Hub repo id, downloaded with
        huggingface_hub when it is installed)."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            folder = download(str(path))
        if not (folder / CONFIG).is_file():
            raise ModelFolderError(f"{folder} has no {CONFIG}: not an exported t2i generator (python export.py "
                                    "ckpt_path=RUN/checkpoints/best.ckpt out=DIR writes one)")
        config = json.loads((folder / CONFIG).read_text())
        name = config.get("architecture")
        if name not in ARCHITECTURES:
            raise ModelFolderError(f"{folder / CONFIG}: unknown architecture {name!r} "
                                   f"(known: {', '.join(ARCHITECTURES)})")
        task = ARCHITECTURES[name]
        settings = without_retired(f"{task.__module__}.{task.__qualname__}", config["model"])
        if "ema_decay" in settings:
            settings["ema_decay"] = 0.0  # the exported weights already are the average
        model = generator_only(folder, task, settings)
        text = None
        if config.get("text") is not None:
            vectors = load_file(folder / VECTORS)
            itos = json.loads((folder / VOCABULARY).read_text())["itos"]
            text = text_pipeline(config["text"], itos, vectors["matrix"], vectors["known"].bool(),
                                 config.get("examples", []))
        return cls(model.to(device), text, config, folder, read_json(folder / METRICS))

    @classmethod
    def from_checkpoint(cls, ckpt_path: str | Path, trust: bool = False) -> "ExportedGenerator":
        """A Lightning checkpoint of train.py, read without running code from it (`trust`:
        a full unpickle, for an old or foreign checkpoint whose maker you trust)."""
        ckpt = read_checkpoint(ckpt_path, trust)
        model, datamodule, cfg = rebuild(ckpt, Path(ckpt_path))
        architecture = architecture_of(model)
        text = datamodule if isinstance(datamodule, CaptionDataModule) and datamodule.word_vectors is not None \
            else None
        config = describe(model, architecture, text, cfg, int(ckpt.get("global_step", 0)), Path(ckpt_path))
        return cls(model, text, config, metrics=read_json(Path(ckpt_path).parent.parent / METRICS))

    # ------------------------------------------------------------- drawing
    @property
    def conditional(self) -> bool:
        return self.text is not None

    @property
    def examples(self) -> list[str]:
        return list(self.config.get("examples") or [])

    def generate(self, captions: list[str] | str | None = None, n: int = 8, seed: int = 0) -> torch.Tensor:
        """(captions, n, C, S, S) in [-1, 1] (unconditional models: (1, n, ...), no captions):
        the same seed and caption give the same pixels as generate.py on the checkpoint."""
        check_value("n", n)  # ConfigError, a ValueError: a bound, not a memory error later
        check_value("seed", seed)
        if not self.conditional:
            if captions:
                raise ValueError(f"this {self.config['architecture']} generator is unconditional: call it without "
                                 "captions")
            with evaluating(self.model):
                return self.model.generate({}, self.model.draw_noise(n, seed)).float().cpu()[None]
        captions = [captions] if isinstance(captions, str) else list(captions or [])
        if not captions or not all(isinstance(c, str) and c.strip() for c in captions):
            raise ValueError('a text-to-image generator needs captions: g(["a red flower"], n=8, seed=0)')
        return images_for_captions(self.model, self.text, captions, n, seed)

    def __call__(self, captions: list[str] | str | None = None, n: int = 8, seed: int = 0) -> list[Image.Image]:
        """PIL images: n per caption, caption by caption."""
        images = self.generate(captions, n, seed)
        return [to_pil(image) for image in images.flatten(0, 1)]

    # ------------------------------------------------------------- saving
    def save_pretrained(self, out: str | Path, command: str | None = None) -> Path:
        """Write the folder (see the module's docstring); `command`: how it was made, for the card."""
        out = Path(out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        generator = getattr(self.model, "generator_ema", None) or self.model.generator
        # each file atomically (t2i.atomic_files): a kill or a full disk leaves no torn file
        with atomic_path(out / WEIGHTS) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}, tmp,
                      metadata={"format": "pt"})
        if self.text is not None:
            wv = self.text.word_vectors
            with atomic_path(out / VECTORS) as tmp:
                save_file({"matrix": wv.matrix.float().contiguous(), "known": wv.known.to(torch.uint8)}, tmp)
            atomic_write_text(out / VOCABULARY, json.dumps({"itos": wv.vocab.itos}, ensure_ascii=False))
        atomic_write_text(out / CONFIG, json.dumps(self.config, indent=2, default=str))
        if self.metrics:
            atomic_write_text(out / METRICS, json.dumps(self.metrics, indent=2, sort_keys=True))
        captions = self.examples[:4] if self.conditional else None
        with atomic_path(out / SAMPLES) as tmp:
            save_image(grid(self.generate(captions, n=8, seed=0).flatten(0, 1), nrow=8), tmp)
        atomic_write_text(out / CARD, model_card(self.config, self.metrics, command))
        self.folder = out
        return out

    def push_to_hub(self, repo_id: str, **kw) -> str:
        """Upload the saved folder to the Hugging Face Hub (needs huggingface_hub and a login)."""
        if self.folder is None:
            raise RuntimeError("save_pretrained(DIR) first: push_to_hub uploads that folder")
        from huggingface_hub import HfApi  # optional: only pushing and pulling from the Hub need it

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True, **kw)
        return api.upload_folder(repo_id=repo_id, folder_path=str(self.folder)).commit_url


def generator_only(folder: Path, task, settings: dict):
    """The task with its generator net alone: built on the meta device (shapes, no storage),
    its discriminator dropped before any memory is spent on it, the generator checked against
    model.safetensors' header (a config.json edited to `ngf=200000` would otherwise allocate
    first), then given storage and the file's weights."""
    try:
        with torch.device("meta"):
            model = task(optimizer_g=None, optimizer_d=None, **settings)
    except (TypeError, ValueError) as error:
        raise ModelFolderError(f"{folder / CONFIG}: its model settings are refused: {error}") from None
    shapes = {k: tuple(v.shape) for k, v in model.generator.state_dict().items()}
    with safe_open(str(folder / WEIGHTS), framework="pt") as weights:
        stored = {k: tuple(weights.get_slice(k).get_shape()) for k in weights.keys()}
    if shapes != stored:
        name = next(k for k in sorted(set(shapes) | set(stored)) if shapes.get(k) != stored.get(k))
        raise ModelFolderError(f"{folder}: {CONFIG} does not match {WEIGHTS} ({name}: the settings give "
                               f"{shapes.get(name)}, the file holds {stored.get(name)}): re-export the model "
                               "(python export.py ckpt_path=... out=DIR) rather than editing its config")
    model.discriminator = None  # drawing never needs it
    rest = [n for n, _ in [*model.named_parameters(), *model.named_buffers()] if not n.startswith("generator.")]
    if rest:  # a task holding weights outside its generator: nothing in the file would fill them
        raise ModelFolderError(f"{folder}: {type(model).__name__} holds {rest[0]} outside its generator, which "
                               f"{WEIGHTS} does not carry")
    model.to_empty(device="cpu")
    model.generator.load_state_dict(load_file(folder / WEIGHTS))  # strict: every tensor of the net is in the file
    return model


def looks_local(name: str) -> bool:
    """A path, not a Hub repo id (`name` or `owner/name`): a mistyped folder must not go to the Hub."""
    return name.startswith((".", "~", "/")) or name.count("/") > 1 or "\\" in name


def download(repo_id: str) -> Path:
    """A Hub repo id's folder; a name that can only be a path (see looks_local) is refused."""
    if looks_local(repo_id):
        raise ModelFolderError(f"model={repo_id}: no such folder (a path, so not looked up on the Hub). Give the "
                               "folder export.py wrote (python export.py ckpt_path=... out=DIR)")
    try:
        from huggingface_hub import snapshot_download  # optional: local folders need nothing
    except ImportError:
        raise ModelFolderError(f"{repo_id}: no such folder (and huggingface_hub is not installed to fetch it "
                               "from the Hub: pip install huggingface_hub)") from None
    try:
        return Path(snapshot_download(repo_id))
    except (OSError, ValueError) as error:  # not a repo id, no such repo, offline: what the Hub client raises
        raise ModelFolderError(f"model={repo_id}: no such folder here, and not found on the Hub "
                               f"({type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''})"
                               ) from None


def text_pipeline(settings: dict, itos: list[str], matrix: torch.Tensor, known: torch.Tensor,
                  examples: list[str]) -> CaptionDataModule:
    """The encoder a model was trained with (tokeniser, vocabulary, standardised vectors):
    the data modules' own `encode`, so captions become the same vectors as in training."""
    text = CaptionDataModule(max_words=int(settings["max_words"]), embedding_dim=int(settings["embedding_dim"]),
                             standardize=bool(settings.get("standardize", True)), word2vec=settings.get("word2vec"))
    text.load_state_dict({"word_vectors": {"vocab": {"itos": itos}, "matrix": matrix, "known": known},
                          "settings": settings, "examples": examples})
    return text

# ------------------------------------------------------------------ export.py
def run_command(run_dir: Path) -> str | None:
    """The train.py command of a run folder (Hydra's .hydra/overrides.yaml)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    overrides = yaml.safe_load(path.read_text()) or []
    return "python train.py " + " ".join(str(o) for o in overrides)


def export(ckpt_path: str | Path, out: str | Path, trust: bool = False) -> Path:
    """export.py: a checkpoint -> the self-contained folder; the run's metrics.json (next to
    checkpoints/) goes into the card."""
    ckpt_path = Path(ckpt_path).expanduser()
    generator = ExportedGenerator.from_checkpoint(ckpt_path, trust)  # a missing or unsafe file: CheckpointError
    run_dir = ckpt_path.parent.parent
    metrics = generator.metrics
    if not metrics:
        log.warning("no %s in %s: the model card will have no metrics", METRICS, run_dir)
    elif metrics.get("checkpoint") not in (None, ckpt_path.stem):
        log.warning("%s scored the %s checkpoint, not %s: the card says so", METRICS, metrics["checkpoint"],
                    ckpt_path.name)
    train_cmd = run_command(run_dir)
    command = "\n".join(c for c in (train_cmd, f"python export.py ckpt_path={ckpt_path} out={out}") if c)
    with RunFolder(Path(out).expanduser()):  # two exports into one folder would mix their files
        folder = generator.save_pretrained(out, command)
        for picture in ("captions.png",):
            if (run_dir / picture).is_file():
                with atomic_path(folder / picture) as tmp:
                    shutil.copyfile(run_dir / picture, tmp)
    log.info("exported %s (%s, step %d) to %s", ckpt_path, generator.config["architecture"],
             generator.config["step"], folder)
    return folder


def model_override(argv: list[str]) -> list[str]:
    """generate.py / demo.py `model=DIR`: conf/model/ is a config group, so Hydra would read
    model=DIR as picking one of its options; it is the config key `model_dir`."""
    return [("model_dir=" + a.removeprefix("model=")) if a.startswith("model=") else a for a in argv]


def load_generator(path: str | Path, device: str = "cpu") -> ExportedGenerator:
    """t2i.load_generator(DIR): an exported folder (or a Hub repo id); see ExportedGenerator."""
    return ExportedGenerator.from_pretrained(path, device=device)


def __getattr__(name: str):
    """`t2i.pretrained.Generator`, the exported generator's name before ExportedGenerator
    (the nets' `Generator` is the nn.Module): still found for one release, with a warning."""
    if name != "Generator":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn("t2i.pretrained.Generator is now t2i.pretrained.ExportedGenerator; the old name goes in the next "
                  "release", DeprecationWarning, stacklevel=2)
    return ExportedGenerator
