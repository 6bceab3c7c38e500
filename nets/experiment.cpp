#include "nets/experiment.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/cuda_backend.h"
#include "kernels/common/random.h"
#include "kernels/cpu/fpmode.h"
#include "nets/compat.h"
#include "nets/run_parts.h"
#include "nets/data/idx.h"
#include "nets/data/prepare.h"
#include "nets/zoo.h"

namespace detdl::nets {
using nlohmann::json;

RunContext Experiment::context() const {
  RunContext c;
  c.set_level(level);
  for (OpFamily f : fast_ops) c.level_of[static_cast<int>(f)] = Level::fast;
  for (ImplFamily f : emulated_ops) c.emulate[static_cast<int>(f)] = true;
  c.impl_seed = seeds.impl;
  c.implementation = implementation;
  return c;
}

namespace {

// Reads one JSON object field by field; remembers which were read so that an unknown
// (e.g. misspelt) field is an error rather than silently ignored.
class FieldReader {
 public:
  FieldReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw std::invalid_argument(where_ + ": expected an object");
  }
  std::string path(const std::string& key) const { return where_ + "." + key; }

  template <class T>
  bool get(const std::string& key, T& out) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return false;
    try {
      if constexpr (std::is_same_v<T, bool>) {
        if (!it->is_boolean()) throw std::invalid_argument("expected true or false");
      } else if constexpr (std::is_integral_v<T>) {
        if (!it->is_number_integer()) throw std::invalid_argument("expected an integer");
        // JSON keeps a positive integer unsigned: a seed of 2^63 or more (half of all seeds)
        // must not be read back as a negative long long, and no value may wrap into T.
        const bool positive = it->is_number_unsigned();
        if (std::is_unsigned_v<T> && !positive && it->get<long long>() < 0)
          throw std::invalid_argument("expected a non-negative integer");
        if (positive ? it->get<unsigned long long>() >
                           static_cast<unsigned long long>(std::numeric_limits<T>::max())
                     : it->get<long long>() < static_cast<long long>(std::numeric_limits<T>::min()))
          throw std::invalid_argument("out of range for this field");
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!it->is_number()) throw std::invalid_argument("expected a number");
      } else if constexpr (std::is_same_v<T, std::string>) {
        if (!it->is_string()) throw std::invalid_argument("expected a string");
      } else if constexpr (requires { requires std::is_integral_v<typename T::value_type>; }) {
        // A list of integers (milestones): json's get would convert a float element,
        // 1e36 included, with a cast that is undefined out of range (fuzz_experiment_json).
        if (!it->is_array()) throw std::invalid_argument("expected a list of integers");
        for (const json& v : *it)
          if (!v.is_number_integer()) throw std::invalid_argument("expected a list of integers");
      }
      out = it->get<T>();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(path(key) + ": " + e.what() + ", got " + it->dump());
    } catch (const json::exception& e) {
      throw std::invalid_argument(path(key) + ": " + e.what());
    }
    return true;
  }
  const json* child(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) throw std::invalid_argument(path(it.key()) + ": unknown field");
  }
  [[noreturn]] void bad(const std::string& key, const std::string& why) const {
    throw std::invalid_argument(path(key) + ": " + why);
  }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

constexpr double kHuge = 3.4028234663852886e38;  // FLT_MAX: every finite float

constexpr const char* kFlushCpuOnly =
    "a CPU mode (TensorFlow's CPU threads flush subnormals); detdl's CUDA kernels keep them "
    "(built with --ftz=false), so a CUDA run would not be the arithmetic asked for";

// v must be finite and in [lo, hi]; `expected` says so in words.
void in_range(const FieldReader& r, const std::string& key, double v, double lo, double hi,
              const std::string& expected) {
  if (!(std::isfinite(v) && v >= lo && v <= hi))
    r.bad(key, "expected " + expected + ", got " + num(v));
}

void check_optimizer(const OptimizerConfig& o, const FieldReader& r) {
  in_range(r, "momentum", o.momentum, 0.0, 1.0, "a number in [0, 1]");
  in_range(r, "weight_decay", o.weight_decay, 0.0, kHuge, "a finite number >= 0");
  in_range(r, "beta1", o.beta1, 0.0, 1.0, "a number in [0, 1]");
  in_range(r, "beta2", o.beta2, 0.0, 1.0, "a number in [0, 1]");
  in_range(r, "alpha", o.alpha, 0.0, 1.0, "a number in [0, 1]");
  in_range(r, "eps", o.eps, 0.0, kHuge, "a finite positive number");
  if (!(o.eps > 0.0f)) r.bad("eps", "expected a finite positive number, got " + num(o.eps));
}

