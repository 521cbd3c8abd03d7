#!/usr/bin/env bash
# A sweep on a Slurm cluster: a job array of 4 tasks, each running one shard of the grid on its own node's cores,
# then one job that merges the parts once every task has succeeded. From the repository's root:
#   jobid=$(sbatch --parsable scenarios/sweeps/slurm-array.sh)
#   sbatch --dependency=afterok:$jobid --wrap "servesim merge sweep-parts/part-*.csv --out sweep.csv"
# servesim reads its shard from SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN (so
# --array=1-4 works as well as 0-3); no --shard is needed. GRID and OUT override the grid and the parts' folder.
#SBATCH --job-name=servesim-sweep
#SBATCH --array=0-3
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --time=01:00:00
#SBATCH --output=servesim-sweep-%A_%a.log
set -euo pipefail

grid="${GRID:-scenarios/sweeps/quickstart-rates.toml}"
out="${OUT:-sweep-parts}"
mkdir -p "$out"
servesim sweep "$grid" --jobs "${SLURM_CPUS_PER_TASK:-1}" --out "$out/part-${SLURM_ARRAY_TASK_ID}.csv"
