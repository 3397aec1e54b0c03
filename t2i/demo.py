"""demo.py: a Gradio app over a generator (an exported folder or a checkpoint): a caption
box, the number of images, the seed, example captions from the model's test split, the
images as one grid, and the model card's metrics with their protocol. Runs on CPU. Its
generate function is the app's API (`api_name="generate"`): with gradio_client,
`Client("http://127.0.0.1:7860/").predict("a red flower", 8, 0, api_name="/generate")`.

Gradio is optional (requirements-demo.txt), imported only when the app is built."""
from __future__ import annotations

from PIL import Image
from torchvision.utils import make_grid

from t2i.images import to_uint8
from t2i.pretrained import ExportedGenerator, metrics_markdown
from t2i.value_checks import MAX_IMAGES_PER_CAPTION

INSTALL = "the demo needs Gradio: pip install -r requirements-demo.txt"
MAX_IMAGES = MAX_IMAGES_PER_CAPTION
PAD = 2  # pixels between the grid's images


def grid_image(generator: ExportedGenerator, caption: str, n: int, seed: int) -> Image.Image:
    """The picture the app shows: `n` images for the caption, 8 per row, 2 px apart. Tiled in
    uint8, so each cell holds exactly the pixels of the generator's own PIL images."""
    n = max(1, min(int(n), MAX_IMAGES))
    captions = [caption] if generator.conditional else None
    images = to_uint8(generator.generate(captions, n=n, seed=int(seed))[0])
    sheet = make_grid(images, nrow=min(8, n), padding=PAD, pad_value=128).permute(1, 2, 0).numpy()
    return Image.fromarray(sheet[..., 0] if images.shape[1] == 1 else sheet)


def cell(sheet: Image.Image, i: int, size: int) -> Image.Image:
    """Image i of a grid_image sheet (the browser test reads the shown grid back)."""
    row, col = divmod(i, 8)
    left, top = PAD + col * (size + PAD), PAD + row * (size + PAD)
    return sheet.crop((left, top, left + size, top + size))


def build_app(generator: ExportedGenerator):
    try:
        import gradio as gr  # optional dependency: only the demo needs it
    except ImportError:
        raise SystemExit(INSTALL) from None
    config = generator.config
    title = (f"{config['architecture']} on {config['trained_on']['name']} ({config['image_size']} px, "
             f"step {config['step']})")

    def generate(caption: str, n: float, seed: float) -> Image.Image:
        if generator.conditional and not str(caption or "").strip():
            raise gr.Error("type a caption first")
        return grid_image(generator, caption, int(n), int(seed))

    with gr.Blocks(title="t2i demo") as app:
        gr.Markdown(f"# {title}")
        with gr.Row():
            with gr.Column():
                caption = gr.Textbox(label="caption", lines=2, elem_id="caption", visible=generator.conditional,
                                     value=(generator.examples or [""])[0])
                n = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="number of images", elem_id="n")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                button = gr.Button("generate", variant="primary", elem_id="generate")
                if generator.examples:
                    gr.Examples(generator.examples[:10], inputs=[caption], label="captions from the test split")
            with gr.Column():
                output = gr.Image(label="images", type="pil", format="png", elem_id="images")
        with gr.Accordion("metrics (model card)", open=True):
            gr.Markdown(metrics_markdown(generator.metrics))
        button.click(generate, inputs=[caption, n, seed], outputs=[output], api_name="generate")
    return app


def launch(generator: ExportedGenerator, port: int = 7860, host: str = "127.0.0.1", share: bool = False) -> None:
    build_app(generator).launch(server_name=host, server_port=int(port), share=share)
