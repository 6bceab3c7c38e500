// BUTTER's repetitions trained together: R runs of one dense stack (make_butter_mlp's
// nets, every shape, the residual one included) trained in lockstep as one batched
// computation. Each layer's product is one batched GEMM over the repetitions
// (cpu::sgemm_batched: tasks over (repetition, region of C)); the element-wise work, the
// loss, the metrics and the optimizer run per repetition, spread over the thread pool.
//
// Each repetition keeps its own weights (in its own Module), seeds, data order, training
// set (label noise, split), optimizer, penalties and held-out sets, and its result is bit for
// bit what Trainer(*model, cfg).fit(train, evals) gives alone at `portable` or `repeatable`:
// the same kernels in the same order (the autograd tape's order of gradient accumulation
// included), and every output of a kernel is computed by one task in the canonical order,
// whatever the thread count (tests/nets/test_butter_batched.cpp checks every shape, with
// and without label noise and penalties, for each loss and optimizer).
//
// Why: BUTTER is millions of small runs; one alone keeps neither core of a small machine busy
// (its products are a few hundred rows by a few dozen columns), and each op's dispatch costs
// about as much as its arithmetic. bench/butter_batched.sh measures it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/train.h"

namespace detdl::nets {

// The layers of a make_butter_mlp net: x (N, n_in) -> dense layers of widths[d] units
// (ReLU after each hidden one; identity skips after the activation of hidden layers 1 ..
// depth-2 when residual) -> the output layer of widths.back() units (sigmoid when
// sigmoid_output). The model may be flattening (nets/zoo.cpp): images are read as rows.
struct DenseStack {
  std::int64_t n_in = 0;
  std::vector<std::int64_t> widths;
  bool residual = false;
  bool sigmoid_output = false;
};

// One repetition: its model (built for `stack`; the weights live there and are initialised
// by the trainer from cfg.init_seed), its config and its data.
struct BatchedRun {
  Module* model = nullptr;
  TrainConfig cfg;
  const Dataset* train = nullptr;
  EvalSets evals;
};

// Why `runs` cannot be trained together (empty when they can): a model that does not
// match `stack`, a device other than the CPU, a `fast` op family or emulation, augmentation,
// checkpoints or a step limit, or runs whose training sets, batch sizes or epochs differ
// (they step in lockstep).
std::string batched_refusal(const std::vector<BatchedRun>& runs, const DenseStack& stack);

// How a step walks the repetitions. Both give every repetition the same bits (those of its
// run alone); only speed differs.
//   by_layer:      each layer's product is one batched GEMM over all repetitions
//                  (cpu::sgemm_batched), the element-wise work a pass over them: the
//                  form a GPU wants (one launch per layer for all repetitions).
//   by_repetition: the thread pool takes whole steps of one repetition (its products and
//                  element-wise work back to back, in cache).
//   by_lanes:      groups of up to 16 repetitions (AVX-512F; 8 with AVX2; the fewest groups,
//                  of sizes differing by at most one), each repetition one SIMD
//                  lane (kernels/cpu/lanes.h): the products, bias gradients, activations and
//                  skips of a group are each one pass for all of its repetitions, with no
//                  lane wasted on narrow layers; the loss, metrics and update per repetition.
//                  The pool takes whole epochs of one group. Runs whose products or bias
//                  gradients are not at `portable` take by_repetition instead.
enum class BatchOrder { by_layer, by_repetition, by_lanes };

// Checkpoints of runs trained together, so that a batch that dies resumes where it was (a
// study's batch of 1,000-epoch runs takes hours; docs/studies.md). The runs step in
// lockstep, so every run's file is written at the same epoch's end, in Trainer's format
// (engine/train_checkpoint.h: weights, optimizer state, the run's identity, all checked on
// resume). A resumed run's bits are those of the run never stopped: an epoch's steps depend
// only on the weights, the optimizer's state and the epoch's number.
struct BatchedCheckpoints {
  std::vector<std::string> paths;  // run i's file
  bool resume = false;             // restore every run from its file (one epoch's end for all)
  // Written at the first epoch end at least this many seconds after the start or the last
  // write (0: at every epoch end); never after the last epoch (the caller stores the runs).
  double every_seconds = 600.0;
  // Stop once this many epochs are done, after writing their checkpoints; the results then
  // have stopped_early set (tests: a batch that dies). -1: run to the end.
  std::int64_t stop_after_epochs = -1;
  // Run i's extra metadata at a write (keys "caller.*"; the caller's record so far), given
  // its result so far (steps, step hashes, non-finite steps; not its epochs).
  std::function<std::map<std::string, std::string>(std::size_t, const TrainResult&)> extra;
};

// Trains the runs together on `threads` threads; result r is run r's, as Trainer::fit gives
// it (steps, epochs, step hashes, weight hash). on_epoch(r, stats) is called for every run
// at each epoch end, on the pool's threads: calls for different runs may run at once (the
// callback must allow that), each run's calls come in epoch order. Each epoch's times are the batched
// epoch's (all repetitions together). Throws std::invalid_argument with batched_refusal's
// reason. With `checkpoints`, a resumed run's result starts at its checkpoint (resumed,
// first_step: its epochs, step hashes and non-finite steps are this call's); a checkpoint
// that is missing, corrupt, of another run or not at an epoch's end shared by every run
// throws std::runtime_error naming the file.
std::vector<TrainResult> fit_batched(
    std::vector<BatchedRun>& runs, const DenseStack& stack, int threads,
    const std::function<void(std::size_t, const EpochStats&)>& on_epoch = {},
    BatchOrder order = BatchOrder::by_lanes, const BatchedCheckpoints* checkpoints = nullptr);

}  // namespace detdl::nets
