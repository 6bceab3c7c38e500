#include "engine/train.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cuda_backend.h"
#include "engine/hash.h"
#include "engine/resume.h"
#include "kernels/common/philox.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

namespace detdl {

std::string_view loss_name(LossKind k) {
  switch (k) {
    case LossKind::softmax_ce: return "softmax_ce";
    case LossKind::bce: return "bce";
    case LossKind::mse: return "mse";
  }
  return "?";
}

std::string weight_hash(const Module& m) {
  Fnv1a64 h;
  for (const auto& p : m.parameters()) h.update_tensor(p.name, p.tensor);
  for (const auto& b : m.buffers()) h.update_tensor(b.name, b.tensor);
  return h.hex();
}

std::vector<std::int64_t> philox_permutation(std::int64_t n, std::uint64_t seed, RandomStream stream,
                                             std::uint32_t sub) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const std::uint64_t u = philox_u32(seed, stream, sub, static_cast<std::uint64_t>(i));
    const auto j = static_cast<std::int64_t>((u * static_cast<std::uint64_t>(i + 1)) >> 32);
    std::swap(p[i], p[j]);
  }
  return p;
}

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  return philox_permutation(n, seed, RandomStream::data_order, static_cast<std::uint32_t>(epoch));
}

namespace {

// Rows `idx` of t (N, ...) gathered into a new (B, ...) tensor.
Tensor gather_rows(const Tensor& t, const std::int64_t* idx, std::int64_t count) {
  if (t.device() != Device::cpu)
    throw std::invalid_argument("data sets stay on the host: gather_rows of a tensor on " +
                                std::string(device_name(t.device())));
  Shape s = t.shape();
  s[0] = count;
  Tensor out = Tensor::empty(s, t.dtype());
  const std::size_t row = static_cast<std::size_t>(t.numel() / t.dim(0)) * dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.impl().storage->data);
  auto* dst = static_cast<char*>(out.impl().storage->data);
  for (std::int64_t i = 0; i < count; ++i) std::memcpy(dst + i * row, src + idx[i] * row, row);
  return out;
}

Tensor compute_loss(LossKind kind, const Tensor& out, const Tensor& y) {
  switch (kind) {
    case LossKind::softmax_ce: return ops::softmax_cross_entropy(out, y);
    case LossKind::bce: return ops::binary_cross_entropy(out, y, /*from_logits=*/false);
    case LossKind::mse: return ops::mean_squared_error(out, y);
  }
  throw std::logic_error("unknown loss");
}

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
  auto argmax = [k](const float* r) {
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < k; ++j)
      if (r[j] > r[best]) best = j;
    return best;
  };
  auto any_nan = [k](const float* r) {
    for (std::int64_t j = 0; j < k; ++j)
      if (std::isnan(r[j])) return true;
    return false;
  };
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* p = out.f32() + i * k;  // (k)
    if (any_nan(p)) continue;
    if (kind == LossKind::softmax_ce) {
      correct += argmax(p) == y.i32()[i];
      continue;
    }
    const float* t = y.f32() + i * k;  // (k)
    if (any_nan(t)) continue;
    correct += k == 1 ? ((p[0] > 0.5f) == (t[0] > 0.5f)) : (argmax(p) == argmax(t));
  }
  return correct;
}

}  // namespace

Dataset slice_rows(const Dataset& d, std::int64_t begin, std::int64_t end) {
  if (begin < 0 || end > d.size() || begin > end)
    throw std::out_of_range("slice_rows: [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a data set of " + std::to_string(d.size()));
  std::vector<std::int64_t> idx;
  for (std::int64_t i = begin; i < end; ++i) idx.push_back(i);
  return {gather_rows(d.x, idx.data(), end - begin), gather_rows(d.y, idx.data(), end - begin)};
}

