// Experiments that differ only in their seeds, trained together (nets/butter_batched.h):
// each is prepared and recorded exactly as run_experiment does it (nets/run_parts.h), so
// its bits and its record are the ones it would have alone, its timings aside.
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "engine/checkpoint.h"
#include "engine/train_checkpoint.h"
#include "kernels/cpu/parallel.h"
#include "nets/butter_batched.h"
#include "nets/experiment.h"
#include "nets/run_parts.h"

namespace detdl::nets {

namespace {

// The experiment's JSON form without what may differ between repetitions trained together.
nlohmann::json batch_form(const Experiment& e) {
  nlohmann::json j = to_json(e);
  j.erase("seeds");
  return j;
}

DenseStack stack_of(const PreparedRun& run) {
  const nlohmann::json& b = run.net.info.at("butter");
  DenseStack s;
  s.n_in = 1;
  for (auto d : run.bundle->sample_shape) s.n_in *= d;
  s.widths = b.at("widths").get<std::vector<std::int64_t>>();
  s.residual = b.at("shape").get<std::string>() == "rectangle_residual";
  s.sigmoid_output = !takes_class_labels(run.cfg.loss);
  return s;
}

}  // namespace

std::string batch_refusal(const std::vector<Experiment>& es) {
  if (es.empty()) return "no experiments";
  const Experiment& e = es[0];
  if (e.net.rfind("butter:", 0) != 0) return "net '" + e.net + "' is not a BUTTER net";
  if (e.device != Device::cpu) return "device " + std::string(device_name(e.device));
  if (e.emulation_on()) return "emulation";
  if (e.level != Level::portable && e.level != Level::repeatable)
    return "level " + std::string(level_name(e.level));
  if (!e.fast_ops.empty()) return "fast op families";
  if (e.augment != "none") return "augmentation";
  if (!e.edits.empty() || e.plateau.on || e.optimizer.clip_value > 0.0f)
    return "the doctor's repairs (edits, plateau, gradient clipping)";
  const nlohmann::json form = batch_form(e);
  for (std::size_t i = 1; i < es.size(); ++i)
    if (batch_form(es[i]) != form)
      return "experiment " + std::to_string(i) + " differs from the first in more than its seeds";
  return {};
}

std::vector<RunOutput> run_experiments_batched(const std::vector<Experiment>& es,
                                               const RunOptions& opt, BatchOrder order,
                                               const BatchedCheckpoints* checkpoints) {
  if (const std::string why = batch_refusal(es); !why.empty())
    throw std::invalid_argument("repetitions trained together: " + why);
  if (opt.resume || !opt.checkpoint_path.empty() || opt.stop_after_steps >= 0 || opt.on_step ||
      opt.on_step_model || opt.monitor.on() || opt.stop_after_epoch)
    throw std::invalid_argument(
        "repetitions trained together: no checkpoints, step limits, per-step callbacks, "
        "monitor or doctor");
  std::vector<PreparedRun> runs;
  runs.reserve(es.size());
  for (const Experiment& e : es) runs.push_back(prepare_run(e, opt));
  const DenseStack stack = stack_of(runs[0]);
  std::vector<BatchedRun> batch;
  for (PreparedRun& r : runs) {
    if (opt.on_start) opt.on_start(*r.bundle, r.net);
    batch.push_back(BatchedRun{r.net.model.get(), r.cfg, &r.train, r.evals()});
  }
  const std::string started = utc_now();
  for (PreparedRun& r : runs) r.started = started;
  const auto t0 = std::chrono::steady_clock::now();

  // Checkpoints: each run's file carries its record so far beside its training state.
  std::vector<SoFar> before(runs.size());
  BatchedCheckpoints ck;
  if (checkpoints) {
    ck = *checkpoints;
    if (ck.paths.size() != runs.size())
      throw std::invalid_argument(
          "repetitions trained together: " + std::to_string(ck.paths.size()) +
          " checkpoint paths for " + std::to_string(runs.size()) + " runs");
    if (ck.resume)
      for (std::size_t i = 0; i < runs.size(); ++i) before[i] = read_so_far(ck.paths[i], runs[i]);
    ck.extra = [&](std::size_t i, const TrainResult& now) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return std::map<std::string, std::string>{
          {kSoFarKey, so_far_json(runs[i], before[i], now, secs).dump()},
          {kEpochsDoneKey, std::to_string(runs[i].epochs.size())}};
    };
  }
  // Epochs are recorded on the pool's threads, each run into its own record; the caller's
  // own callback is serialised.
  std::mutex callback;
  RunOptions each = opt;
  if (opt.on_epoch)
    each.on_epoch = [&](const EpochStats& s) {
      std::lock_guard<std::mutex> lock(callback);
      opt.on_epoch(s);
    };
  std::vector<TrainResult> results = fit_batched(
      batch, stack, es[0].threads,
      [&](std::size_t i, const EpochStats& s) { record_epoch(runs[i], es[i], each, s); }, order,
      checkpoints ? &ck : nullptr);
  if (!results.empty() && results[0].stopped_early) return {};  // ck.stop_after_epochs
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<RunOutput> outs(runs.size());
  cpu::parallel_for(static_cast<std::int64_t>(runs.size()), [&](std::int64_t j) {
    const auto i = static_cast<std::size_t>(j);
    TrainResult& res = results[i];
    const std::int64_t resumed_at = res.first_step;
    if (res.resumed) merge_so_far(res, before[i]);
    outs[i] = finish_run(runs[i], es[i], opt, std::move(res), before[i].seconds + total);
    if (outs[i].result.resumed) outs[i].record["resumed_from_step"] = resumed_at;
    outs[i].record["batched"] = {{"repetitions", runs.size()}, {"index", i}};
  });
  return outs;
}

}  // namespace detdl::nets