void check_schedule(const Schedule& s, const FieldReader& r) {
  in_range(r, "lr", s.base_lr, 0.0, kHuge, "a finite positive number");
  if (!(s.base_lr > 0.0f)) r.bad("lr", "expected a finite positive number, got " + num(s.base_lr));
  in_range(r, "gamma", s.gamma, 0.0, kHuge, "a finite positive number");
  if (!(s.gamma > 0.0f)) r.bad("gamma", "expected a finite positive number, got " + num(s.gamma));
  if (s.step_size < 1)
    r.bad("step_size", "expected at least 1, got " + std::to_string(s.step_size));
  for (std::size_t i = 0; i < s.milestones.size(); ++i) {
    if (s.milestones[i] < 0 || s.milestones[i] > kMaxEpochs)
      r.bad("milestones", "expected epochs in [0, " + std::to_string(kMaxEpochs) + "], got " +
                              std::to_string(s.milestones[i]));
    if (i && s.milestones[i] <= s.milestones[i - 1])
      r.bad("milestones", "expected increasing epochs");
  }
  for (double f : s.factors) in_range(r, "factors", f, 0.0, kHuge, "finite numbers >= 0");
  if (s.t_max < 1) r.bad("t_max", "expected at least 1, got " + std::to_string(s.t_max));
  in_range(r, "eta_min", s.eta_min, 0.0, kHuge, "a finite number >= 0");
}

}  // namespace

void reject_nulls(const json& j, const std::string& where) {
  if (j.is_null())
    throw std::invalid_argument(where +
                                ": null is not a value (leave the field out for its default)");
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) reject_nulls(it.value(), where + "." + it.key());
  if (j.is_array())
    for (std::size_t i = 0; i < j.size(); ++i)
      reject_nulls(j[i], where + "[" + std::to_string(i) + "]");
}

json to_json(const Experiment& e) {
  json fast = json::array();
  for (OpFamily f : e.fast_ops) fast.push_back(std::string(op_family_name(f)));
  const auto& o = e.optimizer;
  const auto& s = e.schedule;
  json j{
      {"net", e.net},
      {"data", e.data},
      {"data_dir", e.data_dir},
      {"preprocess", e.preprocess},
      {"study_split", e.study_split},
      {"augment", e.augment},
      {"label_noise", e.label_noise},
      {"epochs", e.epochs},
      {"batch_size", e.batch_size},
      {"loss", e.loss},
      {"optimizer",
       {{"kind", std::string(optimizer_name(o.kind))},
        {"momentum", o.momentum},
        {"nesterov", o.nesterov},
        {"weight_decay", o.weight_decay},
        {"decoupled", o.decoupled},
        {"beta1", o.beta1},
        {"beta2", o.beta2},
        {"eps", o.eps},
        {"alpha", o.alpha},
        {"keras_form", o.keras_form}}},
      {"schedule",
       {{"kind", std::string(schedule_kind_name(s.kind))},
        {"lr", s.base_lr},
        {"step_size", s.step_size},
        {"milestones", s.milestones},
        {"gamma", s.gamma},
        {"factors", s.factors},
        {"t_max", s.t_max},
        {"eta_min", s.eta_min}}},
      {"l1", e.l1},
      {"l2", e.l2},
      {"seeds",
       {{"init", e.seeds.init},
        {"order", e.seeds.order},
        {"augment", e.seeds.augment},
        {"dropout", e.seeds.dropout},
        {"label_noise", e.seeds.label_noise},
        {"split", e.seeds.split}}},
      {"level", std::string(level_name(e.level))},
      {"fast_ops", fast},
      {"threads", e.threads},
      {"metrics", e.metrics},
  };
  if (e.device != Device::cpu) j["device"] = std::string(device_name(e.device));
  if (e.implementation != Implementation::own) j["implementation"] = "vendor";
  if (e.init_nudge != 0) j["init_nudge"] = e.init_nudge;
  if (e.flush_subnormals) j["flush_subnormals"] = true;
  if (e.validation_rows != 0) j["validation_rows"] = e.validation_rows;
  if (!e.edits.empty()) j["edits"] = to_json(e.edits);
  if (e.plateau.on)
    j["plateau"] = {{"factor", e.plateau.factor},
                    {"patience", e.plateau.patience},
                    {"min_lr", e.plateau.min_lr},
                    {"min_delta", e.plateau.min_delta}};
  if (o.clip_value > 0.0f) j["optimizer"]["clip_value"] = o.clip_value;
  if (e.emulation_on()) {
    j["seeds"]["impl"] = e.seeds.impl;
    json emu = json::array();
    for (ImplFamily f : e.emulated_ops) emu.push_back(std::string(impl_family_name(f)));
    j["emulated_ops"] = emu;
  }
  return j;
}

