#!/usr/bin/env bash
# Every experiment behind the README's tables and figures, in order, with the README's settings.
# Each script reuses the run directories it already finished, so this can be stopped and rerun.
# About 4 hours on 2 CPU cores; much less with a GPU (--device auto picks it).
set -euo pipefail
cd "$(dirname "$0")/.."
python experiments/bench_training.py --repeats 7 --batch-sizes 128 256
python experiments/bench_marginal.py --num-samples 1000 --repeats 3
python experiments/priors_and_guides.py --epochs 10 --num-samples 1000 --quiet
python experiments/priors_and_guides.py --epochs 10 --num-samples 1000 --timing --quiet
python experiments/gmm_vs_vae.py --part toy
python experiments/gmm_vs_vae.py --part images --quiet
python experiments/latent_size.py --quiet
python experiments/manifold.py --quiet
python experiments/interpolation.py --quiet
python experiments/likelihoods.py --quiet
python experiments/sweep.py --quiet
python experiments/inference_gaps.py --threads 1 --images 200 --is-images 2000 --quiet
python experiments/publish_figures.py
