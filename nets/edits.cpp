#include "nets/edits.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/init.h"
#include "kernels/common/activation.h"

namespace detdl::nets {
namespace {

// "he_uniform", ..., or "constant:V" (uniform on [V, V]).
std::optional<InitSpec> parse_init_spec(const std::string& s) {
  if (s.rfind("constant:", 0) == 0) {
    try {
      std::size_t used = 0;
      const float v = std::stof(s.substr(9), &used);
      if (used != s.size() - 9 || !std::isfinite(v)) return std::nullopt;
      return InitSpec{InitKind::uniform, v, v};
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  const auto k = parse_init(s);
  if (!k || *k == InitKind::uniform || *k == InitKind::normal) return std::nullopt;
  return InitSpec{*k};
}

bool is_layer(const Module& m) { return m.kind() == "Linear" || m.kind() == "Conv2d"; }

std::int64_t units_of(const Module& m) {
  if (const auto* l = dynamic_cast<const Linear*>(&m)) return l->weight().dim(0);
  if (const auto* c = dynamic_cast<const Conv2d*>(&m)) return c->weight().dim(0);
  return 0;
}

}  // namespace

nlohmann::json to_json(const NetEdits& e) {
  nlohmann::json j = nlohmann::json::object();
  if (!e.activation.empty()) j["activation"] = e.activation;
  if (!std::isnan(e.alpha)) j["alpha"] = e.alpha;
  if (!e.kernel_init.empty()) j["kernel_init"] = e.kernel_init;
  if (!e.bias_init.empty()) j["bias_init"] = e.bias_init;
  if (e.batch_norm) j["batch_norm"] = true;
  if (e.input_noise != 0.0f) j["input_noise"] = e.input_noise;
  return j;
}

NetEdits edits_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": expected an object");
  NetEdits e;
  for (const auto& item : j.items()) {
    // Plain names, not structured bindings: the lambdas below capture them (C++17).
    const std::string key = item.key();
    const nlohmann::json& v = item.value();
    const std::string at = where + "." + key;
    auto text = [&] {
      if (!v.is_string()) throw std::invalid_argument(at + ": expected a string");
      return v.get<std::string>();
    };
    auto number = [&] {
      if (!v.is_number()) throw std::invalid_argument(at + ": expected a number");
      const double d = v.get<double>();
      if (!std::isfinite(d)) throw std::invalid_argument(at + ": expected a finite number");
      return static_cast<float>(d);
    };
    if (key == "activation") {
      e.activation = text();
      const auto a = parse_activation(e.activation);
      if (!a || *a == Activation::identity)
        throw std::invalid_argument(at + ": unknown activation '" + e.activation + "'");
    } else if (key == "alpha") {
      e.alpha = number();
    } else if (key == "kernel_init" || key == "bias_init") {
      const std::string s = text();
      if (!parse_init_spec(s))
        throw std::invalid_argument(at +
                                    ": expected an initialiser (zeros, ones, glorot_uniform, "
                                    "glorot_normal, he_uniform, he_normal, lecun_uniform, "
                                    "lecun_normal) or constant:V, got '" +
                                    s + "'");
      (key == "kernel_init" ? e.kernel_init : e.bias_init) = s;
    } else if (key == "batch_norm") {
      if (!v.is_boolean()) throw std::invalid_argument(at + ": expected true or false");
      e.batch_norm = v.get<bool>();
    } else if (key == "input_noise") {
      e.input_noise = number();
      if (e.input_noise < 0.0f) throw std::invalid_argument(at + ": expected a number >= 0");
    } else {
      throw std::invalid_argument(where + ": unknown field '" + key +
                                  "' (activation, alpha, kernel_init, bias_init, batch_norm, "
                                  "input_noise)");
    }
  }
  if (!std::isnan(e.alpha) && e.activation.empty())
    throw std::invalid_argument(where + ".alpha: needs an activation");
  return e;
}

void apply_edits(NetSpec& net, const NetEdits& e) {
  if (e.empty()) return;
  Module& model = *net.model;
  if (!e.activation.empty()) {
    const Activation a = *parse_activation(e.activation);
    const float alpha = std::isnan(e.alpha) ? default_alpha(a) : e.alpha;
    int changed = 0;
    model.visit([&](Module& m) {
      if (auto* act = dynamic_cast<Act*>(&m); act != nullptr && !act->output()) {
        act->set_activation(a, alpha);
        ++changed;
      }
    });
    if (changed == 0)
      throw std::invalid_argument("edits.activation: net '" + net.name +
                                  "' has no hidden activation layer to change");
  }
  if (e.batch_norm) {
    // After each activation that follows a Linear / Conv2d in a Sequential (the output
    // layer is followed by no hidden activation, so it gets none).
    int inserted = 0;
    model.visit([&](Module& m) {
      auto* seq = dynamic_cast<Sequential*>(&m);
      if (seq == nullptr) return;
      for (std::size_t i = 1; i < seq->size(); ++i) {
        const auto* act = dynamic_cast<const Act*>(seq->layer(i).get());
        if (act == nullptr || act->output() || !is_layer(*seq->layer(i - 1))) continue;
        seq->insert(i + 1, std::make_shared<BatchNorm>(units_of(*seq->layer(i - 1)), 0.01f, 1e-3f));
        ++inserted;
        ++i;
      }
    });
    if (inserted == 0)
      throw std::invalid_argument("edits.batch_norm: net '" + net.name +
                                  "' has no hidden Linear/Conv2d + activation layers in sequence");
  }
  if (!e.kernel_init.empty() || !e.bias_init.empty()) {
    // The output layer is the last kernel's module: its parameters share its prefix.
    const auto params = model.parameters();
    std::string out_prefix;
    for (const auto& p : params)
      if (p.tensor.ndim() >= 2) out_prefix = p.name.substr(0, p.name.rfind('.') + 1);
    int changed = 0;
    for (const auto& p : params) {
      if (p.name.rfind(out_prefix, 0) == 0) continue;
      const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
      const bool kernel = p.tensor.ndim() >= 2;
      // A Linear's or Conv2d's bias: beside a kernel of the same prefix (batch norm's beta
      // is also named bias, beside a 1-D scale; Keras's edits leave it alone too).
      const std::string prefix = p.name.substr(0, p.name.rfind('.') + 1);
      bool beside_kernel = false;
      for (const auto& q : params)
        if (q.name == prefix + "weight" && q.tensor.ndim() >= 2) beside_kernel = true;
      const bool bias = leaf == "bias" && beside_kernel;
      if (kernel && !e.kernel_init.empty()) {
        model.set_init(p.name, *parse_init_spec(e.kernel_init));
        ++changed;
      } else if (bias && !e.bias_init.empty()) {
        model.set_init(p.name, *parse_init_spec(e.bias_init));
        ++changed;
      }
    }
    if (changed == 0)
      throw std::invalid_argument("edits: net '" + net.name +
                                  "' has no hidden layer whose initialiser could change");
  }
  nlohmann::json info = net.info.is_object() ? net.info : nlohmann::json::object();
  info["edits"] = to_json(e);
  net.info = info;
  net.description += " (edited)";
}

}  // namespace detdl::nets
