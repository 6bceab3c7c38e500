// Resume refuses every checkpoint it cannot prove matches the run (issue 9, items 1-3, 15):
// each field of the metadata is checked against the tensors and the config, even when the
// file's CRCs were fixed up after an edit (save_safetensors recomputes them), so a forged or
// foreign checkpoint is refused with the file and field named, never resumed into bits
// that match no run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/checkpoint.h"
#include "engine/train.h"
#include "nets/simple.h"
#include "nets/synthetic.h"

using namespace detdl;
namespace fs = std::filesystem;

namespace {

struct RunParts {
  std::shared_ptr<Module> model;
  Dataset train;
  TrainConfig cfg;
};

// 200 rows in batches of 32: 7 steps per epoch, 14 in all.
RunParts make_setup(const std::string& ckpt) {
  RunParts s;
  s.train = nets::make_blobs(200, 8, 3, 1.5f, 5);
  s.model = nets::make_mlp(8, 16, 3, 0.0f);
  s.cfg.epochs = 2;
  s.cfg.batch_size = 32;
  s.cfg.optimizer.momentum = 0.9f;
  s.cfg.schedule.base_lr = 0.05f;
  s.cfg.checkpoint_path = ckpt;
  return s;
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_resume_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// A checkpoint written at step `stop` (mid-epoch when stop % 7 != 0).
std::string checkpoint_at(const std::string& name, std::int64_t stop) {
  const std::string p = temp_path(name);
  fs::remove(p);
  RunParts s = make_setup(p);
  s.cfg.stop_after_steps = stop;
  Trainer(*s.model, s.cfg).fit(s.train, nullptr);
  return p;
}

// Rewrites the checkpoint through `edit`; save_safetensors writes fresh, valid CRCs.
void forge(const std::string& path, const std::function<void(TensorFile&)>& edit) {
  TensorFile f = load_safetensors(path);
  edit(f);
  save_safetensors(path, f);
}

// The message of the error resuming from `path` with setup `s` gives; "" if it resumed.
std::string resume_error(RunParts s) {
  try {
    Trainer(*s.model, s.cfg).fit(s.train, nullptr, /*resume=*/true);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string never_stopped_hash() {
  RunParts s = make_setup("");
  return Trainer(*s.model, s.cfg).fit(s.train, nullptr).weight_hash;
}

}  // namespace

TEST(ResumeChecks, AnUntouchedCheckpointResumesToTheNeverStoppedHash) {
  const std::string p = checkpoint_at("ok.st", 10);
  RunParts s = make_setup(p);
  const TrainResult r = Trainer(*s.model, s.cfg).fit(s.train, nullptr, true);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.first_step, 10);
  EXPECT_EQ(r.weight_hash, never_stopped_hash());
}

TEST(ResumeChecks, EditedMetadataFailsTheMetadataCrc) {
  const std::string p = checkpoint_at("crc.st", 10);
  // Edit the header text only, keeping its length: the data CRC still holds.
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = bytes.find("\"train.step\":\"10\"");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 17, "\"train.step\":\"-1\"");
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  EXPECT_NE(err.find("metadata"), std::string::npos) << err;
}

TEST(ResumeChecks, NegativeStepIsRefusedNamingTheField) {
  const std::string p = checkpoint_at("neg.st", 10);
  forge(p, [](TensorFile& f) { f.metadata["train.step"] = "-1"; });
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find("train.step"), std::string::npos) << err;
  EXPECT_NE(err.find(p), std::string::npos) << err;
}

TEST(ResumeChecks, StepPastTheRunsLastStepIsRefused) {
  const std::string p = checkpoint_at("past.st", 10);
  forge(p, [](TensorFile& f) {
    f.metadata["train.step"] = "99";
    f.metadata["optim.steps"] = "99";
  });
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find("train.step is 99, past this run's last step 14"), std::string::npos) << err;
}

TEST(ResumeChecks, StepThatDisagreesWithTheOptimizerIsRefused) {
  const std::string p = checkpoint_at("optim.st", 10);
  forge(p, [](TensorFile& f) { f.metadata["train.step"] = "9"; });
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find("optim.steps"), std::string::npos) << err;
}

TEST(ResumeChecks, NonIntegerStepIsRefused) {
  const std::string p = checkpoint_at("text.st", 10);
  forge(p, [](TensorFile& f) { f.metadata["train.step"] = "10abc"; });
  EXPECT_NE(resume_error(make_setup(p)).find("train.step is '10abc', not an integer"),
            std::string::npos);
}

TEST(ResumeChecks, CorrectCountAndLossesMustCoverTheRowsSeen) {
  const std::string p =
      checkpoint_at("count.st", 10);  // step 10 = batch 3 of epoch 2: 96 rows seen
  forge(p, [](TensorFile& f) { f.metadata["train.epoch_correct"] = "97"; });
  EXPECT_NE(resume_error(make_setup(p)).find("train.epoch_correct is 97, outside [0, 96]"),
            std::string::npos);
  const std::string q = checkpoint_at("losses.st", 10);
  forge(q, [](TensorFile& f) {
    for (auto& [name, t] : f.tensors)
      if (name == "train.batch_losses") t = Tensor::from_vector({2}, {1.0f, 2.0f});
  });
  EXPECT_NE(resume_error(make_setup(q)).find("train.batch_losses"), std::string::npos);
}