std::pair<std::string, std::string> device_emulation_refusal(const Experiment& e) {
  // Every family runs on detdl's own CUDA kernels with the CPU's draws (docs/gpu.md); the
  // vendor libraries take no drawn choice.
  if (!e.emulation_on() || e.device == Device::cpu) return {};
  if (e.implementation == Implementation::vendor)
    return {"implementation",
            "emulation runs on detdl's own CUDA kernels; cuDNN and cuBLAS (implementation "
            "vendor) take no drawn choice"};
  return {};
}

Experiment experiment_from_json(const json& j, const std::string& where) {
  Experiment e;
  reject_nulls(j, where);
  FieldReader r(j, where);
  std::string comment;  // "_comment": a note for the reader of a config or preset file
  r.get("_comment", comment);
  r.get("net", e.net);
  r.get("data", e.data);
  r.get("data_dir", e.data_dir);
  r.get("preprocess", e.preprocess);
  if (e.preprocess != "none" && e.preprocess != "pixel-mean" && e.preprocess != "channel-std")
    r.bad("preprocess", "expected none, pixel-mean or channel-std, got '" + e.preprocess + "'");
  r.get("study_split", e.study_split);
  r.get("augment", e.augment);
  r.get("label_noise", e.label_noise);
  r.get("init_nudge", e.init_nudge);
  r.get("validation_rows", e.validation_rows);
  if (const json* ed = r.child("edits")) e.edits = edits_from_json(*ed, r.path("edits"));
  if (const json* pl = r.child("plateau")) {
    FieldReader rp(*pl, r.path("plateau"));
    e.plateau.on = true;
    rp.get("factor", e.plateau.factor);
    rp.get("patience", e.plateau.patience);
    rp.get("min_lr", e.plateau.min_lr);
    rp.get("min_delta", e.plateau.min_delta);
    rp.finish();
    in_range(rp, "factor", e.plateau.factor, 1e-6, 0.999999, "a number in (0, 1)");
    in_range(rp, "min_lr", e.plateau.min_lr, 0.0, kHuge, "a finite number >= 0");
    in_range(rp, "min_delta", e.plateau.min_delta, 0.0, kHuge, "a finite number >= 0");
    if (e.plateau.patience < 1 || e.plateau.patience > kMaxEpochs)
      rp.bad("patience", "expected 1 to " + std::to_string(kMaxEpochs) + " epochs");
  }
  if (e.validation_rows < 0)
    r.bad("validation_rows", "expected 0 (every row) or a positive row count, got " +
                                 std::to_string(e.validation_rows));
  if (!(e.label_noise >= 0.0 && e.label_noise <= 1.0))
    r.bad("label_noise", "expected a fraction in [0, 1], got " + num(e.label_noise));
  r.get("epochs", e.epochs);
  if (e.epochs < 0 || e.epochs > kMaxEpochs)
    r.bad("epochs",
          "expected 0 to " + std::to_string(kMaxEpochs) + ", got " + std::to_string(e.epochs));
  r.get("batch_size", e.batch_size);
  if (e.batch_size < 1 || e.batch_size > kMaxBatchSize)
    r.bad("batch_size", "expected 1 to " + std::to_string(kMaxBatchSize) + ", got " +
                            std::to_string(e.batch_size));
  r.get("loss", e.loss);
  if (e.loss != "auto" && e.loss != "softmax_ce" && e.loss != "keras_ce" && e.loss != "bce" &&
      e.loss != "mse")
    r.bad("loss", "expected auto, softmax_ce, keras_ce, bce or mse, got '" + e.loss + "'");
  if (const json* o = r.child("optimizer")) {
    FieldReader ro(*o, r.path("optimizer"));
    std::string kind = std::string(optimizer_name(e.optimizer.kind));
    ro.get("kind", kind);
    const auto k = parse_optimizer(kind);
    if (!k) ro.bad("kind", "expected sgd, adam or rmsprop, got '" + kind + "'");
    e.optimizer.kind = *k;
    ro.get("momentum", e.optimizer.momentum);
    ro.get("nesterov", e.optimizer.nesterov);
    ro.get("weight_decay", e.optimizer.weight_decay);
    ro.get("decoupled", e.optimizer.decoupled);
    ro.get("beta1", e.optimizer.beta1);
    ro.get("beta2", e.optimizer.beta2);
    ro.get("eps", e.optimizer.eps);
    ro.get("alpha", e.optimizer.alpha);
    ro.get("keras_form", e.optimizer.keras_form);
    ro.get("clip_value", e.optimizer.clip_value);
    in_range(ro, "clip_value", e.optimizer.clip_value, 0.0, kHuge, "a finite number >= 0");
    ro.finish();
    check_optimizer(e.optimizer, ro);
  }
  if (const json* s = r.child("schedule")) {
    FieldReader rs(*s, r.path("schedule"));
    std::string kind = "constant";
    rs.get("kind", kind);
    bool found = false;
    for (auto k : {Schedule::Kind::constant, Schedule::Kind::step, Schedule::Kind::multistep,
                   Schedule::Kind::piecewise, Schedule::Kind::cosine})
      if (schedule_kind_name(k) == kind) e.schedule.kind = k, found = true;
    if (!found)
      rs.bad("kind", "expected constant, step, multistep, piecewise or cosine, got '" + kind + "'");
    rs.get("lr", e.schedule.base_lr);
    rs.get("step_size", e.schedule.step_size);
    rs.get("milestones", e.schedule.milestones);
    rs.get("gamma", e.schedule.gamma);
    rs.get("factors", e.schedule.factors);
    rs.get("t_max", e.schedule.t_max);
    rs.get("eta_min", e.schedule.eta_min);
    if (e.schedule.kind == Schedule::Kind::piecewise &&
        e.schedule.factors.size() != e.schedule.milestones.size())
      rs.bad("factors", "piecewise needs one factor per milestone");
    rs.finish();
    check_schedule(e.schedule, rs);
  }
  r.get("l1", e.l1);
  in_range(r, "l1", e.l1, 0.0, kHuge, "a finite number >= 0");
  r.get("l2", e.l2);
  in_range(r, "l2", e.l2, 0.0, kHuge, "a finite number >= 0");
  if (const json* s = r.child("seeds")) {
    FieldReader rs(*s, r.path("seeds"));
    rs.get("init", e.seeds.init);
    rs.get("order", e.seeds.order);
    rs.get("augment", e.seeds.augment);
    rs.get("dropout", e.seeds.dropout);
    rs.get("label_noise", e.seeds.label_noise);
    rs.get("split", e.seeds.split);
    rs.get("impl", e.seeds.impl);
    rs.finish();
  }
  std::string level = std::string(level_name(e.level));
  r.get("level", level);
  const auto l = parse_level(level);
  if (!l) r.bad("level", "expected portable, repeatable, fast or emulated, got '" + level + "'");
  e.level = *l;
  std::vector<std::string> fast;
  r.get("fast_ops", fast);
  for (const auto& f : fast) {
    const auto fam = parse_op_family(f);
    if (!fam) r.bad("fast_ops", "unknown op family '" + f + "' (" + fast_op_family_names() + ")");
    if (!has_fast_path(*fam))
      r.bad("fast_ops", "'" + f +
                            "' has no fast path: its ops are element-wise or in a fixed order, so "
                            "fast would change no bit (" +
                            fast_op_family_names() +
                            " have one; --emulated-op draws other "
                            "implementations)");
    e.fast_ops.push_back(*fam);
  }
  std::vector<std::string> emulated;
  r.get("emulated_ops", emulated);
  for (const auto& f : emulated) {
    const auto fam = parse_impl_family(f);
    if (!fam)
      r.bad("emulated_ops",
            "unknown implementation family '" + f + "' (" + impl_family_names() + ")");
    if (std::find(e.emulated_ops.begin(), e.emulated_ops.end(), *fam) == e.emulated_ops.end())
      e.emulated_ops.push_back(*fam);
  }
  r.get("threads", e.threads);
  if (e.threads < 1 || e.threads > kMaxThreads)
    r.bad("threads",
          "expected 1 to " + std::to_string(kMaxThreads) + ", got " + std::to_string(e.threads));
  r.get("metrics", e.metrics);
  r.get("flush_subnormals", e.flush_subnormals);
  if (e.flush_subnormals && !cpu::can_flush_subnormals())
    r.bad("flush_subnormals", "this build's CPU has no FTZ/DAZ control (x86-64's MXCSR only)");
  std::string device = std::string(device_name(e.device));
  r.get("device", device);
  if (device == "cpu")
    e.device = Device::cpu;
  else if (device == "cuda")
    e.device = Device::cuda;
  else
    r.bad("device", "expected cpu or cuda, got '" + device + "'");
  std::string implementation = e.implementation == Implementation::own ? "own" : "vendor";
  r.get("implementation", implementation);
  if (implementation == "own")
    e.implementation = Implementation::own;
  else if (implementation == "vendor")
    e.implementation = Implementation::vendor;
  else
    r.bad("implementation", "expected own or vendor, got '" + implementation + "'");
  // The CUDA backend emulates the per-element families only (docs/determinism.md); a CUDA
  // run of any other family would silently run canonical kernels instead, and cuDNN's
  // kernels (implementation vendor) take no drawn choice at all.
  if (const auto [field, why] = device_emulation_refusal(e); !why.empty()) r.bad(field, why);
  if (e.flush_subnormals && e.device != Device::cpu) r.bad("flush_subnormals", kFlushCpuOnly);
  r.finish();
  return e;
}

