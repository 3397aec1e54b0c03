"""Everything that scores a model or draws its result, one job per file: feature spaces
(features), the domain classifier (domain), text-image alignment (alignment), cached
reference features (reference), the text-image matching evaluator (matching), FID/KID/IS
and precision/recall (scores), colour accuracy (colour), the pictures (pictures), and one
runner per kind of task: generators (every GAN), inpainting, reconstruction and
classification (sentiment). Below the tasks, the callbacks and t2i.run: it imports none
of them. This file imports nothing, so importing one module does not load the others
(torch-fidelity among them)."""