TEST(ResumeChecks, WeightsThatNoLongerMatchTheirHashAreRefused) {
  const std::string p = checkpoint_at("bytes.st", 10);
  forge(p, [](TensorFile& f) {
    for (auto& [name, t] : f.tensors)
      if (name.rfind("model.", 0) == 0 && t.numel() > 0) {
        t.f32()[0] = t.f32()[0] + 1.0f;  // a flipped byte; the CRC is recomputed by save
        break;
      }
  });
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find("model.hash"), std::string::npos) << err;
  EXPECT_NE(err.find("weights were changed"), std::string::npos) << err;
}

TEST(ResumeChecks, ChangedHyperparametersAreRefusedNamingEachField) {
  const std::string p = checkpoint_at("hyper.st", 10);
  RunParts s = make_setup(p);
  s.cfg.schedule.base_lr = 0.1f;
  s.cfg.batch_size = 64;
  s.cfg.optimizer.momentum = 0.5f;
  const std::string err = resume_error(s);
  EXPECT_NE(err.find("schedule.lr: checkpoint 0.05, this run 0.1"), std::string::npos) << err;
  EXPECT_NE(err.find("batch_size: checkpoint 32, this run 64"), std::string::npos) << err;
  EXPECT_NE(err.find("optimizer.momentum: checkpoint 0.9, this run 0.5"), std::string::npos) << err;
  RunParts t = make_setup(p);
  t.cfg.identity["data"] = "other";  // a caller's field (run_experiment: net, data, ...)
  EXPECT_NE(resume_error(t).find("does not record data"), std::string::npos);
}

// Fields recorded only when set (init_nudge, clip_value, flush_subnormals) are compared both
// ways: a checkpoint of the nudged run is not resumed by the run without the nudge.
TEST(ResumeChecks, AFieldOnlyTheCheckpointRecordsIsADifference) {
  const std::string p = temp_path("nudged.st");
  fs::remove(p);
  RunParts nudged = make_setup(p);
  nudged.cfg.init_nudge = 7;
  nudged.cfg.stop_after_steps = 10;
  Trainer(*nudged.model, nudged.cfg).fit(nudged.train, nullptr);
  const std::string err = resume_error(make_setup(p));
  EXPECT_NE(err.find("init_nudge: checkpoint 7, this run (none)"), std::string::npos) << err;
  RunParts again = make_setup(p);
  again.cfg.init_nudge = 7;
  EXPECT_EQ(resume_error(again), "");
}

TEST(ResumeChecks, RaisingEpochsTrainsTheSameRunLonger) {
  const std::string p = checkpoint_at("longer.st", 10);
  RunParts s = make_setup(p);
  s.cfg.epochs = 3;
  const TrainResult r = Trainer(*s.model, s.cfg).fit(s.train, nullptr, true);
  RunParts full = make_setup("");
  full.cfg.epochs = 3;
  EXPECT_EQ(r.weight_hash, Trainer(*full.model, full.cfg).fit(full.train, nullptr).weight_hash);
}

TEST(ResumeChecks, CheckpointWithoutIdentityOrCrcIsRefused) {
  const std::string p = checkpoint_at("old.st", 10);
  forge(p, [](TensorFile& f) {
    for (auto it = f.metadata.begin(); it != f.metadata.end();)
      it = it->first.rfind("id.", 0) == 0 ? f.metadata.erase(it) : std::next(it);
  });
  EXPECT_NE(resume_error(make_setup(p)).find("does not record"), std::string::npos);
}

TEST(ResumeChecks, StopAfterZeroStopsBeforeTheFirstStep) {
  const std::string p = checkpoint_at("zero.st", 0);
  const TensorFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("train.step"), "0");
  RunParts s = make_setup(p);
  const TrainResult r = Trainer(*s.model, s.cfg).fit(s.train, nullptr, true);
  EXPECT_EQ(r.first_step, 0);
  EXPECT_EQ(r.weight_hash, never_stopped_hash());
}

TEST(ResumeChecks, ACompletedRunResumesToItsOwnStepCount) {
  const std::string p = temp_path("done.st");
  fs::remove(p);
  RunParts s = make_setup(p);
  const TrainResult first = Trainer(*s.model, s.cfg).fit(s.train, nullptr);
  RunParts again = make_setup(p);
  const TrainResult r = Trainer(*again.model, again.cfg).fit(again.train, nullptr, true);
  EXPECT_EQ(r.steps, 14);  // not 0: the run is complete at step 14
  EXPECT_EQ(r.weight_hash, first.weight_hash);
}
