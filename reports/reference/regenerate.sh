#!/usr/bin/env bash
# Regenerate the committed reference runs:
#   bash reports/reference/regenerate.sh [--device cuda] [other `csbench compare` options]
# mnist/ and fashion-mnist/ are the `paper` preset (300 test images, 11 priors, phase and landscape
# experiments at scale 2). The committed ones ran their 99 tasks per dataset on one NVIDIA H200
# (`--device cuda --workers 8`, both datasets at once: 7 minutes of wall time) and the experiments on
# 2 CPU cores (each report's "ran on" rows); TV's, the Lasso's, the deep decoder's and SparseGen's tasks
# were rerun on 2 CPU cores after their solvers or grids changed (`--priors lasso-pixel,lasso-dct,lasso-wavelet
# --experiments none`, likewise `--priors deep-decoder` and `--priors sparsegen`, in mnist-paper-cpu and
# mnist-all-priors too, with the store's run config put back afterwards), and OMP's and IHT's with them
# (`--priors lasso-dct,lasso-wavelet,tv,omp,iht`) so that only the VAE's, DCGAN's and PGD-GAN's rows are
# of older code (`compare ... --dry-run` lists what a rerun recomputes) in mnist/; fashion-mnist/'s were
# rerun on 2 CPU cores on 2026-12-01 (`--preset paper --dataset fashion-mnist` into it recomputes just
# those: 4,912 task-seconds, all 99 means within noise of the H200 rows); the same CPU rows of mnist/ and
# mnist-paper-cpu/ are bit for bit equal. On 2 CPU cores alone a dataset takes 72 minutes:
# mnist-paper-cpu/ is the whole MNIST preset so run (4,322 s, 8,517 task-seconds), checked against mnist/.
# A run that is stopped resumes where it was when the same command is given again.
# An edit that changes how identities are taken (csbench/fingerprint.py, runner.NOT_SCORING) changes
# every fingerprint without changing a number: rather than rerunning, re-key each store's rows that
# are the current code's (compute every (prior, measurement, device) fingerprint with the code before
# and after the edit, and replace only the rows equal to the former), then check with `csbench report`
# that each reference names the same rows as not current as before. The same holds for a code edit
# that changes no number where the references ran (e.g. a branch only other settings reach), once a
# rerun of a slice shows it: the Lasso's stage tolerance cap was so re-keyed after mnist-default-cpu's
# 27 Lasso tasks, rerun, gave the same results, tuning and reconstruction rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
for dataset in mnist fashion-mnist; do
    python -m csbench compare --preset paper --dataset "$dataset" --out "reports/reference/$dataset" "$@"
done
python -m csbench compare --preset quick --dataset mnist --priors lasso-dct,lasso-wavelet,tv,vae,dcgan \
    --m 100 --noise 0.01,0.05,0.1,0.5,1 --n-images 32 --out reports/reference/mnist-noise "$@"
python -m csbench compare --preset quick --dataset mnist --m 100,400 --n-images 16 \
    --priors lasso-pixel,lasso-dct,lasso-wavelet,tv,omp,iht,vae,dcgan,hv,pgd-gan,sparsegen,deep-decoder \
    --out reports/reference/mnist-all-priors "$@"
python -m csbench compare --preset paper --dataset mnist --device cpu --out reports/reference/mnist-paper-cpu
# score-mnist/ and score-fashion-mnist/: the first 64 test images, five priors, 2 CPU cores (2026-12-01;
# score-mnist's vae, dcgan, tv and lasso-wavelet rows are mnist-default-cpu's, which
# `--reuse reports/reference/mnist-default-cpu` copies instead of computing):
for dataset in mnist fashion-mnist; do
    python -m csbench compare --dataset "$dataset" --priors score,vae,dcgan,tv,lasso-wavelet --n-images 64 \
        --experiments none --out "reports/reference/score-$dataset"
done
python -m csbench report reports/reference/mnist-paper-cpu --against reports/reference/mnist
