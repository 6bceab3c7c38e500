#include "nets/zoo.h"

#include <cstdio>
#include <set>
#include <stdexcept>

#include "nets/butter.h"
#include "nets/lenet.h"
#include "nets/resnet.h"
#include "nets/simple.h"
#include "nets/wrn.h"

namespace detdl::nets {

std::vector<std::string> known_net_names() {
  return {"mlp[:HIDDEN]",
          "dense:DEPTH:WIDTH[:ACTIVATION]",
          "cnn",
          "lenet1",
          "lenet4",
          "lenet5",
          "lenetN:keras",
          "lenetN:classic",
          "resnet20",
          "resnet38",
          "resnet56",
          "resnetD (D = 6n+2)",
          "wrn-28-10",
          "wrn-16-4",
          "wrn-D-K[:DROPOUT]",
          "butter:SHAPE:DEPTH:SIZE"};
}

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

std::int64_t to_int(const std::string& net, const std::string& what, const std::string& s) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || v < 1)
    throw std::invalid_argument("net '" + net + "': " + what +
                                " must be a positive integer, got '" + s + "'");
  return v;
}

void require_images(const std::string& net, const data::DataBundle& d, std::int64_t c,
                    std::int64_t hw) {
  const Shape want{c, hw, hw};
  if (d.sample_shape != want || d.task != data::Task::multiclass)
    throw std::invalid_argument("net '" + net + "' needs " + std::to_string(c) + "x" +
                                std::to_string(hw) + "x" + std::to_string(hw) +
                                " images with class labels; data set '" + d.name + "' has rows " +
                                shape_str(d.sample_shape));
}

std::int64_t flat_inputs(const data::DataBundle& d) {
  std::int64_t n = 1;
  for (auto s : d.sample_shape) n *= s;
  return n;
}

// A dense net for the data set's rows: images (any row shape) are flattened first, as
// BUTTER's pixel columns are; flat rows go in as they are.
std::shared_ptr<Module> flattening(std::shared_ptr<Module> dense, const data::DataBundle& d) {
  if (d.sample_shape.size() == 1) return dense;
  auto flat = std::make_shared<Sequential>();
  flat->emplace<Flatten>();
  flat->add(std::move(dense));
  return flat;
}

}  // namespace

NetSpec make_net(const std::string& name, const data::DataBundle& d) {
  return make_net(name, d, d.loss);
}