Dataset take_rows(const Dataset& d, const std::vector<std::int64_t>& rows) {
  if (d.x.dim(0) != d.y.dim(0))
    throw std::invalid_argument("take_rows: x has " + std::to_string(d.x.dim(0)) + " rows, y " +
                                std::to_string(d.y.dim(0)));
  for (auto r : rows)
    if (r < 0 || r >= d.size())
      throw std::out_of_range("take_rows: row " + std::to_string(r) + " of a data set of " + std::to_string(d.size()));
  const auto count = static_cast<std::int64_t>(rows.size());
  return {gather_rows(d.x, rows.data(), count), gather_rows(d.y, rows.data(), count)};
}

namespace {

// The model's output as the metrics see it: probabilities for softmax-CE models (their
// output is logits), the output itself otherwise; and the dense targets.
void metric_inputs(LossKind kind, const Tensor& out, const Tensor& y, std::vector<float>& probs,
                   std::vector<float>& dense) {
  const std::int64_t n = out.dim(0), k = out.numel() / n;
  if (kind == LossKind::softmax_ce) {
    probs = ops::softmax(out).to_vector();
    dense = one_hot(y.i32(), n, k);
  } else {
    probs = out.to_vector();
    dense = y.to_vector();
  }
}

}  // namespace

EvalResult evaluate_full(Module& model, const Dataset& data, LossKind loss, bool metrics, std::int64_t eval_batch) {
  NoGradGuard ng;
  const Device dev = model.device();
  const bool was_training = model.training();
  model.train(false);
  const std::int64_t n = data.size();
  std::vector<float> weighted;
  std::int64_t correct = 0;
  MetricAccumulator acc;
  EvalResult r;
  std::vector<float> scores;  // softmax-CE: all rows' logits, for per-class accuracy
  std::int64_t k = 0;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[i] = i;
  for (std::int64_t s = 0; s < n; s += eval_batch) {
    const std::int64_t c = std::min(eval_batch, n - s);
    Tensor xb = gather_rows(data.x, idx.data() + s, c);
    Tensor yb = gather_rows(data.y, idx.data() + s, c);
    const Tensor out_dev = model.forward(xb.to(dev));
    weighted.push_back(compute_loss(loss, out_dev, yb.to(dev)).item() * static_cast<float>(c));
    const Tensor out = out_dev.to(Device::cpu);  // the metrics below run on the host
    correct += count_correct(loss, out, yb);
    k = out.numel() / c;
    if (metrics) {
      std::vector<float> p, t;
      metric_inputs(loss, out, yb, p, t);
      acc.add(p.data(), t.data(), c, k);
    }
    if (loss == LossKind::softmax_ce) {
      const float* o = out.f32();
      scores.insert(scores.end(), o, o + c * k);
    }
  }
  model.train(was_training);
  const float total = canonical_sum(weighted.data(), static_cast<std::int64_t>(weighted.size()));
  r.loss = n ? total / static_cast<float>(n) : 0.0f;
  r.accuracy = n ? static_cast<float>(correct) / static_cast<float>(n) : 0.0f;
  if (metrics && n) {
    const auto m = acc.result();
    std::copy(m.begin(), m.end(), r.metrics.begin());
  }
  if (loss == LossKind::softmax_ce && n) {
    r.per_class_accuracy = per_class_accuracy(scores.data(), data.y.i32(), n, k);
    r.predictions.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = scores.data() + i * k;
      std::int32_t best = 0;
      for (std::int64_t j = 1; j < k; ++j)
        if (row[j] > row[best]) best = static_cast<std::int32_t>(j);
      r.predictions[i] = best;
    }
  }
  return r;
}

std::pair<float, float> evaluate(Module& model, const Dataset& data, LossKind loss, std::int64_t eval_batch) {
  const EvalResult r = evaluate_full(model, data, loss, /*metrics=*/false, eval_batch);
  return {r.loss, r.accuracy};
}

