// `detdl train`: one training run of any net on any data set (nets/experiment.h), built
// from a preset, a JSON config file and flags (in that order, later ones winning). Prints
// per-epoch progress and the final weight hash, and writes a JSON run record.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>

#include <unistd.h>

#include "engine/atomic_file.h"
#include "engine/checkpoint.h"
#include "engine/cuda_backend.h"
#include "doctor/live.h"
#include "doctor/repair.h"
#include "engine/hash.h"
#include "nets/experiment.h"
#include "nets/zoo.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/progress.h"

namespace detdl::tools {
namespace {

struct TrainFlags {
  std::string preset, config, record;
  nets::Experiment e;  // flag values land here; only those given are applied
  std::string optimizer, level, schedule, loss, device, impl;
  std::vector<std::string> fast_ops, emulated_ops;
  std::uint64_t seed = 1;
  std::string checkpoint;
  bool resume = false, quiet = false, no_metrics = false, print_config = false, keras_optim = false,
       force = false;
  std::string progress = "auto";
  std::int64_t stop_after = -1, checkpoint_every = 0;
  std::string doctor;         // --doctor autotrainer | detdl
  bool doctor_watch = false;  // diagnose without stopping
  double doctor_theta = 0.7;  // the accuracy target
  std::int64_t monitor = 0;   // --monitor N: probe every N epochs
  bool repair = false;        // --repair: AutoTrainer's repair loop after a diagnosis
  std::uint64_t repair_seed = 1;
  std::map<std::string, CLI::Option*> opt;  // by long name, to ask whether a flag was given
};

bool given(const TrainFlags& f, const std::string& name) {
  auto it = f.opt.find(name);
  return it != f.opt.end() && it->second->count() > 0;
}

// "multistep:60,120,160:0.2", "step:30:0.1", "cosine", "constant".
void parse_schedule(const std::string& s, Schedule& out, std::int64_t epochs) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto p = s.find(':', start);
    parts.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  const std::string usage =
      "--schedule: expected constant, cosine, step:EVERY[:GAMMA] or multistep:E1,E2,...[:GAMMA], "
      "got '" +
      s + "'";
  try {
    if (parts[0] == "constant" && parts.size() == 1) {
      out.kind = Schedule::Kind::constant;
    } else if (parts[0] == "cosine" && parts.size() == 1) {
      out.kind = Schedule::Kind::cosine;
      out.t_max = std::max<std::int64_t>(1, epochs);
    } else if (parts[0] == "step" && parts.size() >= 2 && parts.size() <= 3) {
      out.kind = Schedule::Kind::step;
      out.step_size = std::stoll(parts[1]);
      if (parts.size() == 3) out.gamma = std::stof(parts[2]);
      if (out.step_size < 1) throw std::invalid_argument("step");
    } else if (parts[0] == "multistep" && parts.size() >= 2 && parts.size() <= 3) {
      out.kind = Schedule::Kind::multistep;
      out.milestones.clear();
      std::size_t b = 0;
      const std::string& m = parts[1];
      for (;;) {
        const auto c = m.find(',', b);
        out.milestones.push_back(
            std::stoll(m.substr(b, c == std::string::npos ? std::string::npos : c - b)));
        if (c == std::string::npos) break;
        b = c + 1;
      }
      if (parts.size() == 3) out.gamma = std::stof(parts[2]);
    } else {
      throw std::invalid_argument("shape");
    }
  } catch (const std::exception&) {
    throw std::invalid_argument(usage);
  }
}

// "flags.optimizer.momentum: ..." -> "--momentum: ...": a value from a flag is named by the flag.
std::string flag_message(const std::string& what) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"flags.schedule.lr", "--lr"},
      {"flags.schedule.", "--schedule"},
      {"flags.optimizer.momentum", "--momentum"},
      {"flags.optimizer.weight_decay", "--weight-decay"},
      {"flags.optimizer.eps", "--eps"},
      {"flags.optimizer.", "--optimizer"},
      {"flags.epochs", "--epochs"},
      {"flags.batch_size", "--batch-size"},
      {"flags.label_noise", "--label-noise"},
      {"flags.validation_rows", "--validation-rows"},
      {"flags.threads", "--threads"},
      {"flags.flush_subnormals", "--flush-subnormals"},
      {"flags.level", "--level"},
      {"flags.emulated_ops", "--emulated-op"},
      {"flags.l1", "--l1"},
      {"flags.l2", "--l2"},
      {"flags.preprocess", "--preprocess"},
      {"flags.loss", "--loss"},
      {"flags.augment", "--augment"},
      {"flags.net", "--net"},
      {"flags.data", "--data"}};
  for (const auto& [path, flag] : kFlags) {
    const std::string p(path);
    if (what.rfind(p, 0) != 0) continue;
    const auto colon = what.find(": ");
    const std::string field =
        what.substr(6, colon == std::string::npos ? std::string::npos : colon - 6);
    const std::string rest = colon == std::string::npos ? what : what.substr(colon + 2);
    // A prefix match (schedule., optimizer.) keeps the field's name: "--schedule (gamma): ...".
    return p.back() == '.' ? std::string(flag) + " (" + field + "): " + rest
                           : std::string(flag) + ": " + rest;
  }
  return what;
}

