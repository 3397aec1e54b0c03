"""The one table of where every dataset file comes from, how it is checked and where its
contents go. Each entry says where its URL and checksum were found; check them again
before relying on a changed one (torchvision and tensorflow_datasets are the references).

Google Drive ids cannot be checked without the internet: the Reed et al. entries carry
the ids (and resource keys) that reedscot/cvpr2016's README and the repositories that
copy it link to, and no checksum was ever published for them, so those files are checked
by the members they must contain and their sha256 is written beside them."""
from __future__ import annotations

from dataclasses import dataclass, field

GB, MB = 1_000_000_000, 1_000_000


@dataclass(frozen=True)
class Unpack:
    """Where an archive's members go under the dataset folder: members whose path (after
    dropping `strip` leading folders) matches one of `keep` (all when empty), put under
    `into`. `how`: archive (tar / zip), gunzip (one .gz file) or copy (the file itself)."""
    how: str = "archive"
    into: str = ""
    keep: tuple[str, ...] = ()
    strip: int = 0


@dataclass(frozen=True)
class FileSpec:
    name: str                     # the file name, also how a --mirror is asked for it
    urls: tuple[str, ...]         # canonical sources, tried in order after the mirror
    size: int | None              # exact bytes where known (a wrong size is refused early)
    md5: str | None = None
    sha256: str | None = None
    part: str = "images"          # images | captions | all: what --images-only / --captions-only select
    unpacked: int | None = None   # bytes once laid out (disk check); the archive's size when None
    unpack: Unpack = Unpack()
    contains: tuple[str, ...] = ()  # fnmatch patterns some member must match (files with no checksum)
    present: tuple[str, ...] = ()   # paths under the dataset folder that show it is laid out already


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: tuple[FileSpec, ...]
    folder: str                   # default --root under $T2I_DATA (or ./data), as conf/data/*.yaml
    terms: str                    # the licence or terms of use, printed before downloading
    manual: str = ""              # set where no file can be fetched automatically
    notes: tuple[str, ...] = field(default_factory=tuple)


def drive(file_id: str, resource_key: str = "") -> str:
    """Google Drive's direct-download address (the `confirm=t` form skips the virus-scan
    page of large files; a quota page still comes back as HTML and is refused)."""
    key = f"&resourcekey={resource_key}" if resource_key else ""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t{key}"


# Oxford-102: URLs and md5s from torchvision.datasets.Flowers102 (_download_url_prefix, _file_dict,
# torchvision 0.29); sizes and sha256s from tensorflow_datasets' url_checksums/oxford_flowers102.txt.
FLOWERS_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_FILES = (
    FileSpec("102flowers.tgz", (FLOWERS_URL + "102flowers.tgz",), 344862509, md5="52808999861908f626f3c1f4e79d11fa",
             sha256="2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246",
             present=("jpg/image_08189.jpg",)),
    FileSpec("imagelabels.mat", (FLOWERS_URL + "imagelabels.mat",), 502, md5="e0620be6f572b9609742df49c70aed4d",
             unpack=Unpack("copy"), present=("imagelabels.mat",)),
    FileSpec("setid.mat", (FLOWERS_URL + "setid.mat",), 14989, md5="a5357ecc9cb78c4bef273ce3793fc85c",
             unpack=Unpack("copy"), present=("setid.mat",)),
)

# Reed et al. 2016's captions (text_c10/ + class lists): Google Drive ids from reedscot/cvpr2016's README
# (birds 0B0ywwgffWnLLZW9uVHNjb2JmNlE, flowers 0B0ywwgffWnLLcms2WWJQRFNSWXM) with the resource keys
# Drive added in 2021 (as linked from the repositories that copy that README). Not verifiable offline;
# no checksum published: checked by contents, sha256 written beside.
REED_KEEP = ("text_c10/*", "*classes.txt")
REED_CUB = FileSpec(
    "cvpr2016_cub.tar.gz", (drive("0B0ywwgffWnLLZW9uVHNjb2JmNlE", "0-8y2UVmBHAlG26HafWYNoFQ"),), None,
    part="captions", unpacked=200 * MB, unpack=Unpack(keep=REED_KEEP, strip=1),
    contains=("*/text_c10/*/*.txt", "*/trainvalclasses.txt", "*/testclasses.txt"),
    present=("text_c10", "trainvalclasses.txt"))
REED_FLOWERS = FileSpec(
    "cvpr2016_flowers.tar.gz", (drive("0B0ywwgffWnLLcms2WWJQRFNSWXM", "0-Av8zFbeDDvNcF1sSjDR32w"),), None,
    part="captions", unpacked=150 * MB, unpack=Unpack(keep=REED_KEEP, strip=1),
    contains=("*/text_c10/class_*/image_*.txt",), present=("text_c10",))

# CUB-200-2011: Caltech's record (data.caltech.edu, since the 2023 move) and the Google Drive copy
# tensorflow_datasets uses (url_checksums/caltech_birds2011.txt: size and sha256); md5 as
# Caltech's record lists it.
CUB_FILES = (
    FileSpec("CUB_200_2011.tgz", ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
                                  drive("1hbzc_P1FuxMkcabkgn9ZKinBwW683j45")), 1150585339,
             md5="97eceeb196236b17998738112f37df78",
             sha256="0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081", unpacked=1200 * MB,
             unpack=Unpack(keep=("CUB_200_2011/*",)),
             present=("CUB_200_2011/images.txt", "CUB_200_2011/images/200.Common_Yellowthroat")),
    REED_CUB,
)