namespace {

// presets/NAME.json, compiled in (CMakeLists.txt writes generated/presets.inc).
struct PresetText {
  const char* name;
  const char* json;
};
constexpr PresetText kPresets[] = {
#include "presets.inc"
};

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  return names;
}

Experiment preset(const std::string& name) {
  for (const auto& p : kPresets) {
    if (name != p.name) continue;
    // A preset is a config file: its fields over the defaults, read by the one reader.
    json base = to_json(Experiment{});
    base.merge_patch(json::parse(p.json));
    return experiment_from_json(base, "preset " + name);
  }
  std::string known;
  for (const auto& p : preset_names()) known += (known.empty() ? "" : ", ") + p;
  throw std::invalid_argument("unknown preset '" + name + "' (known: " + known + ")");
}

namespace {

// "shift-flip:0.1" -> the augmentation closure for TrainConfig::augment.
std::function<void(Tensor&, const std::int64_t*, std::int64_t)> make_augment(
    const std::string& spec, std::uint64_t seed) {
  if (spec.empty() || spec == "none") return {};
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  float frac = 0.0f;
  if (colon != std::string::npos) {
    try {
      frac = std::stof(spec.substr(colon + 1));
    } catch (const std::exception&) {
      frac = -1.0f;
    }
  }
  auto dims = [](const Tensor& xb) {
    if (xb.ndim() != 4)
      throw std::invalid_argument("augment: needs (N, C, H, W) images, got " +
                                  shape_str(xb.shape()));
  };
  if (kind == "crop-flip") {
    return [seed, dims](Tensor& xb, const std::int64_t* rows, std::int64_t epoch) {
      dims(xb);
      data::augment_crop_flip(xb.f32(), rows, xb.dim(0), xb.dim(1), xb.dim(2), xb.dim(3), 4, true,
                              seed, epoch);
    };
  }
  // shift-flip / shift-reflect-flip: Keras's continuous shifts, bilinear (the study's);
  // shift-int-flip / shift-int-reflect-flip: whole-pixel shifts (detdl's earlier form).
  if (kind == "shift-flip" || kind == "shift-reflect-flip" || kind == "shift-int-flip" ||
      kind == "shift-int-reflect-flip") {
    if (!(frac > 0.0f && frac < 1.0f))
      throw std::invalid_argument("augment '" + spec + "': expected " + kind +
                                  ":FRACTION with 0 < FRACTION < 1");
    const auto fill = kind.find("reflect") == std::string::npos ? data::FillMode::nearest
                                                                : data::FillMode::reflect;
    const bool whole = kind.rfind("shift-int", 0) == 0;
    return
        [seed, dims, frac, fill, whole](Tensor& xb, const std::int64_t* rows, std::int64_t epoch) {
          dims(xb);
          if (whole)
            data::augment_shift_flip(xb.f32(), rows, xb.dim(0), xb.dim(1), xb.dim(2), xb.dim(3),
                                     frac, fill, true, seed, epoch);
          else
            data::augment_shift_flip_bilinear(xb.f32(), rows, xb.dim(0), xb.dim(1), xb.dim(2),
                                              xb.dim(3), frac, fill, true, seed, epoch);
        };
  }
  throw std::invalid_argument("augment '" + spec +
                              "': expected none, crop-flip, shift-flip:FRAC, "
                              "shift-reflect-flip:FRAC, shift-int-flip:FRAC or "
                              "shift-int-reflect-flip:FRAC");
}

// loss, accuracy and (with metrics on) the other eight series. Accuracy is the trainer's
// count of correct rows, the same rule as the metric's (first maximum / threshold 0.5).
json series_json(float loss, float accuracy, const MetricValues& m, bool metrics) {
  json j{{"loss", loss}, {"accuracy", accuracy}};
  if (!metrics) return j;
  for (int i = 0; i < kMetricCount; ++i)
    if (static_cast<Metric>(i) != Metric::accuracy)
      j[std::string(metric_name(static_cast<Metric>(i)))] = m[i];
  return j;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown";
}

}  // namespace

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);  // not std::gmtime: its buffer is shared between threads
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// Keras's GaussianNoise(stddev) before the first layer, in training only: after the
// augmentation, each element of training sample `rows[b]` in epoch `epoch` gets
// stddev * philox_normal(seed, input_noise, epoch, row * elements + element).
std::function<void(Tensor&, const std::int64_t*, std::int64_t)> with_input_noise(
    std::function<void(Tensor&, const std::int64_t*, std::int64_t)> before, float stddev,
    std::uint64_t seed) {
  return [before = std::move(before), stddev, seed](Tensor& xb, const std::int64_t* rows,
                                                    std::int64_t epoch) {
    if (before) before(xb, rows, epoch);
    const std::int64_t n = xb.dim(0), per = xb.numel() / std::max<std::int64_t>(n, 1);
    float* v = xb.f32();
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t k = 0; k < per; ++k)
        v[b * per + k] =
            v[b * per + k] + stddev * philox_normal(seed, RandomStream::input_noise,
                                                    static_cast<std::uint32_t>(epoch),
                                                    static_cast<std::uint64_t>(rows[b] * per + k));
  };
}

}  // namespace

