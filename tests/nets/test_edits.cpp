// The doctor's repairs as experiment fields: net edits (nets/edits.h), gradient clipping by
// value, reduce-on-plateau and Gaussian input noise, and the dense:DEPTH:WIDTH[:ACT] nets
// they are tried on. Each is checked against what it must do (values, positions, bounds),
// against Keras's rule where it has one, and for the determinism contract (threads).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/schedule.h"
#include "nets/edits.h"
#include "nets/experiment.h"
#include "nets/zoo.h"

namespace detdl::nets {
namespace {

Experiment dense_run(const std::string& net) {
  Experiment e;
  e.net = net;
  e.data = "blobs";
  e.epochs = 2;
  e.batch_size = 64;
  return e;
}

NetSpec built(const std::string& net, LossKind loss = LossKind::softmax_ce) {
  auto bundle = data::load_data("blobs", {});
  return make_net(net, *bundle, loss);
}

TEST(NetEdits, JsonFormRoundTripsAndRefusesBadFieldsByName) {
  NetEdits e;
  e.activation = "leaky_relu";
  e.alpha = 0.2f;
  e.kernel_init = "he_uniform";
  e.bias_init = "constant:-3";
  e.batch_norm = true;
  e.input_noise = 0.1f;
  const auto j = to_json(e);
  const NetEdits back = edits_from_json(j, "edits");
  EXPECT_EQ(to_json(back), j);
  EXPECT_TRUE(to_json(NetEdits{}).empty());
  auto refused = [](const nlohmann::json& j, const std::string& field) {
    try {
      edits_from_json(j, "x.edits");
    } catch (const std::invalid_argument& ex) {
      EXPECT_NE(std::string(ex.what()).find(field), std::string::npos) << ex.what();
      return;
    }
    ADD_FAILURE() << "accepted " << j.dump();
  };
  refused({{"activation", "swish"}}, "x.edits.activation");
  refused({{"kernel_init", "uniform"}}, "x.edits.kernel_init");
  refused({{"bias_init", "constant:abc"}}, "x.edits.bias_init");
  refused({{"input_noise", -1.0}}, "x.edits.input_noise");
  refused({{"alpha", 0.1}}, "x.edits.alpha");  // without an activation
  refused({{"colour", "red"}}, "colour");
  refused({{"batch_norm", 1}}, "x.edits.batch_norm");
}

TEST(NetEdits, ActivationsChangeButNotTheOutputLayer) {
  NetSpec net = built("dense:3:8:sigmoid", LossKind::bce);
  NetEdits e;
  e.activation = "elu";
  apply_edits(net, e);
  std::vector<std::pair<std::string, float>> acts;
  net.model->visit([&](Module& m) {
    if (auto* a = dynamic_cast<Act*>(&m))
      acts.emplace_back(a->kind() + (a->output() ? "/out" : ""), a->alpha());
  });
  ASSERT_EQ(acts.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(acts[i].first, "elu");
    EXPECT_EQ(acts[i].second, 1.0f);  // Keras's ELU alpha
  }
  EXPECT_EQ(acts[3].first, "sigmoid/out");
}

TEST(NetEdits, BatchNormAfterEachHiddenActivation) {
  NetSpec net = built("dense:2:8");
  NetEdits e;
  e.batch_norm = true;
  apply_edits(net, e);
  std::vector<std::string> names;
  for (const auto& p : net.model->parameters()) names.push_back(p.name);
  // Linear, Act, BN, Linear, Act, BN, Linear: children renamed in order.
  const std::vector<std::string> want{"0.weight", "0.bias",   "2.weight", "2.bias",   "3.weight",
                                      "3.bias",   "5.weight", "5.bias",   "6.weight", "6.bias"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(net.model->parameters()[2].tensor.numel(), 8);  // the norm's scale: 8 units
  EXPECT_EQ(net.model->buffers().size(), 4u);
}

TEST(NetEdits, InitialisersOfHiddenLayersOnly) {
  NetSpec net = built("dense:2:8");
  NetEdits e;
  e.bias_init = "constant:-3";
  e.kernel_init = "zeros";
  apply_edits(net, e);
  net.model->initialize(5);
  const auto params = net.model->parameters();
  for (const auto& p : params) {
    const std::vector<float> v = p.tensor.to_vector();
    const bool output = p.name.rfind("4.", 0) == 0;
    const bool bias = p.tensor.ndim() == 1;
    for (float x : v) {
      if (output) {
        if (bias) {
          EXPECT_EQ(x, 0.0f) << p.name;  // Keras's default: zeros
        }
      } else {
        EXPECT_EQ(x, bias ? -3.0f : 0.0f) << p.name;
      }
    }
    if (output && !bias) {
      double s = 0;
      for (float x : v) s += std::fabs(x);
      EXPECT_GT(s, 0.0) << "the output kernel keeps its Glorot init";
    }
  }
}

TEST(NetEdits, RefusedWhereNothingCanChange) {
  NetSpec net = built("dense:2:8");
  NetEdits e;
  e.activation = "tanh";
  auto lenetless = built("mlp:8");
  EXPECT_NO_THROW(apply_edits(lenetless, e));
  // A net without hidden activations (none here is such; build one by hand).
  NetSpec bare;
  bare.name = "bare";
  auto seq = std::make_shared<Sequential>();
  seq->emplace<Linear>(2, 2);
  bare.model = seq;
  EXPECT_THROW(apply_edits(bare, e), std::invalid_argument);
  NetEdits bn;
  bn.batch_norm = true;
  EXPECT_THROW(apply_edits(bare, bn), std::invalid_argument);
}

TEST(DenseNet, BuildsAndRefusesBadSpecsByName) {
  NetSpec n = built("dense:4:16:tanh");
  int acts = 0;
  n.model->visit([&](Module& m) {
    if (auto* a = dynamic_cast<Act*>(&m)) {
      EXPECT_EQ(a->kind(), "tanh");
      ++acts;
    }
  });
  EXPECT_EQ(acts, 4);
  for (const char* bad :
       {"dense:4", "dense:0:8", "dense:2:8:swish", "dense:2:8:identity", "dense:x:8"}) {
    try {
      built(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const std::invalid_argument& ex) {
      EXPECT_NE(std::string(ex.what()).find(bad), std::string::npos) << ex.what();
    }
  }
}

TEST(Repairs, EditedRunsAreThreadInvariantAndTheFormKeepsOldKeys) {
  Experiment e = dense_run("dense:3:16:sigmoid");
  const std::string plain_form = to_json(e).dump();
  EXPECT_EQ(plain_form.find("edits"), std::string::npos);
  EXPECT_EQ(plain_form.find("plateau"), std::string::npos);
  EXPECT_EQ(plain_form.find("clip_value"), std::string::npos);
  const auto plain = run_experiment(e);
  e.edits.activation = "selu";
  e.edits.kernel_init = "lecun_uniform";
  e.edits.batch_norm = true;
  e.edits.input_noise = 0.1f;
  e.optimizer.clip_value = 0.5f;
  e.plateau.on = true;
  e.plateau.patience = 1;
  const Experiment back = experiment_from_json(to_json(e));
  EXPECT_EQ(to_json(back), to_json(e));
  const auto one = run_experiment(e);
  e.threads = 2;
  const auto two = run_experiment(e);
  EXPECT_EQ(one.result.weight_hash, two.result.weight_hash);
  EXPECT_NE(one.result.weight_hash, plain.result.weight_hash);
  EXPECT_EQ(one.record["net"]["edits"]["activation"], "selu");
}

TEST(Repairs, ClippedUpdatesAreBoundedByRateTimesClip) {
  // Plain SGD, rate 1, clip 1e-4: no weight may move more than steps * 1e-4.
  Experiment e = dense_run("dense:2:16");
  e.optimizer.kind = OptimizerConfig::Kind::sgd;
  e.optimizer.momentum = 0.0f;
  e.schedule.base_lr = 1.0f;
  e.optimizer.clip_value = 1e-4f;
  e.epochs = 1;
  RunOptions keep;
  keep.keep_weights_up_to = 100000;
  Experiment start = e;
  start.epochs = 0;
  const auto w0 = run_experiment(start, keep).final_weights;
  const auto out = run_experiment(e, keep);
  const auto& w1 = out.final_weights;
  ASSERT_EQ(w0.size(), w1.size());
  double worst = 0;
  for (std::size_t i = 0; i < w0.size(); ++i)
    worst = std::max(worst, double(std::fabs(w1[i] - w0[i])));
  // Each float update w - lr * g rounds by half an ulp of w (~1e-8 here): 0.1% slack.
  EXPECT_LE(worst, static_cast<double>(out.result.steps) * 1e-4 * (1 + 1e-3));
  EXPECT_GT(worst, 0.0);
  // Without the clip the same rate moves weights far more.
  e.optimizer.clip_value = 0.0f;
  const auto free = run_experiment(e, keep).final_weights;
  double worst_free = 0;
  for (std::size_t i = 0; i < w0.size(); ++i)
    worst_free = std::max(worst_free, double(std::fabs(free[i] - w0[i])));
  EXPECT_GT(worst_free, 10 * worst);
}

TEST(Repairs, PlateauFollowsKerasReduceLROnPlateau) {
  // factor 0.2, patience 2, min_lr 0.001, min_delta 1e-4, rate 0.1.
  Plateau p;
  p.on = true;
  p.patience = 2;
  PlateauState s;
  const float lr = 0.1f;
  const std::vector<double> losses{1.0, 0.9, 0.95, 0.9, 0.85, 0.86, 0.87, 0.9, 0.9, 0.9, 0.9};
  std::vector<float> rates;
  for (double l : losses) {
    const float now = s.apply(lr);
    rates.push_back(now);
    s.update(p, now, l);
  }
  // best 1.0, 0.9; 0.95 wait 1; 0.9 (not < 0.9 - 1e-4) wait 2 -> 0.02; 0.85 best;
  // 0.86 wait 1; 0.87 wait 2 -> 0.004; 0.9 w1; 0.9 w2 -> max(0.0008, 0.001) = 0.001; then
  // at the floor nothing changes.
  const std::vector<float> want{0.1f,  0.1f,   0.1f,   0.1f,   0.02f, 0.02f,
                                0.02f, 0.004f, 0.004f, 0.001f, 0.001f};
  ASSERT_EQ(rates.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(rates[i], want[i]) << i;
  // Off: nothing moves.
  PlateauState off;
  off.update(Plateau{}, 0.1f, 1.0);
  off.update(Plateau{}, 0.1f, 2.0);
  EXPECT_EQ(off.apply(0.1f), 0.1f);
}

TEST(Repairs, PlateauRefusesCheckpointsAndClipRefusesCuda) {
  Experiment e = dense_run("dense:2:8");
  e.plateau.on = true;
  RunOptions o;
  o.checkpoint_path = testing::TempDir() + "/plateau.safetensors";
  EXPECT_THROW(run_experiment(e, o), std::invalid_argument);
  nlohmann::json j = to_json(e);
  j["plateau"]["factor"] = 1.5;
  EXPECT_THROW(experiment_from_json(j), std::invalid_argument);
  j["plateau"]["factor"] = 0.5;
  j["plateau"]["patience"] = 0;
  EXPECT_THROW(experiment_from_json(j), std::invalid_argument);
  j = to_json(e);
  j["optimizer"]["clip_value"] = -1.0;
  EXPECT_THROW(experiment_from_json(j), std::invalid_argument);
}

TEST(Repairs, InputNoiseIsKeyedByItsSeedAndChangesOnlyTraining) {
  Experiment e = dense_run("dense:2:16");
  e.edits.input_noise = 0.5f;
  const auto a = run_experiment(e);
  const auto b = run_experiment(e);
  EXPECT_EQ(a.result.weight_hash, b.result.weight_hash);
  Experiment other = e;
  other.seeds.augment = 2;
  EXPECT_NE(run_experiment(other).result.weight_hash, a.result.weight_hash);
  Experiment none = e;
  none.edits.input_noise = 0.0f;
  EXPECT_NE(run_experiment(none).result.weight_hash, a.result.weight_hash);
}

}  // namespace
}  // namespace detdl::nets
