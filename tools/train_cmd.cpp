// `detdl train`: one training run on a generated data set, printing per-epoch progress and
// the final weight hash. (Real data sets and the study networks come with nets/.)
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>

#include "engine/checkpoint.h"
#include "engine/hash.h"
#include "kernels/cpu/parallel.h"
#include "nets/simple.h"
#include "nets/synthetic.h"
#include "tools/commands.h"

namespace detdl::tools {
namespace {

struct TrainArgs {
  std::string net = "mlp";
  std::int64_t epochs = 5, batch = 32, n_train = 2000, n_test = 500;
  std::string optimizer = "sgd";
  float lr = 0.05f, momentum = 0.9f, weight_decay = 0.0f, eps = -1.0f, dropout = 0.0f;
  bool nesterov = false;
  std::string level = "portable";
  std::vector<std::string> fast_ops;
  int threads = 1;
  std::uint64_t init_seed = 1, order_seed = 1, dropout_seed = 1, data_seed = 7;
  std::string checkpoint, schedule = "constant";
  bool resume = false;
  std::int64_t stop_after = -1, checkpoint_every = 0;
  bool quiet = false;
};

int run_train(const TrainArgs& a) {
  TrainConfig cfg;
  cfg.epochs = a.epochs;
  cfg.batch_size = a.batch;
  const auto level = parse_level(a.level);
  if (!level) throw std::invalid_argument("--level: expected portable, repeatable or fast, got '" + a.level + "'");
  cfg.context.set_level(*level);
  for (const auto& f : a.fast_ops) {
    const auto fam = parse_op_family(f);
    if (!fam) throw std::invalid_argument("--fast-op: unknown op family '" + f + "' (matmul, conv_wgrad, bias_grad, norm_stats, loss_reduce, optimizer)");
    cfg.context.level_of[static_cast<int>(*fam)] = Level::fast;
  }
  const auto kind = parse_optimizer(a.optimizer);
  if (!kind) throw std::invalid_argument("--optimizer: expected sgd, adam or rmsprop, got '" + a.optimizer + "'");
  cfg.optimizer.kind = *kind;
  cfg.optimizer.momentum = a.momentum;
  cfg.optimizer.nesterov = a.nesterov;
  cfg.optimizer.weight_decay = a.weight_decay;
  if (a.eps > 0.0f) cfg.optimizer.eps = a.eps;
  cfg.schedule.base_lr = a.lr;
  if (a.schedule == "cosine") {
    cfg.schedule.kind = Schedule::Kind::cosine;
    cfg.schedule.t_max = a.epochs;
  } else if (a.schedule == "step") {
    cfg.schedule.kind = Schedule::Kind::step;
    cfg.schedule.step_size = std::max<std::int64_t>(1, a.epochs / 3);
  } else if (a.schedule != "constant") {
    throw std::invalid_argument("--schedule: expected constant, step or cosine, got '" + a.schedule + "'");
  }
  cfg.init_seed = a.init_seed;
  cfg.order_seed = a.order_seed;
  cfg.dropout_seed = a.dropout_seed;
  cfg.threads = a.threads;
  cfg.checkpoint_path = a.checkpoint;
  cfg.checkpoint_every = a.checkpoint_every;
  cfg.stop_after_steps = a.stop_after;

  std::shared_ptr<Module> model;
  Dataset train, test;
  if (a.net == "mlp") {
    // One draw of train + test, split: both come from the same blobs.
    const Dataset all = nets::make_blobs(a.n_train + a.n_test, 16, 4, 1.5f, a.data_seed);
    train = slice_rows(all, 0, a.n_train);
    test = slice_rows(all, a.n_train, a.n_train + a.n_test);
    model = nets::make_mlp(16, 64, 4, a.dropout);
  } else if (a.net == "cnn") {
    const Dataset all = nets::make_bar_images(a.n_train + a.n_test, 1, 12, 6, a.data_seed);
    train = slice_rows(all, 0, a.n_train);
    test = slice_rows(all, a.n_train, a.n_train + a.n_test);
    model = nets::make_small_cnn(1, 6);
  } else {
    throw std::invalid_argument("--net: expected mlp or cnn, got '" + a.net + "'");
  }
  if (!a.quiet)
    std::printf("detdl train: net=%s params=%lld level=%s threads=%d optimizer=%s lr=%g batch=%lld epochs=%lld\n",
                a.net.c_str(), static_cast<long long>(model->parameter_count()), a.level.c_str(), a.threads,
                cfg.optimizer.describe().c_str(), a.lr, static_cast<long long>(a.batch), static_cast<long long>(a.epochs));
  Trainer trainer(*model, cfg);
  const auto t0 = std::chrono::steady_clock::now();
  auto result = trainer.fit(train, &test, a.resume, [&](const EpochStats& s) {
    if (a.quiet) return;
    std::printf("epoch %3lld  loss %.6f  acc %.4f  test_loss %.6f  test_acc %.4f  %.2fs  %.0f samples/s  hash %s\n",
                static_cast<long long>(s.epoch + 1), s.train_loss, s.train_accuracy, s.test_loss, s.test_accuracy,
                s.seconds, static_cast<double>(train.size()) / s.seconds, s.weight_hash.c_str());
    std::fflush(stdout);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (result.stopped_early) std::printf("stopped after step %lld (checkpoint %s)\n", static_cast<long long>(result.steps), a.checkpoint.c_str());
  std::printf("weight hash %s  steps %lld  %.2fs\n", result.weight_hash.c_str(), static_cast<long long>(result.steps), secs);
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "train one model and print its loss and weight hash");
  c->add_option("--net", a->net, "model: mlp (blobs data) or cnn (bar images)")->capture_default_str();
  c->add_option("--epochs", a->epochs, "epochs")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--batch-size", a->batch, "mini-batch size")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--train-size", a->n_train, "generated training samples")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--test-size", a->n_test, "generated test samples")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--optimizer", a->optimizer, "sgd, adam or rmsprop")->capture_default_str();
  c->add_option("--lr", a->lr, "learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--momentum", a->momentum, "SGD / RMSprop momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  c->add_flag("--nesterov", a->nesterov, "Nesterov momentum");
  c->add_option("--weight-decay", a->weight_decay, "L2 weight decay added to gradients")->check(CLI::NonNegativeNumber);
  c->add_option("--eps", a->eps, "Adam / RMSprop epsilon (PyTorch 1e-8, Keras 1e-7)");
  c->add_option("--dropout", a->dropout, "dropout rate in the MLP")->check(CLI::Range(0.0, 0.95));
  c->add_option("--schedule", a->schedule, "constant, step or cosine")->capture_default_str();
  c->add_option("--level", a->level, "determinism level: portable, repeatable or fast")->capture_default_str();
  c->add_option("--fast-op", a->fast_ops, "run this op family at the fast level (repeatable)");
  c->add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 1024))->capture_default_str();
  c->add_option("--init-seed", a->init_seed, "weight initialisation seed")->capture_default_str();
  c->add_option("--order-seed", a->order_seed, "data order seed")->capture_default_str();
  c->add_option("--dropout-seed", a->dropout_seed, "dropout seed")->capture_default_str();
  c->add_option("--data-seed", a->data_seed, "generated data seed")->capture_default_str();
  c->add_option("--checkpoint", a->checkpoint, "safetensors checkpoint written at each epoch end");
  c->add_option("--checkpoint-every", a->checkpoint_every, "also every N steps")->check(CLI::NonNegativeNumber);
  c->add_flag("--resume", a->resume, "resume from --checkpoint if it exists");
  c->add_option("--stop-after", a->stop_after, "stop after this many steps (after checkpointing)");
  c->add_flag("--quiet", a->quiet, "print only the final line");
  c->callback([a] { run_train(*a); });
}

void add_hash_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("hash", "print the weight hash stored in a checkpoint and verify it");
  c->add_option("checkpoint", *path, "safetensors file")->required();
  c->callback([path] {
    const TensorFile f = load_safetensors(*path);
    Fnv1a64 h;
    for (const auto& [name, t] : f.tensors)
      if (name.rfind("model.", 0) == 0) h.update_tensor(name.substr(6), t);
    auto it = f.metadata.find("model.hash");
    std::printf("%s  %s", h.hex().c_str(), path->c_str());
    if (it != f.metadata.end() && it->second != h.hex()) {
      std::printf("  (MISMATCH: header says %s)\n", it->second.c_str());
      throw std::runtime_error("checkpoint " + *path + ": weight hash does not match the one recorded");
    }
    std::printf("\n");
  });
}

}  // namespace detdl::tools
