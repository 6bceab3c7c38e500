// Edits of a built net, as an experiment field (`edits`): the changes the training
// doctor's repairs make to a model (doctor/repair.h), written as data so that a repaired
// run is an ordinary, reproducible run with its own record and key. Modelled on
// AutoTrainer's Keras edits (utils/repair.py): every layer but the output layer is edited;
// the output layer keeps its activation and initialisers.
#pragma once
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "nets/zoo.h"

namespace detdl::nets {

struct NetEdits {
  // Every hidden activation layer becomes this one (empty: unchanged), with `alpha` (NaN:
  // Keras's default for the kind: LeakyReLU 0.3, ELU 1.0, ThresholdedReLU theta 1.0).
  std::string activation;
  float alpha = std::numeric_limits<float>::quiet_NaN();
  // Initialisers of every hidden layer's kernel and bias (empty: unchanged): an InitKind name
  // (engine/init.h) or constant:V.
  std::string kernel_init, bias_init;
  // A batch norm after each hidden layer's activation (AutoTrainer's BN_network inserts
  // BatchNormalization after every Dense / Conv layer but the last, and a Keras Dense
  // carries its activation). Keras's defaults: momentum 0.99, epsilon 1e-3.
  bool batch_norm = false;
  // Gaussian noise of this standard deviation added to the training inputs (Keras's
  // GaussianNoise before the first layer; not at evaluation). 0: none. Drawn from Philox
  // keyed by (the augment seed, RandomStream::input_noise, epoch, sample and element).
  float input_noise = 0.0f;

  bool empty() const {
    return activation.empty() && kernel_init.empty() && bias_init.empty() && !batch_norm &&
           input_noise == 0.0f;
  }
};

// The JSON form (only the fields that are set); edits_from_json throws
// std::invalid_argument naming the field (under `where`) for an unknown field or bad value.
nlohmann::json to_json(const NetEdits& e);
NetEdits edits_from_json(const nlohmann::json& j, const std::string& where);

// Applies the structural and initialiser edits to net.model before it is initialised
// (input_noise is the trainer's: see input_noise_augment). Throws std::invalid_argument
// naming the net when it has no hidden layer the edit can reach (e.g. batch_norm on a net
// whose activations are not layers of a Sequential).
void apply_edits(NetSpec& net, const NetEdits& e);

}  // namespace detdl::nets