PreparedRun prepare_run(const Experiment& e, const RunOptions& opt) {
  // An experiment built in code skips the JSON checks: a family the device does not emulate
  // would silently run canonical kernels.
  if (const auto [field, why] = device_emulation_refusal(e); !why.empty())
    throw std::invalid_argument("experiment " + field + ": " + why);
  if (e.flush_subnormals && e.device != Device::cpu)
    throw std::invalid_argument(std::string("experiment flush_subnormals: ") + kFlushCpuOnly);
  // Before loading anything: a CUDA run without CUDA fails at once, naming the field.
  if (e.device == Device::cuda) gpu::require("experiment device \"cuda\"");
  // The vendor libraries (cuBLAS, cuDNN) run only on the GPU: a CPU run asking for them
  // would silently be an own-kernel run, so it is refused.
  if (e.implementation == Implementation::vendor && e.device != Device::cuda)
    throw std::invalid_argument(
        "experiment implementation \"vendor\" needs device \"cuda\" (cuBLAS/cuDNN run "
        "only on the GPU; CPU runs always use the own kernels)");
  data::DataOptions dopt;
  dopt.root = e.data_dir;
  dopt.study_split = e.study_split;
  dopt.preprocess = e.preprocess;
  dopt.split_seed = e.seeds.split;
  PreparedRun run;
  run.bundle = data::load_data(e.data, dopt);
  const auto& bundle = run.bundle;
  run.net = make_fitting_net(e.net, *bundle, e.loss);  // refuses a net/data/loss mismatch by name
  apply_edits(run.net, e.edits);                       // before the trainer initialises it

  TrainConfig& cfg = run.cfg;
  cfg.epochs = e.epochs;
  cfg.batch_size = e.batch_size;
  cfg.loss = resolve_loss(e.loss, *bundle);
  cfg.optimizer = e.optimizer;
  cfg.schedule = e.schedule;
  cfg.l1 = e.l1;
  cfg.l2 = e.l2;
  cfg.penalize = run.net.penalize;
  cfg.init_seed = e.seeds.init;
  cfg.init_nudge = e.init_nudge;
  cfg.order_seed = e.seeds.order;
  cfg.dropout_seed = e.seeds.dropout;
  cfg.augment = make_augment(e.augment, e.seeds.augment);
  cfg.plateau = e.plateau;
  if (e.edits.input_noise > 0.0f)
    cfg.augment = with_input_noise(std::move(cfg.augment), e.edits.input_noise, e.seeds.augment);
  cfg.metrics = e.metrics;
  cfg.context = e.context();
  cfg.threads = e.threads;
  cfg.flush_subnormals = e.flush_subnormals;
  cfg.device = e.device;
  cfg.checkpoint_path = opt.checkpoint_path;
  cfg.checkpoint_every = opt.checkpoint_every;
  cfg.checkpoint_seconds = opt.checkpoint_seconds;
  cfg.stop_after_steps = opt.stop_after_steps;
  cfg.step_hashes = opt.step_hashes;
  cfg.on_step_model = opt.on_step_model;
  cfg.monitor = opt.monitor;
  cfg.stop_after_epoch = opt.stop_after_epoch;
  cfg.on_step = opt.on_step;
  // The experiment's fields outside TrainConfig that decide the bits: a resume compares them
  // (engine/train_checkpoint.h). label_noise is exact as written in the JSON form.
  cfg.identity = {{"net", e.net},
                  {"data", e.data},
                  {"preprocess", e.preprocess},
                  {"study_split", e.study_split ? "true" : "false"},
                  {"augment", e.augment},
                  {"label_noise", json(e.label_noise).dump()},
                  {"seeds.augment", std::to_string(e.seeds.augment)},
                  {"seeds.label_noise", std::to_string(e.seeds.label_noise)},
                  {"seeds.split", std::to_string(e.seeds.split)}};
  if (!e.edits.empty()) cfg.identity["edits"] = to_json(e.edits).dump();

  if (e.validation_rows > 0) {
    // Only what evaluation sees changes; the weights are the same as without it.
    if (!bundle->has_validation)
      throw std::invalid_argument("experiment validation_rows: data set '" + e.data +
                                  "' has no validation split here (study_split = true gives one)");
    if (e.validation_rows > bundle->validation.size())
      throw std::invalid_argument(
          "experiment validation_rows: " + std::to_string(e.validation_rows) +
          " rows asked, the validation split of '" + e.data + "' has " +
          std::to_string(bundle->validation.size()));
    cfg.identity["validation_rows"] = std::to_string(e.validation_rows);
  }
  // split_head needs a proper head: asking for every row is the whole split.
  run.cut_validation = e.validation_rows > 0 && e.validation_rows < bundle->validation.size();
  if (run.cut_validation)
    run.validation = data::split_head(bundle->validation, e.validation_rows).first;

  // The shared bundle is read-only: label noise goes into this run's own copy of y.
  run.train = bundle->train;
  if (e.label_noise > 0.0) {
    run.train.y = bundle->train.y.clone();
    data::add_label_noise(run.train, bundle->task, bundle->outputs, e.label_noise,
                          e.seeds.label_noise);
  }
  return run;
}

