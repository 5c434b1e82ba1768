#!/usr/bin/env bash
# Regenerate the committed reference runs: bash reports/reference/regenerate.sh [PRESET]
# PRESET defaults to `default` (64 test images, about 20 minutes per dataset on 2 CPU cores);
# `paper` (300 images, every prior) takes several hours on such a machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset="${1:-default}"
python -m csbench compare --preset "$preset" --dataset mnist --out reports/reference/mnist
python -m csbench compare --preset "$preset" --dataset fashion-mnist --out reports/reference/fashion-mnist
python -m csbench compare --preset quick --dataset mnist --priors lasso-dct,lasso-wavelet,tv,vae,dcgan \
    --m 100 --noise 0.01,0.05,0.1,0.5,1 --n-images 32 --out reports/reference/mnist-noise
python -m csbench compare --preset quick --dataset mnist --m 100,400 --n-images 16 \
    --priors lasso-pixel,lasso-dct,lasso-wavelet,tv,omp,iht,vae,dcgan,hv,pgd-gan,sparsegen,deep-decoder \
    --out reports/reference/mnist-all-priors
