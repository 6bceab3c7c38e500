#include "engine/train_checkpoint.h"

#include <charconv>
#include <cstring>
#include <stdexcept>

#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/train.h"

namespace detdl {

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw std::runtime_error("checkpoint " + path + ": cannot resume: " + why);
}

std::string join_ints(const std::vector<std::int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

std::string join_doubles(const std::vector<double>& v) {
  std::string s;
  for (auto x : v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, x);
    s += (s.empty() ? "" : ",") + std::string(buf, r.ptr);
  }
  return s;
}

}  // namespace

std::string exact_float(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

Identity training_identity(const TrainConfig& cfg) {
  Identity id = cfg.identity;
  id["batch_size"] = std::to_string(cfg.batch_size);
  id["loss"] = std::string(loss_name(cfg.loss));
  const auto& o = cfg.optimizer;
  id["optimizer.kind"] = std::string(optimizer_name(o.kind));
  id["optimizer.momentum"] = exact_float(o.momentum);
  id["optimizer.nesterov"] = o.nesterov ? "true" : "false";
  id["optimizer.weight_decay"] = exact_float(o.weight_decay);
  id["optimizer.decoupled"] = o.decoupled ? "true" : "false";
  id["optimizer.beta1"] = exact_float(o.beta1);
  id["optimizer.beta2"] = exact_float(o.beta2);
  id["optimizer.eps"] = exact_float(o.eps);
  id["optimizer.alpha"] = exact_float(o.alpha);
  id["optimizer.keras_form"] = o.keras_form ? "true" : "false";
  // Only when set: checkpoints from before the field keep their identity.
  if (o.clip_value > 0.0f) id["optimizer.clip_value"] = exact_float(o.clip_value);
  const auto& s = cfg.schedule;
  id["schedule.kind"] = std::string(schedule_kind_name(s.kind));
  id["schedule.lr"] = exact_float(s.base_lr);
  id["schedule.step_size"] = std::to_string(s.step_size);
  id["schedule.milestones"] = join_ints(s.milestones);
  id["schedule.gamma"] = exact_float(s.gamma);
  id["schedule.factors"] = join_doubles(s.factors);
  id["schedule.t_max"] = std::to_string(s.t_max);
  id["schedule.eta_min"] = exact_float(s.eta_min);
  id["l1"] = exact_float(cfg.l1);
  id["l2"] = exact_float(cfg.l2);
  id["seeds.init"] = std::to_string(cfg.init_seed);
  id["seeds.order"] = std::to_string(cfg.order_seed);
  id["seeds.dropout"] = std::to_string(cfg.dropout_seed);
  if (cfg.init_nudge != 0) id["init_nudge"] = std::to_string(cfg.init_nudge);
  if (cfg.flush_subnormals) id["flush_subnormals"] = "true";
  id["shuffle"] = cfg.shuffle ? "true" : "false";
  std::string levels;
  for (int i = 0; i < kOpFamilyCount; ++i)
    levels += (i ? "," : "") + std::string(op_family_name(static_cast<OpFamily>(i))) + "=" +
              std::string(level_name(cfg.context.level_of[i]));
  // Emulated implementation families (and the impl seed) only where emulation is on, so the
  // identity of every other run is what it was before the level existed.
  std::string emulated;
  for (int i = 0; i < kImplFamilyCount; ++i)
    if (cfg.context.emulate[i])
      emulated +=
          (emulated.empty() ? "" : "+") + std::string(impl_family_name(static_cast<ImplFamily>(i)));
  if (!emulated.empty()) {
    levels += ",emulated=" + emulated;
    id["seeds.impl"] = std::to_string(cfg.context.impl_seed);
  }
  id["level"] = levels;  // per op family: the experiment's level and fast_ops together
  id["implementation"] = cfg.context.implementation == Implementation::own ? "own" : "vendor";
  return id;
}

void put_identity(std::map<std::string, std::string>& meta, const Identity& id) {
  for (const auto& [k, v] : id) meta["id." + k] = v;
}

void check_identity(const std::string& path, const std::map<std::string, std::string>& meta,
                    const Identity& want) {
  std::string diffs, missing;
  for (const auto& [k, v] : want) {
    auto it = meta.find("id." + k);
    if (it == meta.end()) {
      missing += (missing.empty() ? "" : ", ") + k;
    } else if (it->second != v) {
      diffs += "\n  " + k + ": checkpoint " + (it->second.empty() ? "(none)" : it->second) +
               ", this run " + (v.empty() ? "(none)" : v);
    }
  }
  // A field recorded only when set (init_nudge, clip_value, flush_subnormals, ...) that the
  // checkpoint has and this run has not is a difference too.
  for (const auto& [k, v] : meta)
    if (k.rfind("id.", 0) == 0 && !want.count(k.substr(3)))
      diffs += "\n  " + k.substr(3) + ": checkpoint " + v + ", this run (none)";
  if (!missing.empty())
    refuse(path, "it does not record " + missing +
                     " (written by an older detdl or another tool), so this run cannot be shown to "
                     "match it");
  if (!diffs.empty())
    refuse(
        path,
        "this run's settings differ from the run that wrote it, and resuming would give bits that "
        "match neither:" +
            diffs +
            "\nResume with the checkpoint's settings (only --epochs may be raised), or start a new "
            "checkpoint.");
}

std::int64_t metadata_int(const std::string& path, const TensorFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) refuse(path, "no metadata field " + key);
  const std::string& s = it->second;
  std::int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || s.empty())
    refuse(path, "metadata " + key + " is '" + s + "', not an integer");
  return v;
}