void record_epoch(PreparedRun& run, const Experiment& e, const RunOptions& opt,
                  const EpochStats& s) {
  json& epochs = run.epochs;
  std::vector<std::int32_t>& last_predictions = run.last_predictions;
  json ep{{"epoch", s.epoch + 1},
          {"seconds", s.seconds},
          {"train_seconds", s.train_seconds},
          {"validation_seconds", s.validation_seconds},
          {"test_seconds", s.test_seconds},
          {"weight_hash", s.weight_hash}};
  ep["train"] = series_json(s.train_loss, s.train_accuracy, s.train_metrics, e.metrics);
  if (s.has_test) {
    ep["test"] = series_json(s.test.loss, s.test.accuracy, s.test.metrics, e.metrics);
    if (!s.test.per_class_accuracy.empty())
      ep["test_per_class_accuracy"] = s.test.per_class_accuracy;
    last_predictions = s.test.predictions;
    if (opt.epoch_predictions && !s.test.predictions.empty())
      ep["test_predictions"] = s.test.predictions;
  }
  if (s.has_validation)
    ep["validation"] =
        series_json(s.validation.loss, s.validation.accuracy, s.validation.metrics, e.metrics);
  if (s.monitor) ep["monitor"] = to_json(*s.monitor);
  epochs.push_back(std::move(ep));
  if (opt.on_epoch) opt.on_epoch(s);
}

