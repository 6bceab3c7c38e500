// Runs a study's plan under MPI: `mpirun -np N detdl study run FILE --mpi`. Rank 0 owns the
// store: it plans, hands rows to the other ranks one at a time as they free up (runs differ
// in length by orders of magnitude, so no static split), and stores each result in its own
// transaction as it arrives. Ranks 1..N-1 train the rows they are handed, in process (no
// fork under MPI), and send back the run's record and final weights. So the store may live
// on rank 0's node alone, and a rank that dies loses only the row it was running: mpirun
// then ends the job, and the same command again runs only the rows the store lacks.
//
// With one rank (-np 1) rank 0 runs every row itself. Runs go alone (no batched
// repetitions) and without claims: one coordinator serves the store.
#pragma once
#include <string>

#include "variance/runner.h"

namespace detdl::variance {

// True when this build has MPI (CMake found libopenmpi-dev).
bool mpi_available();

// Runs the plan (opt: step_hashes, epoch_predictions, keep_weights_up_to, monitor_every,
// quiet, max_runs, the slice and shard options) under MPI. Every rank calls it; it
// initialises and finalises MPI. Rank 0 returns the summary; other ranks return an empty
// one. Throws std::runtime_error when the build has no MPI.
RunnerSummary run_study_mpi(const Study& study, const std::string& store_path,
                            const RunnerOptions& opt);

}  // namespace detdl::variance