Trainer::Trainer(Module& model, TrainConfig cfg)
    : model_(model), cfg_(std::move(cfg)), opt_(model.parameters(), cfg_.optimizer) {
  if (cfg_.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  if (cfg_.epochs < 0) throw std::invalid_argument("epochs must not be negative");
}

namespace {
struct EpochProgress {
  std::vector<float> batch_losses;
  std::int64_t correct = 0;
  MetricAccumulator metrics;
};
}  // namespace

TrainResult Trainer::fit(const Dataset& train, const Dataset* test, bool resume,
                         const std::function<void(const EpochStats&)>& on_epoch) {
  return fit(train, EvalSets{test, nullptr}, resume, on_epoch);
}

TrainResult Trainer::fit(const Dataset& train, const EvalSets& evals, bool resume,
                         const std::function<void(const EpochStats&)>& on_epoch) {
  const std::int64_t n = train.size();
  if (n == 0) throw std::invalid_argument("the training set is empty");
  if (train.y.dim(0) != n)
    throw std::invalid_argument("inputs and targets differ in length: " + std::to_string(n) + " vs " +
                                std::to_string(train.y.dim(0)));
  cpu::set_num_threads(cfg_.threads);
  RunContext ctx = cfg_.context;
  ctx.dropout_seed = cfg_.dropout_seed;
  ContextGuard guard(ctx);

  const std::int64_t spe = (n + cfg_.batch_size - 1) / cfg_.batch_size;
  const std::int64_t total = spe * cfg_.epochs;
  std::int64_t step = 0;
  EpochProgress prog;
  const Identity identity = training_identity(cfg_);

  auto save = [&](const std::string& path) {
    TensorFile f;
    for (const auto& p : model_.parameters()) f.tensors.emplace_back("model." + p.name, p.tensor);
    for (const auto& b : model_.buffers()) f.tensors.emplace_back("model." + b.name, b.tensor);
    for (auto& [name, t] : opt_.state()) f.tensors.emplace_back("optim." + name, t);
    f.tensors.emplace_back("train.batch_losses",
                           Tensor::from_vector({static_cast<std::int64_t>(prog.batch_losses.size())}, prog.batch_losses));
    for (int m = 0; m < kMetricCount; ++m) {
      const auto& v = prog.metrics.values(static_cast<Metric>(m));
      f.tensors.emplace_back("train.metrics." + std::string(metric_name(static_cast<Metric>(m))),
                             Tensor::from_vector({static_cast<std::int64_t>(v.size())}, v));
    }
    f.metadata["train.metrics_outputs"] = std::to_string(prog.metrics.outputs());
    f.metadata["detdl.version"] = DETDL_VERSION;
    f.metadata["train.step"] = std::to_string(step);
    f.metadata["train.epoch_correct"] = std::to_string(prog.correct);
    f.metadata["optim.steps"] = std::to_string(opt_.steps());
    f.metadata["optim.config"] = cfg_.optimizer.describe();
    put_identity(f.metadata, identity);
    f.metadata["model.hash"] = weight_hash(model_);
    save_safetensors(path, f);
  };

  // Initialisation and restoring run on the host (a caller may have moved the model).
  model_.to(Device::cpu);
  opt_.to(Device::cpu);
  TrainResult result;
  if (resume && !cfg_.checkpoint_path.empty() && std::filesystem::exists(cfg_.checkpoint_path)) {
    // Every field is checked before anything is trusted: a checkpoint that was edited, comes
    // from another run, or disagrees with itself is refused with the field named, never
    // resumed into bits that match no run (docs/reliability.md).
    const std::string& path = cfg_.checkpoint_path;
    const TensorFile f = load_safetensors(path);
    if (!f.metadata.count(kMetaCrcKey) || !f.metadata.count(kDataCrcKey))
      throw std::runtime_error("checkpoint " + path + ": cannot resume: it carries no CRC of its data and metadata "
                               "(written by an older detdl or another tool)");
    check_identity(path, f.metadata, identity);
    const ResumePosition pos = check_position(path, f, n, cfg_.batch_size, spe, total);
    std::size_t model_tensors = 0;
    for (const auto& [name, t] : f.tensors) model_tensors += name.rfind("model.", 0) == 0;
    auto restore = [&](const NamedTensor& p) {
      const Tensor* t = f.find("model." + p.name);
      if (!t) throw std::runtime_error("checkpoint " + path + ": no tensor model." + p.name);
      if (t->shape() != p.tensor.shape() || t->dtype() != p.tensor.dtype())
        throw std::runtime_error("checkpoint " + path + ": model." + p.name + " has shape " +
                                 shape_str(t->shape()) + ", the model needs " + shape_str(p.tensor.shape()));
      std::memcpy(p.tensor.impl().storage->data, t->impl().storage->data, t->numel() * dtype_size(t->dtype()));
    };
    for (const auto& p : model_.parameters()) restore(p);
    for (const auto& b : model_.buffers()) restore(b);
    if (model_tensors != model_.parameters().size() + model_.buffers().size())
      throw std::runtime_error("checkpoint " + path + ": holds " + std::to_string(model_tensors) +
                               " model tensors, this net has " +
                               std::to_string(model_.parameters().size() + model_.buffers().size()) + " (another net?)");
    auto hash_it = f.metadata.find("model.hash");
    if (hash_it == f.metadata.end()) throw std::runtime_error("checkpoint " + path + ": no metadata model.hash");
    if (hash_it->second != weight_hash(model_))
      throw std::runtime_error("checkpoint " + path + ": cannot resume: its weights hash to " + weight_hash(model_) +
                               ", but metadata model.hash says " + hash_it->second + " (the weights were changed)");
    opt_.load_state(f, "optim.", pos.step);
    step = pos.step;
    prog.correct = pos.epoch_correct;
    prog.batch_losses = pos.batch_losses;
    const std::int64_t seen = std::min(n, (step % spe) * cfg_.batch_size);
    std::array<std::vector<float>, kMetricCount> values;
    for (int m = 0; m < kMetricCount; ++m) {
      const std::string name = "train.metrics." + std::string(metric_name(static_cast<Metric>(m)));
      const Tensor* t = f.find(name);
      if (!t) throw std::runtime_error("checkpoint " + path + ": no tensor " + name);
      values[m] = t->to_vector();
      // Each metric holds one value per row seen this epoch, or none (written without metrics).
      const auto have = static_cast<std::int64_t>(values[m].size());
      if (have != seen && !(have == 0 && !cfg_.metrics))
        throw std::runtime_error("checkpoint " + path + ": cannot resume: tensor " + name + " holds " +
                                 std::to_string(have) + " values, expected " + std::to_string(seen) +
                                 " (rows of the epoch seen at step " + std::to_string(step) + ")");
    }
    if (seen > 0 && cfg_.metrics) {
      try {
        prog.metrics.restore(metadata_int(path, f, "train.metrics_outputs"), values);
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error("checkpoint " + path + ": " + e.what());
      }
    }
    result.resumed = true;
  } else {
    model_.initialize(cfg_.init_seed);
  }

  // The run's device: model and optimizer state move there now and back to the host when
  // fit returns or throws (so callers, checkpoints and hashes see host tensors after it).
  const Device dev = cfg_.device;
  if (dev != Device::cpu) gpu::require("training on device cuda");
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
  } device_scope(model_, opt_, dev);

  result.first_step = step;
  result.steps = step;  // a resumed run that is already complete reports where it is
  std::vector<std::int64_t> perm;
  std::int64_t perm_epoch = -1;
  auto t_epoch = std::chrono::steady_clock::now();
  const auto t_start = std::chrono::steady_clock::now();
  while (step < total) {
    // --stop-after N: stop once N steps are done (checked before each step, so 0 stops
    // before the first one and a resumed run past N stops at once).
    if (cfg_.stop_after_steps >= 0 && step >= cfg_.stop_after_steps) {
      if (!cfg_.checkpoint_path.empty()) save(cfg_.checkpoint_path);
      result.stopped_early = true;
      break;
    }
    const std::int64_t epoch = step / spe, b = step % spe;
    if (perm_epoch != epoch) {
      if (cfg_.shuffle) {
        perm = epoch_permutation(n, cfg_.order_seed, epoch);
      } else {
        perm.resize(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
      }
      perm_epoch = epoch;
    }
    const std::int64_t start = b * cfg_.batch_size, count = std::min(cfg_.batch_size, n - start);
    Tensor xb = gather_rows(train.x, perm.data() + start, count);
    Tensor yb = gather_rows(train.y, perm.data() + start, count);
    if (cfg_.augment) cfg_.augment(xb, perm.data() + start, epoch);  // on the host, before the copy
    context().step = static_cast<std::uint32_t>(step);
    context().dropout_layer = 0;
    model_.train(true);
    const Tensor out_dev = model_.forward(xb.to(dev));
    Tensor loss = compute_loss(cfg_.loss, out_dev, yb.to(dev));
    const float data_loss = loss.item();
    if (!std::isfinite(data_loss)) ++result.nonfinite_loss_steps;
    for (const auto& p : model_.parameters()) {
      // Default: penalties on weights, not biases or norm scales.
      if (cfg_.penalize ? !cfg_.penalize(p) : p.tensor.ndim() < 2) continue;
      if (cfg_.l1 > 0.0f) loss = ops::add(loss, ops::l1_penalty(p.tensor, cfg_.l1));
      if (cfg_.l2 > 0.0f) loss = ops::add(loss, ops::l2_penalty(p.tensor, cfg_.l2));
    }
    backward(loss);
    opt_.step(cfg_.schedule.lr(epoch));
    opt_.zero_grad();
    const Tensor out = out_dev.to(Device::cpu);  // accuracy and metrics on the host
    prog.batch_losses.push_back(data_loss);
    prog.correct += count_correct(cfg_.loss, out, yb);
    if (cfg_.metrics) {
      // Train metrics on the batch's outputs before the update: Keras's running mean.
      std::vector<float> p, t;
      metric_inputs(cfg_.loss, out, yb, p, t);
      prog.metrics.add(p.data(), t.data(), count, out.numel() / count);
    }
    ++step;
    result.steps = step;
    if (cfg_.step_hashes) result.step_hashes.push_back(weight_hash(model_));
    if (cfg_.on_step) {
      StepProgress sp;
      sp.step = step;
      sp.total_steps = total;
      sp.steps_per_epoch = spe;
      sp.first_step = result.first_step;
      sp.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      sp.rows_per_step = cfg_.batch_size;
      cfg_.on_step(sp);
    }

    if (step % spe == 0) {  // epoch end
      EpochStats st;
      st.epoch = epoch;
      st.train_loss = canonical_sum(prog.batch_losses.data(), static_cast<std::int64_t>(prog.batch_losses.size())) /
                      static_cast<float>(prog.batch_losses.size());
      st.train_accuracy = static_cast<float>(prog.correct) / static_cast<float>(n);
      if (cfg_.metrics && prog.metrics.samples() > 0) {
        const auto m = prog.metrics.result();
        std::copy(m.begin(), m.end(), st.train_metrics.begin());
      }
      st.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
      if (evals.test) {
        st.test = evaluate_full(model_, *evals.test, cfg_.loss, cfg_.metrics);
        st.has_test = true;
        st.test_loss = st.test.loss;
        st.test_accuracy = st.test.accuracy;
      }
      if (evals.validation) {
        st.validation = evaluate_full(model_, *evals.validation, cfg_.loss, cfg_.metrics);
        st.has_validation = true;
      }
      const auto now = std::chrono::steady_clock::now();
      st.seconds = std::chrono::duration<double>(now - t_epoch).count();
      t_epoch = now;
      st.weight_hash = weight_hash(model_);
      prog = EpochProgress{};
      result.epochs.push_back(st);
      if (on_epoch) on_epoch(st);
      if (!cfg_.checkpoint_path.empty()) save(cfg_.checkpoint_path);
    } else if (!cfg_.checkpoint_path.empty() && cfg_.checkpoint_every > 0 && step % cfg_.checkpoint_every == 0) {
      save(cfg_.checkpoint_path);
    }
  }
  result.weight_hash = weight_hash(model_);
  return result;
}

}  // namespace detdl
