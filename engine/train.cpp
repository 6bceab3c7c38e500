#include "engine/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cuda_backend.h"
#include "engine/hash.h"
#include "engine/train_checkpoint.h"
#include "kernels/common/philox.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/fpmode.h"
#include "kernels/cpu/parallel.h"

namespace detdl {

std::string weight_hash(const Module& m) {
  Fnv1a64 h;
  for (const auto& p : m.parameters()) h.update_tensor(p.name, p.tensor);
  for (const auto& b : m.buffers()) h.update_tensor(b.name, b.tensor);
  return h.hex();
}

Tensor compute_loss(LossKind kind, const Tensor& out, const Tensor& y) {
  switch (kind) {
    case LossKind::softmax_ce: return ops::softmax_cross_entropy(out, y);
    case LossKind::keras_ce:
      return ops::softmax_cross_entropy(out, y, CrossEntropyForm::keras_clipped);
    case LossKind::bce: return ops::binary_cross_entropy(out, y, /*from_logits=*/false);
    case LossKind::mse: return ops::mean_squared_error(out, y);
  }
  throw std::logic_error("unknown loss");
}

namespace {

// Number of correct rows in a batch, by the accuracy metric's rule (engine/metrics.cpp;
// Keras 2's "accuracy" as BUTTER records it), so that the accuracy a run prints is the
// metric's accuracy series:
//   one output:      binary accuracy at threshold 0.5, (output > 0.5) == (target > 0.5);
//                    for every loss, regression (mse) included;
//   several outputs: the output's first maximum against the target's first maximum (the
//                    label itself for softmax_ce, whose logits have the first maximum of
//                    their softmax: the function is monotone).
// A row with a NaN output or target counts as wrong (the metric's value for it is NaN).
std::int64_t count_correct(LossKind kind, const Tensor& out, const Tensor& y) {
  const std::int64_t n = out.dim(0);
  if (n == 0) return 0;
  const std::int64_t k = out.numel() / n;
  // Without branches on the values (the first largest wins): a branch per output
  // mispredicted about twice a row on shuffled batches, 3.5% of a BUTTER run's time.
  auto argmax = [k](const float* r) {
    std::int64_t best = 0;
    float top = r[0];
    for (std::int64_t j = 1; j < k; ++j) {
      const bool above = r[j] > top;
      best = above ? j : best;
      top = above ? r[j] : top;
    }
    return best;
  };
  auto any_nan = [k](const float* r) {
    bool nan = false;
    for (std::int64_t j = 0; j < k; ++j) nan |= std::isnan(r[j]);
    return nan;
  };
  std::int64_t correct = 0;
  const float* outs = out.f32();  // (n, k)
  const bool labels = takes_class_labels(kind);
  const std::int32_t* y_label = labels ? y.i32() : nullptr;  // (n)
  const float* y_dense = labels ? nullptr : y.f32();         // (n, k)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* p = outs + i * k;  // (k)
    if (any_nan(p)) continue;
    if (labels) {
      correct += argmax(p) == y_label[i];
      continue;
    }
    const float* t = y_dense + i * k;  // (k)
    if (any_nan(t)) continue;
    correct += k == 1 ? ((p[0] > 0.5f) == (t[0] > 0.5f)) : (argmax(p) == argmax(t));
  }
  return correct;
}

}  // namespace

namespace {

// The model's output as the metrics see it: probabilities for softmax-CE models (their
// output is logits), the output itself otherwise; and the dense targets.
void metric_inputs(LossKind kind, const Tensor& out, const Tensor& y, std::vector<float>& probs,
                   std::vector<float>& dense) {
  const std::int64_t n = out.dim(0), k = out.numel() / n;
  if (takes_class_labels(kind)) {
    probs = ops::softmax(out).to_vector();
    dense = one_hot(y.i32(), n, k);
  } else {
    probs = out.to_vector();
    dense = y.to_vector();
  }
}

// Adds a batch's outputs to the BUTTER series: out (n, k), y its targets; probs: softmax(out)
// for the class-label losses where the caller has it (the loss kernel's), else nullptr.
void add_metrics(MetricAccumulator& acc, LossKind kind, const Tensor& out, const Tensor& y,
                 const float* probs) {
  const std::int64_t n = out.dim(0), k = n ? out.numel() / n : 0;
  if (probs && takes_class_labels(kind) && n) {
    const std::vector<float> dense = one_hot(y.i32(), n, k);
    acc.add(probs, dense.data(), n, k);
    return;
  }
  std::vector<float> p, t;
  metric_inputs(kind, out, y, p, t);
  acc.add(p.data(), t.data(), n, k);
}

}  // namespace

