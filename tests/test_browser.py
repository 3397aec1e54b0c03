"""End to end in a real browser (slow; needs Gradio, selenium and Debian's chromium +
chromium-driver: pip install -r requirements-demo.txt; apt-get install chromium
chromium-driver). demo.py on a free localhost port: a caption typed, generate pressed,
the grid shown holds exactly load_generator's pixels for that seed (and gradio_client's
API returns the same); the HTML gallery of a 3-run sweep: the table and every picture load.
Screenshots go to outputs/test_artifacts/browser/ (printed)."""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import t2i
from report import build_gallery
from t2i.demo import cell
from t2i.pretrained import export
from t2i.run import train
from tests.test_report import write_gallery_runs

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("gradio", reason="needs Gradio: pip install -r requirements-demo.txt")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -r requirements-demo.txt")
from selenium.webdriver.common.by import By  # noqa: E402  (after the skips: selenium is optional)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.conftest import compose_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("T2I_TEST_ARTIFACTS", ROOT / "outputs" / "test_artifacts" / "browser"))
CAPTION = "a large filled circle in the top left"
TINY = ["experiment=shapes_t2i", "data.splits=[256,64,128]", "data.embedding_dim=16", "data.word2vec.epochs=1",
        "data.batch_size=16", "model.ngf=8", "model.ndf=8", "trainer.max_steps=20", "trainer.enable_progress_bar=false",
        "logger=csv", "eval.num_samples=64", "eval.kid_subset_size=20", "eval.feature_extractor=domain",
        "eval.every_n_steps=0"]


def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='t2i-chromium-')}")  # a fresh profile
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    """Until the app answers (importing torch and gradio takes minutes on busy cores)."""
    start = time.time()
    while time.time() - start < timeout:
        if process.poll() is not None:
            raise AssertionError(f"demo.py exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"demo.py did not answer on {url} within {timeout} s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A trained, evaluated and exported GAN-CLS on captioned shapes."""
    tmp = tmp_path_factory.mktemp("browser")
    cfg = compose_config("train", [f"paths.cache_dir={tmp / 'cache'}", *TINY, "evaluate_after_fit=true"],
                         tmp / "sweep" / "0")
    train(cfg)
    return export(tmp / "sweep" / "0" / "checkpoints" / "last.ckpt", tmp / "exported"), tmp


def test_demo_in_a_browser_draws_load_generators_pixels(exported):
    folder, _ = exported
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = ARTIFACTS / "demo.log"
    with open(log, "w") as out:
        demo = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), f"model={folder}", f"port={port}"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    driver = None
    try:
        wait_for(url, demo, log)
        driver = chromium()
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#caption textarea"))
        assert "alignment_accuracy" in driver.page_source  # the model card's metrics
        box.clear()
        box.send_keys(CAPTION)
        seed = driver.find_element(By.CSS_SELECTOR, "#seed input")
        seed.clear()
        seed.send_keys("3")
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        img = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#images img"))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))
        driver.save_screenshot(str(ARTIFACTS / "demo.png"))
        shown = Image.open(io.BytesIO(urllib.request.urlopen(img.get_attribute("src"), timeout=30).read()))
        shown.save(ARTIFACTS / "demo_grid.png")
        expected = t2i.load_generator(folder)([CAPTION], n=8, seed=3)
        size = expected[0].size[0]
        assert shown.size == (8 * size + 9 * 2, size + 2 * 2)
        for i, image in enumerate(expected):
            assert np.array_equal(np.asarray(cell(shown.convert(image.mode), i, size)), np.asarray(image)), i
        # the same function through the app's API
        from gradio_client import Client  # optional (comes with gradio)
        path = Client(url, verbose=False).predict(CAPTION, 8, 3, api_name="/generate")
        assert np.array_equal(np.asarray(Image.open(path).convert(shown.mode)), np.asarray(shown))
    finally:
        if driver is not None:
            driver.quit()
        demo.terminate()
        demo.wait(timeout=30)
    print(f"browser screenshots: {ARTIFACTS}")


def test_gallery_page_of_a_sweep_loads_every_picture(exported):
    _, tmp = exported
    write_gallery_runs(tmp / "others", n=2)  # two more runs beside the real one
    for job in ("0", "1"):
        shutil.move(tmp / "others" / job, tmp / "sweep" / f"fixture{job}")
    page = build_gallery([tmp / "sweep"], tmp / "gallery.html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = chromium()
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"))
        loaded = driver.execute_script("return [...document.images].map(i => i.naturalWidth)")
        assert len(loaded) >= 3 * 4 and all(w > 0 for w in loaded), loaded
        rows = driver.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")
        assert len(rows) == 3
        header = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "table.sortable th")]
        col = header.index("fid")
        driver.find_elements(By.CSS_SELECTOR, "table.sortable th")[col].click()
        values = [float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-value"))
                  for r in driver.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")]
        assert values == sorted(values)
        driver.save_screenshot(str(ARTIFACTS / "gallery.png"))
    finally:
        driver.quit()
    print(f"browser screenshots: {ARTIFACTS}")