NetSpec make_net(const std::string& name, const data::DataBundle& d, LossKind loss) {
  NetSpec spec;
  spec.name = name;
  const auto parts = split(name, ':');
  const std::string& base = parts[0];
  // Binary cross-entropy is computed on probabilities (Keras's form; ops::binary_cross_entropy
  // with from_logits = false), so a net trained with it ends in a sigmoid.
  const OutputActivation output =
      loss == LossKind::bce ? OutputActivation::sigmoid : OutputActivation::none;
  if (base == "mlp") {
    const std::int64_t hidden = parts.size() > 1 ? to_int(name, "the hidden width", parts[1]) : 64;
    spec.model = flattening(make_mlp(flat_inputs(d), hidden, d.outputs, 0.0f, output), d);
    spec.description = "mlp " + std::to_string(flat_inputs(d)) + "-" + std::to_string(hidden) +
                       "-" + std::to_string(hidden) + "-" + std::to_string(d.outputs) +
                       (output == OutputActivation::sigmoid ? ", sigmoid output" : "");
  } else if (base == "dense") {
    // dense:DEPTH:WIDTH[:ACT]: DEPTH hidden layers of WIDTH units and activation ACT (relu
    // by default; any of kernels/common/activation.h), Keras's Dense defaults (Glorot-uniform
    // kernels, zero biases), then the output layer: the training doctor's problem nets
    // (a deep sigmoid MLP is dense:8:32:sigmoid).
    if (parts.size() < 3 || parts.size() > 4)
      throw std::invalid_argument("net '" + name + "': expected dense:DEPTH:WIDTH[:ACTIVATION]");
    const std::int64_t depth = to_int(name, "the depth", parts[1]);
    const std::int64_t width = to_int(name, "the width", parts[2]);
    if (depth < 1 || depth > 1000 || width < 1 || width > (1 << 20))
      throw std::invalid_argument("net '" + name +
                                  "': depth must be 1 to 1000 and width 1 to 2^20");
    Activation act = Activation::relu;
    if (parts.size() == 4) {
      const auto a = parse_activation(parts[3]);
      if (!a || *a == Activation::identity)
        throw std::invalid_argument("net '" + name + "': unknown hidden activation '" + parts[3] +
                                    "'");
      act = *a;
    }
    auto m = std::make_shared<Sequential>();
    std::int64_t fan_in = flat_inputs(d);
    for (std::int64_t l = 0; l < depth; ++l) {
      m->emplace<Linear>(fan_in, width);
      m->emplace<Act>(act, default_alpha(act));
      fan_in = width;
    }
    m->emplace<Linear>(fan_in, d.outputs);
    if (output == OutputActivation::sigmoid)
      m->emplace<Act>(Activation::sigmoid, 0.0f, /*output=*/true);
    spec.model = flattening(m, d);
    spec.description = "dense " + std::to_string(depth) + " x " + std::to_string(width) + " " +
                       std::string(activation_name(act)) +
                       (output == OutputActivation::sigmoid ? ", sigmoid output" : "");
  } else if (base == "cnn") {
    if (d.sample_shape.size() != 3)
      throw std::invalid_argument("net 'cnn' needs images; data set '" + d.name + "' has rows " +
                                  shape_str(d.sample_shape));
    spec.model = make_small_cnn(d.sample_shape[0], d.outputs, output);
    spec.description =
        output == OutputActivation::sigmoid ? "small cnn, sigmoid output" : "small cnn";
  } else if (!takes_class_labels(loss) && base != "butter") {
    // LeNet, ResNet and WRN are the studies' classifiers: logits for softmax cross-entropy.
    throw std::invalid_argument("net '" + name +
                                "' is a classifier trained with softmax_ce or keras_ce, not " +
                                std::string(loss_name(loss)));
  } else if (base == "lenet1" || base == "lenet4" || base == "lenet5") {
    LenetOptions o;
    if (parts.size() > 1) {
      if (parts[1] == "keras")
        o.study_init = false;
      else if (parts[1] == "classic")
        o.classic = true;
      else
        throw std::invalid_argument("net '" + name + "': variant must be keras or classic, got '" +
                                    parts[1] + "'");
    }
    require_images(name, d, 1, o.classic ? 32 : 28);
    if (d.outputs != 10)
      throw std::invalid_argument("net '" + name + "' has 10 outputs; data set '" + d.name +
                                  "' has " + std::to_string(d.outputs) + " classes");
    spec.model = make_lenet(base.back() - '0', o);
    spec.description = base +
                       (o.classic ? " (classic layout)" : " (study layout, 'same' padding)") +
                       (o.study_init ? ", U[-0.5, 0.5) init" : ", Keras init");
  } else if (base.rfind("resnet", 0) == 0) {
    const std::int64_t depth = to_int(name, "the depth", base.substr(6));
    require_images(name, d, 3, 32);
    spec.model = make_resnet_v1(static_cast<int>(depth), static_cast<int>(d.outputs));
    spec.description = "Keras CIFAR ResNet v1, depth " + std::to_string(depth);
    // The study: L2 1e-4 on the convolution kernels only.
    spec.penalize = [](const NamedTensor& p) { return p.tensor.ndim() == 4; };
  } else if (base.rfind("wrn-", 0) == 0) {
    const auto dk = split(base.substr(4), '-');
    if (dk.size() != 2)
      throw std::invalid_argument("net '" + name + "': expected wrn-DEPTH-WIDEN, e.g. wrn-28-10");
    const std::int64_t depth = to_int(name, "the depth", dk[0]),
                       widen = to_int(name, "the widening factor", dk[1]);
    float dropout = 0.0f;
    if (parts.size() > 1) {
      try {
        dropout = std::stof(parts[1]);
      } catch (const std::exception&) {
        dropout = -1.0f;
      }
      if (!(dropout >= 0.0f && dropout < 1.0f))
        throw std::invalid_argument("net '" + name + "': dropout must be in [0, 1), got '" +
                                    parts[1] + "'");
    }
    require_images(name, d, 3, 32);
    spec.model = make_wrn(static_cast<int>(depth), static_cast<int>(widen),
                          static_cast<int>(d.outputs), dropout);
    spec.description = "pre-activation WRN-" + std::to_string(depth) + "-" + std::to_string(widen);
    // The study: L2 5e-4 on the convolution kernels and on the dense kernel and bias (the
    // head's Linear is the model's last module, so its two parameters come last).
    const auto params = spec.model->parameters();
    std::set<std::string> head;
    if (params.size() >= 2) {
      head.insert(params[params.size() - 1].name);
      head.insert(params[params.size() - 2].name);
    }
    spec.penalize = [head](const NamedTensor& p) {
      return p.tensor.ndim() == 4 || head.count(p.name) > 0;
    };
  } else if (base == "butter") {
    if (parts.size() != 4)
      throw std::invalid_argument(
          "net '" + name + "': expected butter:SHAPE:DEPTH:SIZE, e.g. butter:rectangle:3:1024");
    const auto shape = parse_butter_shape(parts[1]);
    if (!shape)
      throw std::invalid_argument(
          "net '" + name + "': unknown shape '" + parts[1] +
          "' (rectangle, trapezoid, exponential, wide_first_2x, wide_first_4x, wide_first_8x, "
          "wide_first_16x, rectangle_residual)");
    const std::int64_t depth = to_int(name, "the depth", parts[2]),
                       size = to_int(name, "the size", parts[3]);
    const std::int64_t n_in = flat_inputs(d);
    const ButterPlan plan = butter_plan(*shape, size, depth, n_in, d.outputs);
    // BUTTER (Keras): a sigmoid output for every task but multi-class (softmax there,
    // which the engine's softmax cross-entropy applies to the logits itself).
    spec.model = flattening(make_butter_mlp(*shape, plan, n_in, !takes_class_labels(loss)), d);
    std::string w;
    for (auto x : plan.widths) w += (w.empty() ? "" : ", ") + std::to_string(x);
    spec.description = "BUTTER " + parts[1] + " depth " + parts[2] + " size " + parts[3] + ": " +
                       std::to_string(n_in) + " -> [" + w + "], " + std::to_string(plan.params) +
                       " parameters";
    if (!plan.conformant) {
      char away[96];
      std::snprintf(away, sizeof away, " (%+.1f%% from the size: outside the README's 20%%)",
                    100 * plan.relative_distance());
      spec.description += away;
    }
    spec.info = {{"butter",
                  {{"shape", parts[1]},
                   {"depth", depth},
                   {"size", size},
                   {"params", plan.params},
                   {"widths", plan.widths},
                   {"relative_distance", plan.relative_distance()},
                   {"conformant", plan.conformant}}}};
  } else {
    std::string known;
    for (const auto& k : known_net_names()) known += (known.empty() ? "" : ", ") + k;
    throw std::invalid_argument("unknown net '" + name + "' (known: " + known + ")");
  }
  return spec;
}

}  // namespace detdl::nets