void EvalScorer::add(const Tensor& out, const Tensor& yb, float batch_loss, const float* probs) {
  const std::int64_t c = out.dim(0);
  if (c == 0) return;
  weighted_.push_back(batch_loss * static_cast<float>(c));
  correct_ += count_correct(loss_, out, yb);
  k_ = out.numel() / c;
  if (metrics_) add_metrics(acc_, loss_, out, yb, probs);
  if (takes_class_labels(loss_)) {
    const float* o = out.f32();
    scores_.insert(scores_.end(), o, o + c * k_);
  }
}

void EvalScorer::add_scored(std::int64_t c, std::int64_t k, float batch_loss, std::int64_t correct,
                            const float* const* metric_values, const float* scores) {
  if (c == 0) return;
  weighted_.push_back(batch_loss * static_cast<float>(c));
  correct_ += correct;
  k_ = k;
  if (metrics_) acc_.append(metric_values, c, k);
  if (takes_class_labels(loss_)) scores_.insert(scores_.end(), scores, scores + c * k);
}

EvalResult EvalScorer::finish(const Dataset& data, float penalty) const {
  EvalResult r;
  const std::int64_t n = data.size();
  const float total = canonical_sum(weighted_.data(), static_cast<std::int64_t>(weighted_.size()));
  r.loss = n ? total / static_cast<float>(n) + penalty : 0.0f;
  r.accuracy = n ? static_cast<float>(correct_) / static_cast<float>(n) : 0.0f;
  if (metrics_ && n) {
    const auto m = acc_.result();
    std::copy(m.begin(), m.end(), r.metrics.begin());
  }
  if (takes_class_labels(loss_) && n) {
    r.per_class_accuracy = per_class_accuracy(scores_.data(), data.y.i32(), n, k_);
    r.predictions.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = scores_.data() + i * k_;
      std::int32_t best = 0;
      for (std::int64_t j = 1; j < k_; ++j)
        if (row[j] > row[best]) best = static_cast<std::int32_t>(j);
      r.predictions[i] = best;
    }
  }
  return r;
}

EvalResult evaluate_full(Module& model, const Dataset& data, LossKind loss, bool metrics,
                         std::int64_t eval_batch, float penalty) {
  NoGradGuard ng;
  const Device dev = model.device();
  const bool was_training = model.training();
  model.train(false);
  const std::int64_t n = data.size();
  EvalScorer scorer(loss, metrics);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[i] = i;
  for (std::int64_t s = 0; s < n; s += eval_batch) {
    const std::int64_t c = std::min(eval_batch, n - s);
    Tensor xb = gather_rows(data.x, idx.data() + s, c);
    Tensor yb = gather_rows(data.y, idx.data() + s, c);
    context().begin_step_places();  // each batch's layers draw as the training forward's do
    const Tensor out_dev = model.forward(xb.to(dev));
    const float batch_loss = compute_loss(loss, out_dev, yb.to(dev)).item();
    scorer.add(out_dev.to(Device::cpu), yb, batch_loss);  // the metrics run on the host
  }
  model.train(was_training);
  return scorer.finish(data, penalty);
}

std::pair<float, float> evaluate(Module& model, const Dataset& data, LossKind loss,
                                 std::int64_t eval_batch) {
  const EvalResult r = evaluate_full(model, data, loss, /*metrics=*/false, eval_batch);
  return {r.loss, r.accuracy};
}