nets::Experiment build_experiment(const TrainFlags& f) {
  nets::Experiment e;
  if (!f.preset.empty()) {
    e = nets::preset(f.preset);
  } else {
    // Without a preset: the engine's quick defaults (the MLP on blobs learns in 5 epochs).
    e.optimizer.momentum = 0.9f;
    e.schedule.base_lr = 0.05f;
  }
  if (!f.config.empty()) {
    std::ifstream in(f.config);
    if (!in) throw std::runtime_error("--config: cannot read " + f.config);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& ex) {
      throw std::runtime_error("--config " + f.config + ": not valid JSON: " + ex.what());
    }
    // The config file starts from the preset's (or default) values: fields it leaves out keep
    // them. A null would delete the preset's value (merge-patch) and so is refused.
    nets::reject_nulls(j, f.config);
    nlohmann::json base = nets::to_json(e);
    base.merge_patch(j);
    e = nets::experiment_from_json(base, f.config);
  }
  const auto& v = f.e;
  if (given(f, "--net")) e.net = v.net;
  if (given(f, "--data")) e.data = v.data;
  if (given(f, "--data-dir")) e.data_dir = v.data_dir;
  if (given(f, "--preprocess")) e.preprocess = v.preprocess;
  if (given(f, "--study-split")) e.study_split = v.study_split;
  if (given(f, "--validation-rows")) e.validation_rows = v.validation_rows;
  if (given(f, "--augment")) e.augment = v.augment;
  if (given(f, "--label-noise")) e.label_noise = v.label_noise;
  if (given(f, "--epochs")) e.epochs = v.epochs;
  if (given(f, "--batch-size")) e.batch_size = v.batch_size;
  if (given(f, "--loss")) e.loss = f.loss;
  if (given(f, "--optimizer")) {
    const auto k = parse_optimizer(f.optimizer);
    if (!k)
      throw std::invalid_argument("--optimizer: expected sgd, adam or rmsprop, got '" +
                                  f.optimizer + "'");
    e.optimizer.kind = *k;
  }
  if (given(f, "--lr")) e.schedule.base_lr = v.schedule.base_lr;
  if (given(f, "--momentum")) e.optimizer.momentum = v.optimizer.momentum;
  if (given(f, "--nesterov")) e.optimizer.nesterov = v.optimizer.nesterov;
  if (given(f, "--weight-decay")) e.optimizer.weight_decay = v.optimizer.weight_decay;
  if (given(f, "--eps")) e.optimizer.eps = v.optimizer.eps;
  if (given(f, "--keras-optim")) e.optimizer.keras_form = f.keras_optim;
  if (given(f, "--schedule")) parse_schedule(f.schedule, e.schedule, e.epochs);
  if (given(f, "--l1")) e.l1 = v.l1;
  if (given(f, "--l2")) e.l2 = v.l2;
  if (given(f, "--seed"))  // the six algorithmic seeds; the impl seed has its own flag
    e.seeds.init = e.seeds.order = e.seeds.augment = e.seeds.dropout = e.seeds.label_noise =
        e.seeds.split = f.seed;
  if (given(f, "--init-seed")) e.seeds.init = v.seeds.init;
  if (given(f, "--order-seed")) e.seeds.order = v.seeds.order;
  if (given(f, "--augment-seed")) e.seeds.augment = v.seeds.augment;
  if (given(f, "--dropout-seed")) e.seeds.dropout = v.seeds.dropout;
  if (given(f, "--label-noise-seed")) e.seeds.label_noise = v.seeds.label_noise;
  if (given(f, "--split-seed")) e.seeds.split = v.seeds.split;
  if (given(f, "--impl-seed")) e.seeds.impl = v.seeds.impl;
  if (given(f, "--level")) {
    const auto l = parse_level(f.level);
    if (!l)
      throw std::invalid_argument(
          "--level: expected portable, repeatable, fast or emulated, got '" + f.level + "'");
    e.level = *l;
  }
  for (const auto& s : f.fast_ops) {
    const auto fam = parse_op_family(s);
    if (!fam)
      throw std::invalid_argument("--fast-op: unknown op family '" + s + "' (" +
                                  fast_op_family_names() + ")");
    e.fast_ops.push_back(*fam);
  }
  for (const auto& s : f.emulated_ops) {
    const auto fam = parse_impl_family(s);
    if (!fam)
      throw std::invalid_argument("--emulated-op: unknown implementation family '" + s + "' (" +
                                  impl_family_names() + ")");
    if (std::find(e.emulated_ops.begin(), e.emulated_ops.end(), *fam) == e.emulated_ops.end())
      e.emulated_ops.push_back(*fam);
  }
  if (given(f, "--threads")) e.threads = v.threads;
  if (given(f, "--flush-subnormals")) e.flush_subnormals = v.flush_subnormals;
  if (given(f, "--device")) e.device = parse_device(f.device, "--device");
  if (given(f, "--impl")) {
    if (f.impl == "own")
      e.implementation = Implementation::own;
    else if (f.impl == "vendor")
      e.implementation = Implementation::vendor;
    else
      throw std::invalid_argument("--impl: expected own or vendor, got '" + f.impl + "'");
  }
  if (f.no_metrics) e.metrics = false;
  // Round-trip through the JSON reader: the same checks as a config file, with the field
  // named by the flag that set it.
  try {
    return nets::experiment_from_json(nets::to_json(e), "flags");
  } catch (const std::invalid_argument& ex) {
    throw std::invalid_argument(flag_message(ex.what()));
  }
}

