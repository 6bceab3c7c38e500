#include "engine/monitor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/train.h"

namespace detdl {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Sum of squares in float64, in element order: the monitor's numbers are a pure function of
// the weights (the doctor's decisions repeat bit for bit), and never feed back into training.
double norm2(const float* v, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * static_cast<double>(v[i]);
  return std::sqrt(s);
}

bool all_finite(const float* v, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// Marks alive[u] for every unit (dim 1) of out (N, C, ...) that is nonzero on some row or
// position.
void mark_alive(const Tensor& out_any, std::vector<char>& alive) {
  const Tensor out = out_any.to(Device::cpu);
  if (out.ndim() < 2 || out.numel() == 0) return;
  const std::int64_t n = out.dim(0), c = out.dim(1), inner = out.numel() / (n * c);
  alive.resize(static_cast<std::size_t>(c), 0);
  const float* v = out.f32();
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t u = 0; u < c; ++u) {
      if (alive[u]) continue;
      const float* p = v + (r * c + u) * inner;
      for (std::int64_t k = 0; k < inner; ++k)
        if (p[k] != 0.0f) {
          alive[u] = 1;
          break;
        }
    }
}

double number_or_nan(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw std::invalid_argument(where + "." + key + ": missing");
  const auto& v = j.at(key);
  if (v.is_null()) return kNaN;
  if (!v.is_number()) throw std::invalid_argument(where + "." + key + ": expected a number");
  return v.get<double>();
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; }

}  // namespace

std::vector<std::vector<float>> snapshot_parameters(const Module& model) {
  std::vector<std::vector<float>> out;
  for (const auto& p : model.parameters()) out.push_back(p.tensor.to_vector());
  return out;
}

MonitorStats probe_model(Module& model, const TrainConfig& cfg, const MonitorConfig& mon,
                         const Dataset& train, std::int64_t epoch,
                         const std::vector<std::vector<float>>& start) {
  const auto t0 = std::chrono::steady_clock::now();
  MonitorStats st;
  st.epoch = epoch;
  const std::int64_t want = mon.rows > 0 ? mon.rows : cfg.batch_size;
  st.rows = std::min(want, train.size());
  if (st.rows < 1) throw std::invalid_argument("monitor: no training rows to probe");
  const Dataset probe = slice_rows(train, 0, st.rows);
  const Device dev = model.device();

  const bool was_training = model.training();
  model.train(false);  // inference mode: no batch-norm update, no dropout (Keras learning phase 0)
  {
    // Dead units: forwards of their own over the dead-count rows, without the tape, in
    // pieces of the probe's size (the training batch's: no larger buffers than training's,
    // which would change how the allocator serves the steps that follow).
    st.dead_rows = std::min(std::max(mon.dead_rows, st.rows), train.size());
    std::vector<std::vector<char>> alive;  // per activation layer, per unit
    std::vector<const Act*> layers;
    NoGradGuard no_tape;
    for (std::int64_t begin = 0; begin < st.dead_rows; begin += st.rows) {
      const Dataset piece = slice_rows(train, begin, std::min(st.dead_rows, begin + st.rows));
      std::size_t index = 0;
      ActivationObserverScope watch([&](const Act& layer, const Tensor& out) {
        if (index == alive.size()) {
          alive.emplace_back();
          layers.push_back(&layer);
        }
        mark_alive(out, alive[index++]);
      });
      model.forward(piece.x.to(dev));
    }
    for (std::size_t i = 0; i < alive.size(); ++i) {
      ActivationProbe a;
      a.index = static_cast<std::int64_t>(i);
      a.kind = layers[i]->kind();
      a.units = static_cast<std::int64_t>(alive[i].size());
      std::int64_t dead = 0;
      for (char x : alive[i]) dead += x ? 0 : 1;
      a.dead = a.units > 0 ? static_cast<double>(dead) / static_cast<double>(a.units) : 0.0;
      st.activations.push_back(std::move(a));
    }
  }
  Tensor loss = compute_loss(cfg.loss, model.forward(probe.x.to(dev)), probe.y.to(dev));
  const auto params = model.parameters();
  for (const auto& p : params) {  // Keras's total_loss: the penalties in the training step's order
    if (!penalized(cfg, p)) continue;
    if (cfg.l1 > 0.0f) loss = ops::add(loss, ops::l1_penalty(p.tensor, cfg.l1));
    if (cfg.l2 > 0.0f) loss = ops::add(loss, ops::l2_penalty(p.tensor, cfg.l2));
  }
  st.loss = loss.item();
  backward(loss);

  std::int64_t zeros = 0, entries = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor w = params[i].tensor;
    const std::vector<float> wv = w.to_vector();
    ParamProbe pp;
    pp.name = params[i].name;
    pp.size = w.numel();
    pp.dims = w.ndim();
    pp.weight_norm = norm2(wv.data(), pp.size);
    if (!all_finite(wv.data(), pp.size)) st.nonfinite_weight = true;
    const Tensor g = w.grad();
    std::int64_t z = pp.size;  // no gradient reached it: every entry is zero
    if (g.defined()) {
      const std::vector<float> gv = g.to_vector();
      pp.grad_norm = norm2(gv.data(), pp.size);
      if (!all_finite(gv.data(), pp.size)) st.nonfinite_grad = true;
      z = static_cast<std::int64_t>(std::count(gv.begin(), gv.end(), 0.0f));
    }
    pp.zero_grad = pp.size > 0 ? static_cast<double>(z) / static_cast<double>(pp.size) : 0.0;
    zeros += z;
    entries += pp.size;
    pp.update_ratio = kNaN;
    if (i < start.size() && start[i].size() == wv.size()) {
      const double base = norm2(start[i].data(), pp.size);
      double d = 0.0;
      for (std::size_t k = 0; k < wv.size(); ++k) {
        const double e = static_cast<double>(wv[k]) - static_cast<double>(start[i][k]);
        d += e * e;
      }
      if (base > 0.0) pp.update_ratio = std::sqrt(d) / base;
    }
    w.zero_grad();  // as the optimizer's zero_grad leaves it: the next step starts clean
    st.params.push_back(std::move(pp));
  }
  st.zero_grad_share =
      entries > 0 ? static_cast<double>(zeros) / static_cast<double>(entries) : 0.0;
  model.train(was_training);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

