#include "nets/compat.h"

#include <stdexcept>

#include "nets/simple.h"

namespace detdl::nets {
namespace {

using data::DataBundle;
using data::Task;

// "1x28x28": a row shape as the messages show it.
std::string dims_str(const Shape& s) {
  std::string out;
  for (auto d : s) {
    if (!out.empty()) out += 'x';
    out += std::to_string(d);
  }
  return out;
}

std::string describe_rows(const DataBundle& d) {
  if (d.sample_shape.size() == 1)
    return "rows are flat (" + std::to_string(d.sample_shape[0]) + " values)";
  if (d.sample_shape.size() == 3) return "images are " + dims_str(d.sample_shape);
  return "rows are " + dims_str(d.sample_shape);
}

std::string describe_targets(const DataBundle& d) {
  const std::string task(data::task_name(d.task));
  if (d.task == Task::multiclass) return task + ", " + std::to_string(d.outputs) + " classes";
  return task + ", " + std::to_string(d.outputs) + (d.outputs == 1 ? " output" : " outputs");
}

[[noreturn]] void net_misfit(const std::string& net, const DataBundle& d, const std::string& why) {
  throw std::invalid_argument("--net " + net + " does not fit --data " + d.name + ": " + why);
}

// Image classifiers of one exact input size (the studies' LeNets, ResNets and WRNs).
void require_image_classifier(const std::string& net, const std::string& base, const DataBundle& d,
                              const Shape& want) {
  if (d.sample_shape != want)
    net_misfit(net, d, describe_rows(d) + ", " + base + " needs " + dims_str(want) + " images");
  if (d.task != Task::multiclass)
    net_misfit(net, d,
               "the targets are " + describe_targets(d) + ", " + base +
                   " is a classifier and needs class labels");
}

void check_net_fits(const std::string& net, const DataBundle& d) {
  const std::string base = net.substr(0, net.find(':'));
  const std::string variant =
      net.find(':') == std::string::npos ? "" : net.substr(net.find(':') + 1);
  if (base == "mlp" || base == "butter" || base == "dense")
    return;  // any rows: images are flattened
  if (base == "cnn") {
    if (d.sample_shape.size() != 3)
      net_misfit(net, d, describe_rows(d) + ", cnn needs C x H x W images");
    const std::int64_t h = d.sample_shape[1], w = d.sample_shape[2];
    if (h < kSmallCnnMinImageSize || w < kSmallCnnMinImageSize) {
      const std::string min = std::to_string(kSmallCnnMinImageSize);
      net_misfit(net, d,
                 "images are " + std::to_string(h) + "x" + std::to_string(w) +
                     ", cnn needs at least " + min + "x" + min + " (its 2x2 max pooling)");
    }
  } else if (base == "lenet1" || base == "lenet4" || base == "lenet5") {
    const std::int64_t hw = variant == "classic" ? 32 : 28;
    require_image_classifier(net, base, d, {1, hw, hw});
    if (d.outputs != 10)
      net_misfit(net, d, std::to_string(d.outputs) + " classes, " + base + " has 10 outputs");
  } else if (base.rfind("resnet", 0) == 0 || base.rfind("wrn-", 0) == 0) {
    require_image_classifier(net, base, d, {3, 32, 32});
  }
  // Other names: make_net refuses them, listing the known nets.
}

void check_loss_fits(const std::string& net, const DataBundle& d, const std::string& loss_flag,
                     LossKind loss) {
  const std::string loss_text =
      loss_flag == "auto" ? "auto (" + std::string(loss_name(loss)) + ")" : loss_flag;
  auto misfit = [&](const std::string& why) {
    throw std::invalid_argument("--loss " + loss_text + " does not fit --data " + d.name + " (" +
                                describe_targets(d) + ") with --net " + net + ": " + why);
  };
  const bool class_labels = d.train.y.dtype() == DType::i32;
  const std::string instead = d.task == Task::multiclass ? "softmax_ce"
                              : d.task == Task::binary   ? "bce"
                                                         : "mse";
  switch (loss) {
    case LossKind::softmax_ce:
    case LossKind::keras_ce:
      if (!class_labels || d.task != Task::multiclass)
        misfit(std::string(loss_name(loss)) + " needs class labels, the targets are " +
               std::string(data::task_name(d.task)) + " values; use " + instead);
      return;
    case LossKind::bce: {
      if (class_labels)
        misfit(
            "bce needs one output per target with 0/1 (or [0, 1]) targets (binary or multi-label), "
            "the targets are "
            "class labels; use softmax_ce");
      // Probabilities are compared with the targets: a target outside [0, 1] has no meaning.
      for (const Dataset* set : {&d.train, &d.test}) {
        const float* y = set->y.f32();
        for (std::int64_t i = 0; i < set->y.numel(); ++i)
          if (!(y[i] >= 0.0f && y[i] <= 1.0f))
            misfit("bce needs targets in [0, 1], one is " + std::to_string(y[i]) + "; use mse");
      }
      return;
    }
    case LossKind::mse:
      if (class_labels)
        misfit(
            "mse needs float targets of the output's shape, the targets are class labels; use "
            "softmax_ce");
      return;
  }
}

}  // namespace

LossKind resolve_loss(const std::string& loss, const data::DataBundle& d) {
  if (loss == "auto") return d.loss;
  if (loss == "softmax_ce") return LossKind::softmax_ce;
  if (loss == "keras_ce") return LossKind::keras_ce;
  if (loss == "bce") return LossKind::bce;
  if (loss == "mse") return LossKind::mse;
  throw std::invalid_argument("--loss: expected auto, softmax_ce, keras_ce, bce or mse, got '" +
                              loss + "'");
}

void check_fits(const std::string& net, const data::DataBundle& d, const std::string& loss) {
  check_net_fits(net, d);
  check_loss_fits(net, d, loss, resolve_loss(loss, d));
}

NetSpec make_fitting_net(const std::string& net, const data::DataBundle& d,
                         const std::string& loss) {
  check_fits(net, d, loss);
  return make_net(net, d, resolve_loss(loss, d));
}

}  // namespace detdl::nets
