#include "engine/resume.h"

#include <charconv>
#include <stdexcept>

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
  const auto& s = cfg.schedule;
  const std::string d = s.describe();  // "cosine(0.05 -> 0 over 5)": the kind is its first word
  id["schedule.kind"] = d.substr(0, d.find('('));
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
  id["shuffle"] = cfg.shuffle ? "true" : "false";
  std::string levels;
  for (int i = 0; i < kOpFamilyCount; ++i)
    levels += (i ? "," : "") + std::string(op_family_name(static_cast<OpFamily>(i))) + "=" +
              std::string(level_name(cfg.context.level_of[i]));
  id["level"] = levels;  // per op family: the experiment's level and fast_ops together
  id["implementation"] = cfg.context.implementation == Implementation::own ? "own" : "vendor";
  return id;
}

void put_identity(std::map<std::string, std::string>& meta, const Identity& id) {
  for (const auto& [k, v] : id) meta["id." + k] = v;
}

void check_identity(const std::string& path, const std::map<std::string, std::string>& meta, const Identity& want) {
  std::string diffs, missing;
  for (const auto& [k, v] : want) {
    auto it = meta.find("id." + k);
    if (it == meta.end()) {
      missing += (missing.empty() ? "" : ", ") + k;
    } else if (it->second != v) {
      diffs += "\n  " + k + ": checkpoint " + (it->second.empty() ? "(none)" : it->second) + ", this run " +
               (v.empty() ? "(none)" : v);
    }
  }
  if (!missing.empty())
    refuse(path, "it does not record " + missing +
                     " (written by an older detdl or another tool), so this run cannot be shown to match it");
  if (!diffs.empty())
    refuse(path, "this run's settings differ from the run that wrote it, and resuming would give bits that "
                 "match neither:" + diffs +
                 "\nResume with the checkpoint's settings (only --epochs may be raised), or start a new checkpoint.");
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
                              std::int64_t batch_size, std::int64_t steps_per_epoch, std::int64_t total_steps) {
  ResumePosition p;
  p.step = metadata_int(path, f, "train.step");
  if (p.step < 0) refuse(path, "metadata train.step is " + std::to_string(p.step) + ", negative");
  if (p.step > total_steps)
    refuse(path, "metadata train.step is " + std::to_string(p.step) + ", past this run's last step " +
                     std::to_string(total_steps) + " (" + std::to_string(steps_per_epoch) +
                     " steps per epoch); raise --epochs to train further");
  const std::int64_t optim_steps = metadata_int(path, f, "optim.steps");
  if (optim_steps != p.step)
    refuse(path, "metadata optim.steps is " + std::to_string(optim_steps) + " but train.step is " +
                     std::to_string(p.step) + " (the optimizer steps once per training step)");
  const std::int64_t batch = p.step % steps_per_epoch;
  const std::int64_t seen = std::min(rows, batch * batch_size);  // rows of this epoch already trained on
  p.epoch_correct = metadata_int(path, f, "train.epoch_correct");
  if (p.epoch_correct < 0 || p.epoch_correct > seen)
    refuse(path, "metadata train.epoch_correct is " + std::to_string(p.epoch_correct) + ", outside [0, " +
                     std::to_string(seen) + "] (rows of the epoch seen at step " + std::to_string(p.step) + ")");
  const Tensor* bl = f.find("train.batch_losses");
  if (!bl) refuse(path, "no tensor train.batch_losses");
  if (bl->dtype() != DType::f32 || bl->ndim() != 1 || bl->dim(0) != batch)
    refuse(path, "tensor train.batch_losses has shape " + shape_str(bl->shape()) + ", expected (" +
                     std::to_string(batch) + ") at step " + std::to_string(p.step));
  p.batch_losses = bl->to_vector();
  return p;
}

}  // namespace detdl