// The output files are checked before anything is loaded or trained: a run is never lost
// to a missing folder, and nothing is overwritten without --force.
void check_outputs(const TrainFlags& f) {
  if (f.checkpoint.empty()) {
    if (f.resume)
      throw std::invalid_argument(
          "--resume needs --checkpoint PATH (the checkpoint to resume from)");
    if (f.checkpoint_every > 0)
      throw std::invalid_argument("--checkpoint-every needs --checkpoint PATH");
  } else {
    // With --resume an existing checkpoint is the point; without it, it is someone's run.
    check_output_path(f.checkpoint, f.resume || f.force, "--checkpoint");
  }
  if (!f.record.empty()) check_output_path(f.record, f.force, "--record");
  if (!f.record.empty() && f.record == f.checkpoint)
    throw std::invalid_argument("--record and --checkpoint name the same file " + f.record);
}

// The doctor's flags that need no data: checked before anything is loaded or trained.
void check_doctor_flags(const TrainFlags& f) {
  if (!(f.doctor_theta >= 0.0 && f.doctor_theta <= 1.0))
    throw std::invalid_argument("--doctor-theta: expected an accuracy in [0, 1], got " +
                                std::to_string(f.doctor_theta));
  if (f.doctor_watch && f.doctor.empty())
    throw std::invalid_argument("--doctor-watch needs --doctor autotrainer or --doctor detdl");
}

// --doctor, --doctor-theta and --doctor-watch as the doctor's options (--doctor given).
doctor::DoctorOptions doctor_options(const TrainFlags& f) {
  const auto kind = doctor::parse_doctor(f.doctor);
  if (!kind)
    throw std::invalid_argument("--doctor: expected autotrainer or detdl, got '" + f.doctor + "'");
  doctor::DoctorOptions o;
  o.kind = *kind;
  o.params.theta = f.doctor_theta;
  o.stop = !f.doctor_watch;
  return o;
}