EvalSets PreparedRun::evals() const {
  return EvalSets{&bundle->test, !bundle->has_validation ? nullptr
                                 : cut_validation        ? &validation
                                                         : &bundle->validation};
}

RunOutput run_experiment(const Experiment& e, const RunOptions& opt) {
  PreparedRun run = prepare_run(e, opt);
  if (opt.on_start) opt.on_start(*run.bundle, run.net);
  run.started = utc_now();
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  // The record so far in each checkpoint, restored on resume (RunOptions::record_in_checkpoint).
  SoFar before;
  const bool with_record = opt.record_in_checkpoint && !opt.checkpoint_path.empty();
  if (with_record && opt.resume && std::filesystem::exists(opt.checkpoint_path))
    before = read_so_far(opt.checkpoint_path, run);
  if (with_record)
    run.cfg.checkpoint_extra = [&](const TrainResult& now) {
      return std::map<std::string, std::string>{
          {kSoFarKey, so_far_json(run, before, now, seconds()).dump()},
          {kEpochsDoneKey, std::to_string(run.epochs.size())}};
    };
  Trainer trainer(*run.net.model, run.cfg);
  TrainResult result = trainer.fit(run.train, run.evals(), opt.resume,
                                   [&](const EpochStats& s) { record_epoch(run, e, opt, s); });
  const double total = seconds();
  if (!with_record || !result.resumed) return finish_run(run, e, opt, std::move(result), total);
  const std::int64_t resumed_at = result.first_step;
  merge_so_far(result, before);
  RunOutput out = finish_run(run, e, opt, std::move(result), before.seconds + total);
  out.record["resumed_from_step"] = resumed_at;
  return out;
}