Trainer::Trainer(Module& model, TrainConfig cfg)
    : model_(model), cfg_(std::move(cfg)), opt_(model.parameters(), cfg_.optimizer) {
  if (cfg_.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  if (cfg_.epochs < 0) throw std::invalid_argument("epochs must not be negative");
}

namespace {

// Moves the model and optimizer state to the run's device for the scope, and back to the
// host when it ends, returning or throwing (callers, checkpoints and hashes see host tensors).
struct DeviceScope {
  Module& model;
  Optimizer& opt;
  Device dev;
  DeviceScope(Module& m, Optimizer& o, Device d) : model(m), opt(o), dev(d) {
    model.to(dev);
    opt.to(dev);
  }
  ~DeviceScope() {
    if (dev == Device::cpu) return;
    try {
      model.to(Device::cpu);
      opt.to(Device::cpu);
    } catch (...) {  // a failing device cannot give the state back; the run has failed anyway
    }
  }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TrainResult Trainer::fit(const Dataset& train, const Dataset* test, bool resume,
                         const std::function<void(const EpochStats&)>& on_epoch) {
  return fit(train, EvalSets{test, nullptr}, resume, on_epoch);
}

std::int64_t Trainer::start(bool resume, const Identity& id, const RunShape& shape,
                            EpochProgress& prog) {
  // Initialisation and restoring run on the host (a caller may have moved the model).
  model_.to(Device::cpu);
  opt_.to(Device::cpu);
  if (resume && !cfg_.checkpoint_path.empty() && std::filesystem::exists(cfg_.checkpoint_path))
    return restore_training_checkpoint(cfg_.checkpoint_path, model_, opt_, prog, id, shape);
  initialize_for_run(model_, cfg_);
  return -1;
}

void initialize_for_run(Module& model, const TrainConfig& cfg) {
  model.initialize(cfg.init_seed);
  if (cfg.init_nudge != 0) {
    const auto [pi, el] = nudged_element(model, cfg.init_nudge);
    Tensor t = model.parameters()[pi].tensor;
    float* w = t.data_f32();
    w[el] = std::nextafter(w[el], std::numeric_limits<float>::infinity());
  }
}

std::vector<std::int64_t> epoch_order(std::int64_t n, const TrainConfig& cfg, std::int64_t epoch) {
  if (cfg.shuffle) return epoch_permutation(n, cfg.order_seed, epoch);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

bool penalized(const TrainConfig& cfg, const NamedTensor& p) {
  // Default: penalties on weights, not biases or norm scales.
  return cfg.penalize ? cfg.penalize(p) : p.tensor.ndim() >= 2;
}

float penalty_value(const Module& model, const TrainConfig& cfg) {
  if (!(cfg.l1 > 0.0f) && !(cfg.l2 > 0.0f)) return 0.0f;
  NoGradGuard ng;
  float total = 0.0f;  // the training step's order: parameters in order, l1 then l2
  for (const auto& p : model.parameters()) {
    if (!penalized(cfg, p)) continue;
    if (cfg.l1 > 0.0f) total = total + ops::l1_penalty(p.tensor, cfg.l1).item();
    if (cfg.l2 > 0.0f) total = total + ops::l2_penalty(p.tensor, cfg.l2).item();
  }
  return total;
}

std::pair<std::size_t, std::int64_t> nudged_element(const Module& model, std::uint64_t nudge) {
  const auto params = model.parameters();
  std::int64_t total = 0;
  for (const auto& p : params) total += p.tensor.numel();
  if (total == 0) throw std::invalid_argument("init_nudge: the model has no parameters");
  // SplitMix64 of the nudge value, reduced to [0, total): integer arithmetic only.
  std::uint64_t x = nudge + 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  auto k = static_cast<std::int64_t>(x % static_cast<std::uint64_t>(total));
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (k < params[i].tensor.numel()) return {i, k};
    k -= params[i].tensor.numel();
  }
  return {params.size() - 1, 0};  // unreachable: k < total
}

float Trainer::train_step(const Dataset& train, const std::int64_t* rows, std::int64_t count,
                          std::int64_t step, std::int64_t epoch, EpochProgress& prog) {
  const Device dev = cfg_.device;
  Tensor xb = gather_rows(train.x, rows, count);
  Tensor yb = gather_rows(train.y, rows, count);
  if (cfg_.augment) cfg_.augment(xb, rows, epoch);  // on the host, before the copy
  context().step = static_cast<std::uint32_t>(step);
  context().dropout_layer = 0;
  context().begin_step_places();
  model_.train(true);
  const Tensor out_dev = model_.forward(xb.to(dev));
  Tensor loss = compute_loss(cfg_.loss, out_dev, yb.to(dev));
  const float data_loss = loss.item();
  for (const auto& p : model_.parameters()) {
    if (!penalized(cfg_, p)) continue;
    if (cfg_.l1 > 0.0f) loss = ops::add(loss, ops::l1_penalty(p.tensor, cfg_.l1));
    if (cfg_.l2 > 0.0f) loss = ops::add(loss, ops::l2_penalty(p.tensor, cfg_.l2));
  }
  const float total_loss = loss.item();  // Keras's training loss: data + penalties
  backward(loss);
  if (cfg_.optimizer.clip_value > 0.0f) {  // Keras's clipvalue, before the update
    const float c = cfg_.optimizer.clip_value;
    for (const auto& p : model_.parameters()) {
      Tensor g = p.tensor.grad();
      if (!g.defined()) continue;
      float* v = g.f32();
      for (std::int64_t i = 0; i < g.numel(); ++i) v[i] = std::min(std::max(v[i], -c), c);
    }
  }
  opt_.step(plateau_.apply(cfg_.schedule.lr(epoch)));
  opt_.zero_grad();
  record_batch(cfg_.loss, cfg_.metrics, out_dev.to(Device::cpu), yb, total_loss, prog);
  return data_loss;
}

void record_batch(LossKind kind, bool metrics, const Tensor& out, const Tensor& y, float total_loss,
                  EpochProgress& prog, const float* probs) {
  prog.batch_losses.push_back(total_loss);
  prog.correct += count_correct(kind, out, y);
  // Train metrics on the batch's outputs before the update: Keras's running mean.
  if (metrics) add_metrics(prog.metrics, kind, out, y, probs);
}

EpochStats summarize_epoch(Module& model, const TrainConfig& cfg, std::int64_t epoch,
                           std::int64_t rows, const EpochProgress& prog, const EvalSets& evals,
                           float penalty, std::chrono::steady_clock::time_point began,
                           const DoneEval* test_done) {
  EpochStats st;
  st.epoch = epoch;
  // Keras's epoch loss (BaseLogger): each batch's loss weighted by its row count, over the
  // rows; only the epoch's last batch can be short.
  const auto batches = static_cast<std::int64_t>(prog.batch_losses.size());
  st.train_loss = canonical_sum_of(batches,
                                   [&](std::int64_t i) {
                                     const std::int64_t c =
                                         std::min(cfg.batch_size, rows - i * cfg.batch_size);
                                     return prog.batch_losses[i] * static_cast<float>(c);
                                   }) /
                  static_cast<float>(rows);
  st.train_accuracy = static_cast<float>(prog.correct) / static_cast<float>(rows);
  if (cfg.metrics && prog.metrics.samples() > 0) {
    const auto m = prog.metrics.result();
    std::copy(m.begin(), m.end(), st.train_metrics.begin());
  }
  // A test evaluation made before this call ran after the steps: not training time.
  st.train_seconds = seconds_since(began) - (test_done ? test_done->seconds : 0.0);
  if (evals.validation) {
    const auto t = std::chrono::steady_clock::now();
    st.validation =
        evaluate_full(model, *evals.validation, cfg.loss, cfg.metrics, kEvalBatch, penalty);
    st.has_validation = true;
    st.validation_seconds = seconds_since(t);
  }
  if (evals.test) {
    const auto t = std::chrono::steady_clock::now();
    st.test = test_done
                  ? test_done->result
                  : evaluate_full(model, *evals.test, cfg.loss, cfg.metrics, kEvalBatch, penalty);
    st.has_test = true;
    st.test_loss = st.test.loss;
    st.test_accuracy = st.test.accuracy;
    st.test_seconds = test_done ? test_done->seconds : seconds_since(t);
  }
  st.seconds = seconds_since(began);
  st.weight_hash = weight_hash(model);
  return st;
}

TrainResult Trainer::fit(const Dataset& train, const EvalSets& evals, bool resume,
                         const std::function<void(const EpochStats&)>& on_epoch) {
  const std::int64_t n = train.size();
  if (n == 0) throw std::invalid_argument("the training set is empty");
  if (train.y.dim(0) != n)
    throw std::invalid_argument("inputs and targets differ in length: " + std::to_string(n) +
                                " vs " + std::to_string(train.y.dim(0)));
  cpu::set_num_threads(cfg_.threads);
  if (cfg_.flush_subnormals && cfg_.device != Device::cpu)
    throw std::invalid_argument(
        "flush_subnormals is a CPU mode (TensorFlow's CPU threads); the CUDA kernels keep "
        "subnormals (built with --ftz=false)");
  const cpu::FlushSubnormalsScope flush(cfg_.flush_subnormals);
  RunContext ctx = cfg_.context;
  ctx.dropout_seed = cfg_.dropout_seed;
  ContextGuard guard(ctx);

  const std::int64_t spe = (n + cfg_.batch_size - 1) / cfg_.batch_size;
  const RunShape shape{n, cfg_.batch_size, spe, spe * cfg_.epochs, cfg_.metrics};
  const Identity identity = training_identity(cfg_);
  EpochProgress prog;
  TrainResult result;
  const std::int64_t restored = start(resume, identity, shape, prog);
  result.resumed = restored >= 0;
  std::int64_t step = std::max<std::int64_t>(restored, 0);
  result.first_step = result.steps =
      step;  // a resumed run that is already complete reports where it is
  auto last_save = std::chrono::steady_clock::now();
  auto save = [&] {
    if (cfg_.checkpoint_path.empty()) return;
    save_training_checkpoint(cfg_.checkpoint_path, model_, opt_, step, prog, identity,
                             cfg_.checkpoint_extra ? cfg_.checkpoint_extra(result)
                                                   : std::map<std::string, std::string>{});
    last_save = std::chrono::steady_clock::now();
  };

  if (cfg_.device != Device::cpu) gpu::require("training on device cuda");
  if (cfg_.optimizer.clip_value > 0.0f && cfg_.device != Device::cpu)
    throw std::invalid_argument("optimizer clip_value: gradient clipping runs on the CPU only");
  // The plateau's state is not in the checkpoint: a resumed run could not continue it.
  if (cfg_.plateau.on && !cfg_.checkpoint_path.empty())
    throw std::invalid_argument("plateau: reduce-on-plateau runs cannot be checkpointed");
  plateau_ = PlateauState{};
  DeviceScope device_scope(model_, opt_, cfg_.device);
  std::vector<std::int64_t> order;
  std::int64_t order_epoch = -1;
  std::vector<std::vector<float>> epoch_start;  // the monitor's (snapshot_parameters)
  const auto t_start = std::chrono::steady_clock::now();
  auto t_epoch = t_start;
  if (cfg_.on_step_model && step == 0) cfg_.on_step_model(0, model_);  // the initial weights
  while (step < shape.total_steps) {
    // --stop-after N: stop once N steps are done (checked before each step, so 0 stops
    // before the first one and a resumed run past N stops at once).
    if (cfg_.stop_after_steps >= 0 && step >= cfg_.stop_after_steps) {
      save();
      result.stopped_early = true;
      break;
    }
    const std::int64_t epoch = step / spe, first = (step % spe) * cfg_.batch_size;
    if (order_epoch != epoch) order = epoch_order(n, cfg_, order_epoch = epoch);
    // The update ratios' reference: the weights as this epoch starts (a resumed epoch has none).
    if (first == 0 && cfg_.monitor.probes(epoch, spe, cfg_.batch_size))
      epoch_start = snapshot_parameters(model_);
    const float loss = train_step(train, order.data() + first, std::min(cfg_.batch_size, n - first),
                                  step, epoch, prog);
    if (!std::isfinite(loss)) ++result.nonfinite_loss_steps;
    result.steps = ++step;
    if (cfg_.step_hashes) result.step_hashes.push_back(weight_hash(model_));
    if (cfg_.on_step_model) cfg_.on_step_model(step, model_);
    if (cfg_.on_step)
      cfg_.on_step(StepProgress{step, shape.total_steps, spe, result.first_step,
                                seconds_since(t_start), cfg_.batch_size});
    if (step % spe == 0) {  // epoch end
      result.epochs.push_back(summarize_epoch(model_, cfg_, epoch, n, prog, evals,
                                              penalty_value(model_, cfg_), t_epoch));
      prog = EpochProgress{};
      if (cfg_.plateau.on) {
        const EpochStats& st = result.epochs.back();
        const double held = st.has_validation ? st.validation.loss
                            : st.has_test     ? st.test_loss
                                              : st.train_loss;
        plateau_.update(cfg_.plateau, plateau_.apply(cfg_.schedule.lr(epoch)), held);
      }
      if (cfg_.monitor.probes(epoch, spe, cfg_.batch_size)) {
        result.epochs.back().monitor = std::make_shared<const MonitorStats>(
            probe_model(model_, cfg_, cfg_.monitor, train, epoch, epoch_start));
        epoch_start.clear();
      }
      if (on_epoch) on_epoch(result.epochs.back());
      const bool due =
          cfg_.checkpoint_seconds <= 0.0 || seconds_since(last_save) >= cfg_.checkpoint_seconds;
      if (due) save();
      if (cfg_.stop_after_epoch && cfg_.stop_after_epoch(result.epochs.back())) {
        if (!due) save();  // a stopped run has its checkpoint
        result.stopped_early = result.stopped_after_epoch = true;
        break;
      }
      // The record's and the checkpoint's writing belong to no epoch's time.
      t_epoch = std::chrono::steady_clock::now();
    } else if (cfg_.checkpoint_every > 0 && step % cfg_.checkpoint_every == 0) {
      save();
    }
  }
  result.weight_hash = weight_hash(model_);
  return result;
}

}  // namespace detdl