// --repair: the doctor's repair loop (doctor/repair.h); one line per run, the record of the
// run that solved it (else of the original) with the whole loop under "repair".
int run_repair(const TrainFlags& f, const nets::Experiment& e) {
  if (f.doctor.empty()) throw std::invalid_argument("--repair needs --doctor autotrainer or detdl");
  if (f.doctor_watch) throw std::invalid_argument("--repair and --doctor-watch exclude each other");
  if (!f.checkpoint.empty() || f.resume || f.stop_after >= 0)
    throw std::invalid_argument(
        "--repair: no --checkpoint, --resume or --stop-after (every "
        "repaired run starts afresh)");
  doctor::RepairOptions o;
  o.doctor = doctor_options(f);
  o.repair_seed = f.repair_seed;
  nlohmann::json chosen;
  o.on_run = [&](const doctor::RepairTry* t, const nets::RunOutput& out) {
    const auto& d = out.record["doctor"]["diagnosis"];
    const std::string verdict = d.is_null()
                                    ? "no problem"
                                    : d["problems"][0].get<std::string>() + " after epoch " +
                                          std::to_string(d["epoch"].get<std::int64_t>());
    if (t == nullptr) {
      std::printf("original: %s  (hash %s)\n", verdict.c_str(), out.result.weight_hash.c_str());
      chosen = out.record;
    } else {
      std::printf("round %d, %s try %d (%s): %s  (hash %s)\n", t->round, t->solution.c_str(),
                  t->attempt + 1, t->describe.c_str(), verdict.c_str(),
                  out.result.weight_hash.c_str());
      if (d.is_null()) chosen = out.record;
    }
    std::fflush(stdout);
  };
  const doctor::RepairResult r = doctor::repair(e, o);
  chosen["repair"] = doctor::to_json(r);
  if (!f.record.empty())
    write_file_atomically(f.record, chosen.dump(1) + "\n", "--record " + f.record);
  if (!r.initial)
    std::printf("doctor (%s): no problem found, nothing to repair\n", f.doctor.c_str());
  else if (r.solved)
    std::printf("repaired in %zu runs: %s\n", r.tries.size(), r.tries.back().describe.c_str());
  else
    std::printf("not repaired after %zu runs (%d rounds)\n", r.tries.size(), r.rounds);
  return 0;
}