RunOutput finish_run(PreparedRun& run, const Experiment& e, const RunOptions& opt,
                     TrainResult result, double total) {
  const auto& bundle = run.bundle;
  const NetSpec& net = run.net;
  const TrainConfig& cfg = run.cfg;
  const json& epochs = run.epochs;
  RunOutput out;
  out.result = std::move(result);
  out.parameters = net.model->parameter_count();
  out.net_description = net.description;
  if (opt.keep_weights_up_to > 0 && out.parameters <= opt.keep_weights_up_to) {
    out.final_weights.reserve(static_cast<std::size_t>(out.parameters));
    for (const auto& p : net.model->parameters()) {
      const float* v = p.tensor.f32();
      out.final_weights.insert(out.final_weights.end(), v, v + p.tensor.numel());
    }
  }

  json net_record{
      {"name", e.net}, {"description", net.description}, {"parameters", out.parameters}};
  if (net.info.is_object()) net_record.update(net.info);
  // From the record's epochs: a resumed batch's result holds only the epochs since its
  // checkpoint (nets/experiment_batched.cpp).
  json epoch_seconds = json::array();
  for (const auto& ep : epochs) epoch_seconds.push_back(ep.at("seconds"));
  out.record = json{
      {"record_version", 1},
      {"detdl_version", DETDL_VERSION},
      {"experiment", to_json(e)},
      {"net", net_record},
      {"data",
       {{"name", e.data},
        {"source", bundle->source},
        {"task", std::string(data::task_name(bundle->task))},
        {"outputs", bundle->outputs},
        {"train_rows", bundle->train.size()},
        {"test_rows", bundle->test.size()},
        {"validation_rows", !bundle->has_validation ? 0
                            : e.validation_rows > 0 ? e.validation_rows
                                                    : bundle->validation.size()}}},
      {"loss", std::string(loss_name(cfg.loss))},
      {"host",
       {{"name", host_name()},
        {"cpu", cpu_model()},
        {"threads", e.threads},
        {"device", std::string(device_name(e.device))}}},
      {"build",
       {{"compiler", __VERSION__}, {"flags", "-ffp-contract=off -fno-fast-math -mavx2 -mfma"}}},
      {"started_at", run.started},
      {"timings", {{"total_seconds", total}, {"epoch_seconds", epoch_seconds}}},
      {"epochs", epochs},
      {"steps", out.result.steps},
      {"stopped_early", out.result.stopped_early},
      {"weight_hash", out.result.weight_hash},
      {"test_predictions", run.last_predictions},
  };
  if (out.result.stopped_after_epoch) out.record["stopped_after_epoch"] = true;
  // Test rows per class (the study's no_samples_* columns; variance/export.h).
  if (bundle->test.y.dtype() == DType::i32 && bundle->outputs > 0) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(bundle->outputs), 0);
    const std::int32_t* y = bundle->test.y.i32();
    for (std::int64_t i = 0; i < bundle->test.size(); ++i)
      if (y[i] >= 0 && y[i] < bundle->outputs) ++counts[static_cast<std::size_t>(y[i])];
    out.record["test_class_counts"] = counts;
  }
  // Divergence (NaN/Inf loss or weights): the run completes and says so. "finite" counts,
  // per series, the epochs whose value is finite (non-finite values are null in JSON).
  json finite = json::object();
  bool diverged = out.result.nonfinite_loss_steps > 0;
  for (const auto& ep : epochs)
    for (const char* part : {"train", "test", "validation"}) {
      if (!ep.contains(part)) continue;
      for (auto it = ep[part].begin(); it != ep[part].end(); ++it) {
        const std::string key = std::string(part) + "." + it.key();
        if (!finite.contains(key)) finite[key] = 0;
        const bool ok = it.value().is_number() && std::isfinite(it.value().get<double>());
        if (ok) finite[key] = finite[key].get<std::int64_t>() + 1;
        if (!ok && (it.key() == "loss")) diverged = true;
      }
    }
  bool weights_finite = true;
  for (const auto& p : net.model->parameters()) {
    const Tensor h = p.tensor.to(Device::cpu);
    const float* v = h.f32();
    for (std::int64_t i = 0; i < h.numel() && weights_finite; ++i)
      weights_finite = std::isfinite(v[i]);
  }
  if (!weights_finite) diverged = true;
  out.record["finite"] = finite;
  out.record["nonfinite_loss_steps"] = out.result.nonfinite_loss_steps;
  out.record["weights_finite"] = weights_finite;
  out.record["diverged"] = diverged;
  out.record["resumed_from_step"] =
      out.result.resumed ? json(out.result.first_step) : json(nullptr);
  if (opt.step_hashes) {
    out.record["first_step"] = out.result.first_step;
    out.record["step_hashes"] = out.result.step_hashes;
  }
  return out;
}

}  // namespace detdl::nets
