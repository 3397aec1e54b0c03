#!/usr/bin/env bash
# The source report's circle/square study, end to end: sweeps, then one report per question.
#
#   scripts/shapes_study.sh [OUT]        (default OUT=outputs/shapes_study)
#
# Budgets (environment variables; the defaults take about 45 CPU minutes on one core):
#   GNN_EPOCHS=10  AE_EPOCHS=10  GAN_STEPS=1500  SEED=0
#   MNIST_ROOT=DIR   folder holding MNIST/raw/*-ubyte: adds the MNIST DCGAN pair (skipped if absent)
#   PY=.venv/bin/python   EXTRA="..." (overrides added to every run, e.g. trainer.accelerator=gpu)
# Reports: OUT/report/{gnn,autoencoder,gnn_from_ae,dcgan[,mnist]}/report.md (+ PNG figures).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-outputs/shapes_study}
PY=${PY:-.venv/bin/python}
GNN_EPOCHS=${GNN_EPOCHS:-10}
AE_EPOCHS=${AE_EPOCHS:-10}
GAN_STEPS=${GAN_STEPS:-1500}
SEED=${SEED:-0}
EXTRA=${EXTRA:-}
# Small convolutions run many times faster on one thread than on threads fighting for cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
COMMON="seed=$SEED trainer.enable_progress_bar=false paths.cache_dir=$OUT/.cache $EXTRA"

train() { echo "+ train.py $*"; $PY train.py "$@" $COMMON; }
report() { echo "+ report.py $*"; $PY report.py "$@"; }

# 1. Generative CNN (model=deconv): 2 vs 4 features x outline vs filled x three position schemes (12 runs).
train -m experiment=shapes_deconv data.num_features=2,4 data.fill=outline,filled \
  data.position=fixed,random,circle_fixed_square_quadrant trainer.max_epochs="$GNN_EPOCHS" \
  hydra.sweep.dir="$OUT/gnn"

# 2. Autoencoder, bottleneck 4 vs 5 vs 100 (each run saves features.pt and its checkpoint).
train -m experiment=shapes_autoencoder model.bottleneck=4,5,100 trainer.max_epochs="$AE_EPOCHS" \
  hydra.sweep.dir="$OUT/autoencoder" 'hydra.sweep.subdir=bottleneck${model.bottleneck}'
ae() { echo "$OUT/autoencoder/bottleneck$1/checkpoints/last.ckpt"; }

# 3. Generative CNN on the autoencoders' features, against the 5 true attributes on the same data.
train -m experiment=shapes_deconv_from_ae model.ae_ckpt="$(ae 4),$(ae 5),$(ae 100)" \
  trainer.max_epochs="$GNN_EPOCHS" hydra.sweep.dir="$OUT/gnn_from_ae"
train experiment=shapes_deconv data.num_features=5 data.fill=random trainer.max_epochs="$GNN_EPOCHS" \
  hydra.run.dir="$OUT/gnn_from_ae/true_attributes"

# 4. DCGAN fed the autoencoder's 100 features vs 100 uniform(-1, 1) numbers; FID in the
#    shapes domain-classifier feature space (the evaluation after fit writes metrics.json).
train experiment=shapes_dcgan trainer.max_steps="$GAN_STEPS" \
  hydra.run.dir="$OUT/dcgan/uniform_noise"
train experiment=shapes_dcgan_ae_features model.ae_ckpt="$(ae 100)" trainer.max_steps="$GAN_STEPS" \
  hydra.run.dir="$OUT/dcgan/ae_features"

# 5. The same pair on MNIST, when the MNIST files are there.
if [[ -n "${MNIST_ROOT:-}" && -f "$MNIST_ROOT/MNIST/raw/train-images-idx3-ubyte" ]]; then
  train experiment=mnist_autoencoder data.root="$MNIST_ROOT" hydra.run.dir="$OUT/mnist/autoencoder"
  train experiment=mnist_dcgan data.root="$MNIST_ROOT" evaluate_after_fit=true hydra.run.dir="$OUT/mnist/uniform_noise"
  train experiment=mnist_dcgan_ae_features data.root="$MNIST_ROOT" \
    model.ae_ckpt="$OUT/mnist/autoencoder/checkpoints/last.ckpt" hydra.run.dir="$OUT/mnist/ae_features"
else
  echo "MNIST pair skipped: set MNIST_ROOT=DIR (DIR/MNIST/raw/*-ubyte) to include it"
fi

# 6. Reports.
report "$OUT/gnn" --out "$OUT/report/gnn" --curves val/loss train/loss --samples \
  --by data.num_features data.fill data.position
report "$OUT/autoencoder" --out "$OUT/report/autoencoder" --curves val/loss train/loss --samples
report "$OUT/gnn_from_ae" --out "$OUT/report/gnn_from_ae" --curves val/loss train/loss --samples
report "$OUT/dcgan" --out "$OUT/report/dcgan" --curves 'train/*' --samples
if [[ -d "$OUT/mnist" ]]; then
  report "$OUT/mnist" --out "$OUT/report/mnist" --curves 'train/*loss' val/loss --samples
fi
echo "Study done: reports under $OUT/report/"