nlohmann::json to_json(const MonitorStats& m) {
  nlohmann::json params = nlohmann::json::array();
  for (const auto& p : m.params)
    params.push_back({{"name", p.name},
                      {"size", p.size},
                      {"dims", p.dims},
                      {"grad_norm", number_or_null(p.grad_norm)},
                      {"weight_norm", number_or_null(p.weight_norm)},
                      {"zero_grad", p.zero_grad},
                      {"update_ratio", number_or_null(p.update_ratio)}});
  nlohmann::json acts = nlohmann::json::array();
  for (const auto& a : m.activations)
    acts.push_back({{"index", a.index}, {"kind", a.kind}, {"units", a.units}, {"dead", a.dead}});
  return {{"rows", m.rows},
          {"dead_rows", m.dead_rows},
          {"loss", number_or_null(m.loss)},
          {"zero_grad_share", m.zero_grad_share},
          {"nonfinite_grad", m.nonfinite_grad},
          {"nonfinite_weight", m.nonfinite_weight},
          {"params", params},
          {"activations", acts},
          {"seconds", m.seconds}};
}

MonitorStats monitor_from_json(const nlohmann::json& j) {
  const std::string where = "monitor";
  if (!j.is_object()) throw std::invalid_argument(where + ": expected an object");
  MonitorStats m;
  try {
    m.rows = j.at("rows").get<std::int64_t>();
    m.dead_rows = j.value("dead_rows", m.rows);
    m.loss = number_or_nan(j, "loss", where);
    m.zero_grad_share = number_or_nan(j, "zero_grad_share", where);
    m.nonfinite_grad = j.at("nonfinite_grad").get<bool>();
    m.nonfinite_weight = j.at("nonfinite_weight").get<bool>();
    for (const auto& p : j.at("params")) {
      ParamProbe pp;
      pp.name = p.at("name").get<std::string>();
      pp.size = p.at("size").get<std::int64_t>();
      pp.dims = p.at("dims").get<std::int64_t>();
      pp.grad_norm = number_or_nan(p, "grad_norm", where + ".params");
      pp.weight_norm = number_or_nan(p, "weight_norm", where + ".params");
      pp.zero_grad = number_or_nan(p, "zero_grad", where + ".params");
      pp.update_ratio = number_or_nan(p, "update_ratio", where + ".params");
      m.params.push_back(std::move(pp));
    }
    for (const auto& a : j.at("activations")) {
      ActivationProbe ap;
      ap.index = a.at("index").get<std::int64_t>();
      ap.kind = a.at("kind").get<std::string>();
      ap.units = a.at("units").get<std::int64_t>();
      ap.dead = number_or_nan(a, "dead", where + ".activations");
      m.activations.push_back(std::move(ap));
    }
    m.seconds = j.value("seconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  return m;
}

}  // namespace detdl