int run_train(const TrainFlags& f) {
  const nets::Experiment e = build_experiment(f);
  if (f.print_config) {
    std::cout << nets::to_json(e).dump(2) << "\n";
    return 0;
  }
  // Before any data is loaded: no CUDA build or no device is an error naming the option.
  if (e.device == Device::cuda) gpu::require("--device cuda");
  if (e.implementation == Implementation::vendor && e.device != Device::cuda)
    throw std::invalid_argument(
        "--impl vendor needs --device cuda (cuBLAS/cuDNN run only on the GPU; CPU runs "
        "always use the own kernels)");
  check_outputs(f);
  check_doctor_flags(f);
  if (f.repair) return run_repair(f, e);
  const bool resuming = f.resume && std::filesystem::exists(f.checkpoint);
  if (f.resume && !resuming && !f.quiet)
    std::printf("no checkpoint at %s yet: starting from step 0\n", f.checkpoint.c_str());
  ProgressLine progress(f.progress == "on" ||
                        (f.progress == "auto" && !f.quiet && ::isatty(STDOUT_FILENO)));
  nets::RunOptions ro;
  ro.on_step = [&](const StepProgress& p) { progress.update(p); };
  ro.checkpoint_path = f.checkpoint;
  ro.checkpoint_every = f.checkpoint_every;
  ro.resume = f.resume;
  ro.stop_after_steps = f.stop_after;
  if (f.monitor > 0) ro.monitor.every = f.monitor;
  std::optional<doctor::LiveDoctor> live;
  if (!f.doctor.empty()) {
    live.emplace(e, doctor_options(f));
    live->attach(ro);  // its probes replace --monitor's
  }
  std::int64_t train_rows = 0;
  ro.on_epoch = [&](const EpochStats& s) {
    progress.clear();
    if (f.quiet) return;
    std::printf("epoch %3lld/%lld  loss %.6f  acc %.4f", static_cast<long long>(s.epoch + 1),
                static_cast<long long>(e.epochs), s.train_loss, s.train_accuracy);
    if (s.has_validation)
      std::printf("  val_loss %.6f  val_acc %.4f", s.validation.loss, s.validation.accuracy);
    if (s.has_test) std::printf("  test_loss %.6f  test_acc %.4f", s.test_loss, s.test_accuracy);
    std::printf("  %.2fs  %.0f samples/s  hash %s\n", s.seconds,
                s.train_seconds > 0 ? static_cast<double>(train_rows) / s.train_seconds : 0.0,
                s.weight_hash.c_str());
    std::fflush(stdout);
  };
  ro.on_start = [&](const data::DataBundle& bundle, const nets::NetSpec& net) {
    train_rows = bundle.train.size();
    if (f.quiet) return;
    std::printf("detdl train: net=%s (%s) params=%lld\n", e.net.c_str(), net.description.c_str(),
                static_cast<long long>(net.model->parameter_count()));
    const std::string val =
        bundle.has_validation ? " validation=" + std::to_string(bundle.validation.size()) : "";
    std::printf(
        "  data=%s (%s) train=%lld test=%lld%s\n  level=%s device=%s threads=%d  %s  lr %s  "
        "batch=%lld epochs=%lld\n",
        e.data.c_str(), bundle.source.c_str(), static_cast<long long>(bundle.train.size()),
        static_cast<long long>(bundle.test.size()), val.c_str(),
        std::string(level_name(e.level)).c_str(), std::string(device_name(e.device)).c_str(),
        e.threads, e.optimizer.describe().c_str(), e.schedule.describe().c_str(),
        static_cast<long long>(e.batch_size), static_cast<long long>(e.epochs));
    if (e.flush_subnormals)
      std::printf("  flush_subnormals: subnormal floats flushed to zero (TensorFlow's CPU)\n");
    if (resuming) std::printf("  resuming from %s\n", f.checkpoint.c_str());
    std::fflush(stdout);
  };
  nets::RunOutput out = nets::run_experiment(e, ro);
  progress.clear();
  if (live) {
    out.record["doctor"] = live->record_entry();
    if (const auto& d = live->diagnosis())
      std::printf("doctor (%s): %s after epoch %lld: %s%s\n", f.doctor.c_str(),
                  std::string(doctor::problem_name(d->problems.front())).c_str(),
                  static_cast<long long>(d->epoch + 1), d->reason.c_str(),
                  f.doctor_watch ? " (watching: the run went on)" : "; the run stopped there");
    else
      std::printf("doctor (%s): no problem found\n", f.doctor.c_str());
  }
  if (out.result.resumed)
    std::printf("resumed from step %lld of %s\n", static_cast<long long>(out.result.first_step),
                f.checkpoint.c_str());
  if (out.result.nonfinite_loss_steps > 0)
    std::printf("warning: the training loss was NaN or infinite in %lld steps (the run diverged)\n",
                static_cast<long long>(out.result.nonfinite_loss_steps));
  // Written whole to a unique temporary name, then renamed: a reader never sees half a record.
  if (!f.record.empty())
    write_file_atomically(f.record, out.record.dump(1) + "\n", "--record " + f.record);
  if (out.result.stopped_early && !out.result.stopped_after_epoch)
    std::printf("stopped after step %lld (checkpoint %s)\n",
                static_cast<long long>(out.result.steps), f.checkpoint.c_str());
  std::printf("weight hash %s  steps %lld  %.2fs\n", out.result.weight_hash.c_str(),
              static_cast<long long>(out.result.steps),
              out.record["timings"]["total_seconds"].get<double>());
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* c = app.add_subcommand(
      "train", "train one net on one data set; print progress and the weight hash");
  auto& o = f->opt;
  auto& v = f->e;
  c->add_option("--preset", f->preset,
                "start from a preset: lenet1, lenet4, lenet5, resnet20, resnet38, resnet56, "
                "wrn-28-10, butter");
  c->add_option(
      "--config", f->config,
      "JSON experiment file (fields as in the run record's \"experiment\"); flags override it");
  o["--net"] = c->add_option("--net", v.net,
                             "net: mlp[:H], cnn, lenet1|4|5[:keras|:classic], resnetD, "
                             "wrn-D-K[:DROP], butter:SHAPE:DEPTH:SIZE (default mlp)");
  o["--data"] = c->add_option(
      "--data", v.data,
      "data set: blobs, bars, synthetic-mnist[:N], synthetic-cifar10[:N], mnist, fashion-mnist, "
      "cifar10[:DIR], cifar100[:DIR], pmlb:NAME, NAME, FILE.tsv.gz, IDX-DIR (default blobs)");
  o["--data-dir"] =
      c->add_option("--data-dir", v.data_dir,
                    "root of named data sets (default $DETDL_DATA_DIR or ../shared/data)");
  o["--preprocess"] =
      c->add_option("--preprocess", v.preprocess, "none, pixel-mean or channel-std");
  o["--study-split"] = c->add_flag("--study-split", v.study_split,
                                   "validation = first 7,500 test images, test = last 2,500");
  o["--validation-rows"] =
      c->add_option("--validation-rows", v.validation_rows,
                    "validation metrics over the first N validation rows only (the dl-variance "
                    "study's generator saw 7,424; default 0: every row)")
          ->check(integer_text());
  o["--augment"] = c->add_option("--augment", v.augment,
                                 "none, crop-flip, shift-flip:FRAC, shift-reflect-flip:FRAC "
                                 "(Keras's continuous shifts), shift-int-flip:FRAC, "
                                 "shift-int-reflect-flip:FRAC (whole pixels)");
  o["--label-noise"] =
      c->add_option("--label-noise", v.label_noise, "fraction of training targets disturbed")
          ->check(number_text());
  o["--epochs"] = c->add_option("--epochs", v.epochs, "epochs")->check(integer_text());
  o["--batch-size"] =
      c->add_option("--batch-size", v.batch_size, "mini-batch size")->check(integer_text());
  o["--loss"] = c->add_option(
      "--loss", f->loss,
      "auto, softmax_ce, keras_ce (Keras 2.2.2's clipped categorical cross-entropy), bce or mse");
  o["--optimizer"] = c->add_option("--optimizer", f->optimizer, "sgd, adam or rmsprop");
  o["--lr"] = c->add_option("--lr", v.schedule.base_lr, "learning rate")->check(number_text());
  o["--momentum"] = c->add_option("--momentum", v.optimizer.momentum, "SGD / RMSprop momentum")
                        ->check(number_text());
  o["--nesterov"] = c->add_flag("--nesterov", v.optimizer.nesterov, "Nesterov momentum");
  o["--weight-decay"] = c->add_option("--weight-decay", v.optimizer.weight_decay,
                                      "L2 weight decay added to the gradient")
                            ->check(number_text());
  o["--eps"] =
      c->add_option("--eps", v.optimizer.eps, "Adam / RMSprop epsilon (PyTorch 1e-8, Keras 1e-7)")
          ->check(number_text());
  o["--keras-optim"] =
      c->add_flag("--keras-optim", f->keras_optim, "Keras's update formulas instead of PyTorch's");
  o["--schedule"] = c->add_option("--schedule", f->schedule,
                                  "constant, cosine, step:EVERY[:GAMMA], multistep:E1,E2[:GAMMA]");
  o["--l1"] = c->add_option("--l1", v.l1, "L1 penalty (loss term) on the net's weights")
                  ->check(number_text());
  o["--l2"] = c->add_option("--l2", v.l2, "L2 penalty (loss term) on the net's weights")
                  ->check(number_text());
  o["--level"] = c->add_option("--level", f->level,
                               "determinism level: portable, repeatable, fast or emulated");
  c->add_option("--fast-op", f->fast_ops, "run this op family at fast (repeatable flag)");
  c->add_option(
      "--emulated-op", f->emulated_ops,
      "emulate this implementation family at any level (repeatable flag): " + impl_family_names());
  o["--threads"] = c->add_option("--threads", v.threads, "CPU threads")->check(integer_text());
  o["--flush-subnormals"] = c->add_flag(
      "--flush-subnormals", v.flush_subnormals,
      "TensorFlow's CPU arithmetic: subnormal floats flushed to zero (FTZ+DAZ) in every thread");
  o["--device"] = c->add_option(
      "--device", f->device, "where the steps run: cpu (default) or cuda (bit-equal in portable)");
  o["--impl"] = c->add_option(
      "--impl", f->impl,
      "whose kernels a CUDA run uses: own (default) or vendor (cuBLAS matmul, cuDNN conv "
      "and batch norm; for comparison, never portable)");
  o["--seed"] =
      c->add_option("--seed", f->seed, "set the six algorithmic seeds below at once (not impl)");
  o["--init-seed"] = c->add_option("--init-seed", v.seeds.init, "weight initialisation seed");
  o["--order-seed"] = c->add_option("--order-seed", v.seeds.order, "data order (shuffle) seed");
  o["--augment-seed"] = c->add_option("--augment-seed", v.seeds.augment, "augmentation seed");
  o["--dropout-seed"] = c->add_option("--dropout-seed", v.seeds.dropout, "dropout seed");
  o["--label-noise-seed"] =
      c->add_option("--label-noise-seed", v.seeds.label_noise, "label noise seed");
  o["--split-seed"] =
      c->add_option("--split-seed", v.seeds.split, "train/test split seed (tabular data)");
  o["--impl-seed"] = c->add_option(
      "--impl-seed", v.seeds.impl,
      "implementation seed: which implementation each emulated family runs (--level emulated)");
  c->add_flag("--no-metrics", f->no_metrics, "skip the BUTTER series and per-class accuracy");
  c->add_option("--record", f->record,
                "write the JSON run record here (an existing file is refused without --force)");
  c->add_option("--checkpoint", f->checkpoint,
                "safetensors checkpoint written at each epoch end (an existing file is refused "
                "without --resume or --force)");
  c->add_option("--checkpoint-every", f->checkpoint_every, "also every N steps")
      ->check(integer_text(0));
  c->add_flag(
      "--resume", f->resume,
      "resume from --checkpoint if it exists (refused when its settings differ from this run's; "
      "only --epochs may be raised)");
  c->add_option("--stop-after", f->stop_after,
                "stop once this many steps are done, after checkpointing (0: before the first)")
      ->check(integer_text(0));
  c->add_flag("--force", f->force,
              "overwrite an existing --checkpoint (without --resume) or --record");
  c->add_option("--progress", f->progress,
                "progress line within an epoch: auto (on a terminal), on or off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  c->add_option("--doctor", f->doctor,
                "the training doctor: autotrainer (AutoTrainer's published rules) or detdl "
                "(docs/doctor.md); a diagnosis stops the run");
  c->add_flag("--doctor-watch", f->doctor_watch,
              "diagnose without stopping: the run trains to the end, bit for bit as without");
  c->add_option("--doctor-theta", f->doctor_theta, "the doctor's accuracy target (0.7)")
      ->check(number_text());
  c->add_flag("--repair", f->repair,
              "after a diagnosis, try AutoTrainer's repairs in order, each a fresh run with a "
              "fresh doctor, until one trains without a problem (docs/doctor.md)");
  c->add_option("--repair-seed", f->repair_seed,
                "seed of the repairs' random choices (initialisers, clip values, momentum)")
      ->check(integer_text(0));
  c->add_option("--monitor", f->monitor,
                "probe gradients, weights and dead units every N epochs into the record")
      ->check(integer_text(1, nets::kMaxEpochs));
  c->add_flag("--print-config", f->print_config, "print the experiment as JSON and exit");
  c->add_flag("--quiet", f->quiet, "print only the final line");
  c->callback([f] { run_train(*f); });
}

void add_hash_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* c =
      app.add_subcommand("hash", "print the weight hash stored in a checkpoint and verify it");
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
      throw std::runtime_error("checkpoint " + *path +
                               ": weight hash does not match the one recorded");
    }
    std::printf("\n");
  });
}

}  // namespace detdl::tools
