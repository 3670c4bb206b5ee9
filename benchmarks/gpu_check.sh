#!/usr/bin/env bash
# The GPU checks as one short run on a lent GPU machine (see BENCHMARKS.md, GPU), sized
# to leave room for a rerun within a 15-minute loan (about 9 minutes at most by default):
# every CUDA test file, then the streaming figures (GB/s and iteration time of a
# 2e7 x 16 .npy and Parquet folder streamed from host memory to the GPU, against the
# plain decode pass), then measured chunk sizes (memory_budget='auto' against a fixed
# 256MB). The GMM and HMM benchmarks against scikit-learn / hmmlearn on that machine's
# CPU run only when asked (GMM_S=240, HMM_S=180), as does streamed Parquet through
# bench_files (FILES_S=200). Each step has its own time limit so one slow step cannot
# eat the others; logs go to $OUT (or /tmp/bigem-gpu).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# The machine's python3 holds torch with CUDA; hmmlearn, if missing, can be carried as
# a wheel in .whl/ (installed to /tmp/site below). A test file whose imports the machine
# lacks is reported and the others still run.
set -u
OUT=${OUT:-/tmp/bigem-gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
    python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/machine.txt"
# BIGEM_JIT=0: the tests' CPU references take the tensor path (the same answers) rather
# than compiling numba's kernels first on a fresh machine
BIGEM_JIT=${BIGEM_JIT:-0} timeout "${TEST_S:-210}" python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
    tests/unit/test_cuda.py tests/unit/test_hmm_cuda.py tests/unit/test_cuda_streaming.py \
    tests/unit/test_host_reads.py tests/unit/test_hmm_host_reads.py tests/unit/test_chunk_sizing.py \
    tests/unit/test_missing_cuda.py tests/unit/test_families_cuda.py tests/unit/test_classifier_cuda.py \
    tests/unit/test_bayesian_mixture_cuda.py tests/unit/test_variational_hmm_cuda.py tests/multinomial/test_cuda.py \
    2>&1 | tee "$OUT/tests.txt"
timeout "${STREAM_S:-240}" python3 benchmarks/bench_stream.py --rows "${STREAM_ROWS:-2e7}" --device cuda 2>&1 \
    | tee "$OUT/bench_stream.txt"
timeout "${CHUNKS_S:-90}" python3 benchmarks/bench_gpu_chunks.py --rows "${CHUNKS_ROWS:-2e7}" --device cuda 2>&1 \
    | tee "$OUT/bench_gpu_chunks.txt"
if [ "${GMM_S:-0}" -gt 0 ]; then
    timeout "$GMM_S" python3 benchmarks/bench_gmm.py --device cuda ${GMM_ARGS:-} 2>&1 | tee "$OUT/bench_gmm.txt"
fi
if [ "${HMM_S:-0}" -gt 0 ]; then
    timeout "$HMM_S" python3 benchmarks/bench_hmm.py --device cuda --libs bigem,hmmlearn-scaling 2>&1 \
        | tee "$OUT/bench_hmm.txt"
fi
# Streamed Parquet (issue 3's overlap target), only when asked: FILES_S=200 FILES_ROWS=2e7
if [ "${FILES_S:-0}" -gt 0 ]; then
    timeout "$FILES_S" python3 benchmarks/bench_files.py --rows "${FILES_ROWS:-2e7}" --csv-rows 2e5 --device cuda 2>&1 \
        | tee "$OUT/bench_files.txt"
fi