ResumePosition check_position(const std::string& path, const TensorFile& f, std::int64_t rows,
                              std::int64_t batch_size, std::int64_t steps_per_epoch,
                              std::int64_t total_steps) {
  ResumePosition p;
  p.step = metadata_int(path, f, "train.step");
  if (p.step < 0) refuse(path, "metadata train.step is " + std::to_string(p.step) + ", negative");
  if (p.step > total_steps)
    refuse(path, "metadata train.step is " + std::to_string(p.step) +
                     ", past this run's last step " + std::to_string(total_steps) + " (" +
                     std::to_string(steps_per_epoch) +
                     " steps per epoch); raise --epochs to train further");
  const std::int64_t optim_steps = metadata_int(path, f, "optim.steps");
  if (optim_steps != p.step)
    refuse(path, "metadata optim.steps is " + std::to_string(optim_steps) + " but train.step is " +
                     std::to_string(p.step) + " (the optimizer steps once per training step)");
  const std::int64_t batch = p.step % steps_per_epoch;
  const std::int64_t seen =
      std::min(rows, batch * batch_size);  // rows of this epoch already trained on
  p.epoch_correct = metadata_int(path, f, "train.epoch_correct");
  if (p.epoch_correct < 0 || p.epoch_correct > seen)
    refuse(path, "metadata train.epoch_correct is " + std::to_string(p.epoch_correct) +
                     ", outside [0, " + std::to_string(seen) +
                     "] (rows of the epoch seen at step " + std::to_string(p.step) + ")");
  const Tensor* bl = f.find("train.batch_losses");
  if (!bl) refuse(path, "no tensor train.batch_losses");
  if (bl->dtype() != DType::f32 || bl->ndim() != 1 || bl->dim(0) != batch)
    refuse(path, "tensor train.batch_losses has shape " + shape_str(bl->shape()) + ", expected (" +
                     std::to_string(batch) + ") at step " + std::to_string(p.step));
  p.batch_losses = bl->to_vector();
  return p;
}

void save_training_checkpoint(const std::string& path, const Module& model, const Optimizer& opt,
                              std::int64_t step, const EpochProgress& progress, const Identity& id,
                              const std::map<std::string, std::string>& extra) {
  TensorFile f;
  for (const auto& [key, value] : extra) {
    if (key.rfind("caller.", 0) != 0)
      throw std::invalid_argument("checkpoint " + path + ": extra metadata key '" + key +
                                  "' does not start with 'caller.'");
    f.metadata[key] = value;
  }
  for (const auto& p : model.parameters()) f.tensors.emplace_back("model." + p.name, p.tensor);
  for (const auto& b : model.buffers()) f.tensors.emplace_back("model." + b.name, b.tensor);
  for (auto& [name, t] : opt.state()) f.tensors.emplace_back("optim." + name, t);
  const auto& losses = progress.batch_losses;
  f.tensors.emplace_back("train.batch_losses",
                         Tensor::from_vector({static_cast<std::int64_t>(losses.size())}, losses));
  for (int m = 0; m < kMetricCount; ++m) {
    const auto& v = progress.metrics.values(static_cast<Metric>(m));
    f.tensors.emplace_back("train.metrics." + std::string(metric_name(static_cast<Metric>(m))),
                           Tensor::from_vector({static_cast<std::int64_t>(v.size())}, v));
  }
  f.metadata["train.metrics_outputs"] = std::to_string(progress.metrics.outputs());
  f.metadata["detdl.version"] = DETDL_VERSION;
  f.metadata["train.step"] = std::to_string(step);
  f.metadata["train.epoch_correct"] = std::to_string(progress.correct);
  f.metadata["optim.steps"] = std::to_string(opt.steps());
  f.metadata["optim.config"] = opt.config().describe();
  put_identity(f.metadata, id);
  f.metadata["model.hash"] = weight_hash(model);
  save_safetensors(path, f);
}