# Flickr8k: the official zips as re-hosted by github.com/jbrownlee/Datasets (release "Flickr8k"); md5s
# as published with that copy. Sizes approximate (the md5 decides). The zips carry __MACOSX/ junk.
FLICKR_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"
FLICKR8K_FILES = (
    FileSpec("Flickr8k_Dataset.zip", (FLICKR_URL + "Flickr8k_Dataset.zip",), None,
             md5="f18a1e2920de5bd84dae7cf08ec78978", unpacked=1150 * MB,
             unpack=Unpack(keep=("Flicker8k_Dataset/*", "Flickr8k_Dataset/*")), present=("Flicker8k_Dataset",)),
    FileSpec("Flickr8k_text.zip", (FLICKR_URL + "Flickr8k_text.zip",), None, md5="bf6c1abcb8e4a833b7f922104de18627",
             part="captions", unpacked=10 * MB, unpack=Unpack(into="Flickr8k_text", keep=("*.txt",)),
             present=("Flickr8k_text/Flickr8k.token.txt",)),
)

# COCO 2014: images.cocodataset.org; sizes and sha256s from tensorflow_datasets'
# url_checksums/coco2014.txt. Only the caption annotations are unpacked from the annotations zip.
COCO_URL = "http://images.cocodataset.org/"
COCO_FILES = (
    FileSpec("val2014.zip", (COCO_URL + "zips/val2014.zip",), 6645013297,
             sha256="fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0",
             present=("val2014/COCO_val2014_000000581929.jpg",)),
    FileSpec("train2014.zip", (COCO_URL + "zips/train2014.zip",), 13510573713,
             sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
             present=("train2014/COCO_train2014_000000581921.jpg",)),
    FileSpec("annotations_trainval2014.zip", (COCO_URL + "annotations/annotations_trainval2014.zip",), 252872794,
             sha256="031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009", part="captions",
             unpacked=100 * MB, unpack=Unpack(keep=("annotations/captions_*.json",)),
             present=("annotations/captions_train2014.json", "annotations/captions_val2014.json")),
)

# MNIST: mirrors and md5s from torchvision.datasets.MNIST (mirrors, resources; LeCun's host now
# answers 403, so torchvision's S3 copy comes first).
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = tuple(
    FileSpec(name, tuple(m + name for m in MNIST_MIRRORS), size, md5=md5, part="all",
             unpack=Unpack("gunzip", into="MNIST/raw"), present=(f"MNIST/raw/{name[:-3]}",))
    for name, size, md5 in (("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                            ("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432"),
                            ("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3"),
                            ("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c")))

# CIFAR-10: URL and md5 from torchvision.datasets.CIFAR10 (url, tgz_md5); size from tensorflow_datasets.
CIFAR10_FILES = (
    FileSpec("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), 170498071,
             md5="c58f30108f718f92721af3b95e74349a", part="all", present=("cifar-10-batches-py/test_batch",)),
)

# IMDB: the Stanford URL t2i.data.imdb already used; size and sha256 from tensorflow_datasets'
# url_checksums/imdb_reviews.txt.
IMDB_FILES = (
    FileSpec("aclImdb_v1.tar.gz", ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",), 84125825,
             sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe", part="all",
             unpacked=500 * MB, present=("aclImdb/test/neg", "aclImdb/train/pos")),
)

REED_TERMS = "Reed et al.'s captions: research use, cite Reed et al. 2016 (no licence file published)"
DATASETS = {
    "flowers": DatasetSpec("flowers", FLOWERS_FILES + (REED_FLOWERS,), "flowers",
                           "Oxford-102 (Nilsback & Zisserman 2008): research use, cite the paper; " + REED_TERMS),
    "cub": DatasetSpec("cub", CUB_FILES, "cub", "CUB-200-2011 (Wah et al. 2011): non-commercial research and "
                       "educational use (images are Flickr users'); " + REED_TERMS),
    "flickr8k": DatasetSpec("flickr8k", FLICKR8K_FILES, "flickr",
                            "Flickr8k (Hodosh et al. 2013): research use under the University of Illinois' "
                            "terms; images remain their Flickr owners'"),
    "coco": DatasetSpec("coco", COCO_FILES, "coco", "MS-COCO: annotations CC BY 4.0; images under their Flickr "
                        "licences (cocodataset.org/#termsofuse)"),
    "mnist": DatasetSpec("mnist", MNIST_FILES, "", "MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0"),
    "cifar10": DatasetSpec("cifar10", CIFAR10_FILES, "", "CIFAR-10 (Krizhevsky 2009): free to use, cite the "
                           "tech report"),
    "imdb": DatasetSpec("imdb", IMDB_FILES, "imdb", "Large Movie Review Dataset (Maas et al. 2011): research "
                        "use, cite the paper"),
    "flickr30k": DatasetSpec(
        "flickr30k", (), "flickr", "Flickr30k (Young et al. 2014): research use, after the request form",
        manual="Flickr30k has no public download: request it with the form at "
               "https://shannon.cs.illinois.edu/DenotationGraph/ and put flickr30k-images/ and "
               "results_20130124.token in ROOT (or Karpathy's dataset_flickr30k.json from "
               "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip), then run with "
               "data.root=ROOT"),
}