std::int64_t restore_training_checkpoint(const std::string& path, Module& model, Optimizer& opt,
                                         EpochProgress& progress, const Identity& id,
                                         const RunShape& shape) {
  // Every field is checked before anything is trusted: a checkpoint that was edited, comes
  // from another run, or disagrees with itself is refused with the field named, never
  // resumed into bits that match no run.
  const TensorFile f = load_safetensors(path);
  if (!f.metadata.count(kMetaCrcKey) || !f.metadata.count(kDataCrcKey))
    refuse(
        path,
        "it carries no CRC of its data and metadata (written by an older detdl or another tool)");
  check_identity(path, f.metadata, id);
  const ResumePosition pos = check_position(path, f, shape.rows, shape.batch_size,
                                            shape.steps_per_epoch, shape.total_steps);

  const auto params = model.parameters(), buffers = model.buffers();
  std::size_t model_tensors = 0;
  for (const auto& [name, t] : f.tensors) model_tensors += name.rfind("model.", 0) == 0;
  if (model_tensors != params.size() + buffers.size())
    throw std::runtime_error("checkpoint " + path + ": holds " + std::to_string(model_tensors) +
                             " model tensors, this net has " +
                             std::to_string(params.size() + buffers.size()) + " (another net?)");
  auto restore = [&](const NamedTensor& p) {
    const Tensor* t = f.find("model." + p.name);
    if (!t) throw std::runtime_error("checkpoint " + path + ": no tensor model." + p.name);
    if (t->shape() != p.tensor.shape() || t->dtype() != p.tensor.dtype())
      throw std::runtime_error("checkpoint " + path + ": model." + p.name + " has shape " +
                               shape_str(t->shape()) + ", the model needs " +
                               shape_str(p.tensor.shape()));
    std::memcpy(p.tensor.impl().storage->data, t->impl().storage->data,
                t->numel() * dtype_size(t->dtype()));
  };
  for (const auto& p : params) restore(p);
  for (const auto& b : buffers) restore(b);
  auto hash_it = f.metadata.find("model.hash");
  if (hash_it == f.metadata.end()) refuse(path, "no metadata model.hash");
  const std::string hash = weight_hash(model);
  if (hash_it->second != hash)
    refuse(path, "its weights hash to " + hash + ", but metadata model.hash says " +
                     hash_it->second + " (the weights were changed)");
  opt.load_state(f, "optim.", pos.step);

  progress = EpochProgress{};
  progress.correct = pos.epoch_correct;
  progress.batch_losses = pos.batch_losses;
  // Each metric holds one value per row seen this epoch, or none (written without metrics).
  const std::int64_t seen =
      std::min(shape.rows, (pos.step % shape.steps_per_epoch) * shape.batch_size);
  std::array<std::vector<float>, kMetricCount> values;
  for (int m = 0; m < kMetricCount; ++m) {
    const std::string name = "train.metrics." + std::string(metric_name(static_cast<Metric>(m)));
    const Tensor* t = f.find(name);
    if (!t) refuse(path, "no tensor " + name);
    values[m] = t->to_vector();
    const auto have = static_cast<std::int64_t>(values[m].size());
    if (have != seen && !(have == 0 && !shape.metrics))
      refuse(path, "tensor " + name + " holds " + std::to_string(have) + " values, expected " +
                       std::to_string(seen) + " (rows of the epoch seen at step " +
                       std::to_string(pos.step) + ")");
  }
  if (seen > 0 && shape.metrics) {
    try {
      progress.metrics.restore(metadata_int(path, f, "train.metrics_outputs"), values);
    } catch (const std::invalid_argument& e) {
      refuse(path, e.what());
    }
  }
  return pos.step;
}

}  // namespace detdl
