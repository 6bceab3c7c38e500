// The training doctor's detectors (doctor/detect.h): AutoTrainer's rules as its code has
// them (the helpers against hand-worked series, the check schedule, the 30% gate, the
// priority order, the even-index gradient ratio) and detdl's (certain signals at once, the
// layer named); a live doctor and a replayed record agree; a watched run is the run without.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "doctor/detect.h"
#include "doctor/live.h"
#include "nets/experiment.h"

namespace detdl::doctor {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

MonitorStats probe(std::vector<double> grad_norms, double zero_share = 0.0,
                   std::vector<double> dead = {}) {
  MonitorStats m;
  m.rows = 32;
  m.zero_grad_share = zero_share;
  for (std::size_t i = 0; i < grad_norms.size(); ++i) {
    ParamProbe p;
    p.name = std::to_string(i / 2) + (i % 2 == 0 ? ".weight" : ".bias");
    p.dims = i % 2 == 0 ? 2 : 1;
    p.size = 10;
    p.grad_norm = grad_norms[i];
    p.weight_norm = 1.0;
    m.params.push_back(p);
  }
  for (std::size_t i = 0; i < dead.size(); ++i)
    m.activations.push_back({static_cast<std::int64_t>(i), "relu", 8, dead[i]});
  return m;
}

// Feeds epochs 0..n-1 with accuracy acc(e) and the same probe at every epoch; returns the
// diagnosis and its epoch.
std::optional<Diagnosis> feed(Doctor& d, std::int64_t n,
                              const std::function<double(std::int64_t)>& acc, const MonitorStats* m,
                              const std::function<double(std::int64_t)>& loss = {}) {
  for (std::int64_t e = 0; e < n; ++e) {
    EpochView v;
    v.epoch = e;
    v.train_acc = v.held_acc = acc(e);
    v.train_loss = v.held_loss = loss ? loss(e) : 1.0 / (1.0 + e);
    v.probe = m;
    if (auto r = d.observe(v)) return r;
  }
  return std::nullopt;
}

TEST(DoctorRules, OscillationPairsAndMaxRiseAsAutoTrainerCounts) {
  // Interior points only, non-strict: maxima 0.9 (i=1), 0.9 (i=3); minima 0.5 (i=2), 0.5 (i=4).
  const std::vector<double> a{0.1, 0.9, 0.5, 0.9, 0.5, 0.6};
  EXPECT_EQ(oscillation_pairs(a, 0.03, false), 2);
  EXPECT_EQ(oscillation_pairs(a, 0.5, false), 0);  // 0.4 apart
  // A flat run counts every interior point as both a maximum and a minimum, 0 apart.
  EXPECT_EQ(oscillation_pairs({0.5, 0.5, 0.5, 0.5}, 0.03, false), 0);
  // Relative (detdl, on the loss): 0.2 vs 0.1 is 50% of 0.2.
  EXPECT_EQ(oscillation_pairs({0.3, 0.2, 0.1, 0.2, 0.1}, 0.4, true), 1);
  EXPECT_DOUBLE_EQ(max_rise({0.5, 0.4, 0.45, 0.2}), 0.45 - 0.4);
  EXPECT_DOUBLE_EQ(max_rise({0.5, 0.4, 0.3}), 0.0);
  EXPECT_DOUBLE_EQ(max_rise({}), 0.0);
}

TEST(DoctorRules, AutoTrainerChecksEveryThirdEpochAfterTheGate) {
  // A vanishing gradient from the start, accuracy stuck at 0.1: 10 epochs, gate at 3 seen.
  const MonitorStats m = probe({1e-6, 0, 1e-2, 0});  // ratio 1e-4 < 1e-3, first norm < 1e-4
  Doctor d(DoctorKind::autotrainer, 10);
  const auto r = feed(
      d, 10, [](std::int64_t) { return 0.1; }, &m);
  ASSERT_TRUE(r);
  // Checks after epochs 0 and 3 (0-based); at epoch 0 only 1 of 10 epochs is seen (< 30%).
  EXPECT_EQ(r->epoch, 3);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0], Problem::vanishing_gradient);
  // The reason states both tests with their thresholds (ratio 1e-4 < beta1, norm < beta2).
  EXPECT_NE(r->reason.find("gradient ratio 0.0001 < 0.001 and first gradient norm 1e-06 < 0.0001"),
            std::string::npos)
      << r->reason;
  // The same signals with a healthy accuracy: no gradient problem is reported.
  Doctor ok(DoctorKind::autotrainer, 10);
  EXPECT_FALSE(feed(
      ok, 10, [](std::int64_t e) { return 0.72 + 0.02 * e; }, &m));
  // Both VG conditions are needed: a small ratio with a first norm above beta2 is not VG.
  const MonitorStats big = probe({2e-4, 0, 1.0, 0});
  Doctor slow(DoctorKind::autotrainer, 10);
  const auto s = feed(
      slow, 10, [](std::int64_t) { return 0.1; }, &big);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->problems[0], Problem::slow_convergence);
}

TEST(DoctorRules, AutoTrainerPriorityAndTheEvenIndexRatio) {
  // Dying ReLU beats exploding beats vanishing: zero share 0.8 and ratio 100 together.
  const MonitorStats both = probe({100, 0, 1, 0}, 0.8);
  Doctor d(DoctorKind::autotrainer, 4);
  auto r = feed(
      d, 4, [](std::int64_t) { return 0.2; }, &both);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::dying_relu);
  // The ratio is of arrays 0 and 2 (Keras's kernel, bias, kernel, bias): the biases' norms
  // (indices 1 and 3) do not enter it.
  const MonitorStats explode = probe({100, 1e-9, 1, 1e9});
  Doctor e(DoctorKind::autotrainer, 4);
  r = feed(
      e, 4, [](std::int64_t) { return 0.2; }, &explode);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::exploding_gradient);
  EXPECT_EQ(r->epoch, 3);  // gate: 30% of 4 epochs = 1.2 seen, the check after epoch 3
  // A last kernel with zero gradient: numpy's x / 0 = inf > 70.
  const MonitorStats zero_last = probe({1, 0, 0, 0});
  Doctor z(DoctorKind::autotrainer, 4);
  r = feed(
      z, 4, [](std::int64_t) { return 0.2; }, &zero_last);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::exploding_gradient);
}

TEST(DoctorRules, OscillationOnlyWhenTheAccuracyIsFine) {
  const MonitorStats m = probe({1, 0, 1, 0});
  auto zigzag = [](std::int64_t e) { return e % 2 == 0 ? 0.80 : 0.90; };
  Doctor d(DoctorKind::autotrainer, 12);
  const auto r = feed(d, 12, zigzag, &m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::oscillating_loss);
  // detdl looks at the loss: a zigzag loss with a steady accuracy is OL there, not for
  // AutoTrainer.
  auto steady = [](std::int64_t e) { return 0.75 + 0.02 * e; };
  auto zigzag_loss = [](std::int64_t e) { return e % 2 == 0 ? 0.5 : 0.8; };
  Doctor at(DoctorKind::autotrainer, 12);
  EXPECT_FALSE(feed(at, 12, steady, &m, zigzag_loss));
  Doctor dd(DoctorKind::detdl, 12);
  const auto q = feed(dd, 12, steady, &m, zigzag_loss);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->problems[0], Problem::oscillating_loss);
}

TEST(DoctorRules, NonFiniteIsExplodingAtTheNextCheckOrAtOnce) {
  const MonitorStats m = probe({1, 0, 1, 0});
  auto acc = [](std::int64_t) { return 0.9; };
  auto nan_at_1 = [](std::int64_t e) { return e >= 1 ? kNaN : 1.0; };
  Doctor at(DoctorKind::autotrainer, 30);
  auto r = feed(at, 30, acc, &m, nan_at_1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::exploding_gradient);
  EXPECT_EQ(r->epoch, 3);  // AutoTrainer: the next check after epoch 1, no gate
  Doctor dd(DoctorKind::detdl, 30);
  r = feed(dd, 30, acc, &m, nan_at_1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 1);  // detdl: at once
  // A NaN gradient in the probe.
  MonitorStats bad = m;
  bad.nonfinite_grad = true;
  Doctor g(DoctorKind::autotrainer, 30);
  r = feed(g, 30, acc, &bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 0);
}

TEST(DoctorRules, DetdlReportsADeadLayerEarlyAndNamesIt) {
  // Layer 1 of 2 fully dead from epoch 0: certain once dead at two checks in a row (epochs
  // 0 and 1), reported long before the 30% gate.
  const MonitorStats m = probe({1, 0, 1, 0}, 0.1, {0.2, 1.0});
  Doctor d(DoctorKind::detdl, 100);
  auto r = feed(
      d, 100, [](std::int64_t) { return 0.1; }, &m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 1);
  EXPECT_EQ(r->problems[0], Problem::dying_relu);
  EXPECT_NE(r->layer.find("activation 1"), std::string::npos) << r->layer;
  // 75% dead: not certain, waits for the gate and the accuracy target; AutoTrainer's
  // zero-gradient share (0.1) does not see it at all.
  const MonitorStats part = probe({1, 0, 1, 0}, 0.1, {0.75});
  Doctor p(DoctorKind::detdl, 10);
  r = feed(
      p, 10, [](std::int64_t) { return 0.1; }, &part);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 2);
  EXPECT_EQ(r->problems[0], Problem::dying_relu);
  Doctor at(DoctorKind::autotrainer, 10);
  r = feed(
      at, 10, [](std::int64_t) { return 0.1; }, &part);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::slow_convergence);
}

TEST(DoctorRules, DetdlJudgesAStallOverTwoChanges) {
  // An oscillation's first swing: 0.89, then 0.74 (no rise), then back up. With a 6-epoch
  // budget the 30% gate opens at 2 epochs seen; detdl, checking every epoch, used to call
  // the swing slow there. It now waits for a second change, which rises.
  const std::vector<double> swing{0.89, 0.74, 0.84, 0.80, 0.85, 0.80};
  auto acc = [&](std::int64_t e) { return swing[static_cast<std::size_t>(e)]; };
  const MonitorStats quiet = probe({1, 0, 1, 0});
  Doctor dd(DoctorKind::detdl, 6);
  EXPECT_FALSE(feed(dd, 6, acc, &quiet));
  // A stall: SC once two changes are seen (0-based epoch 2), not after one.
  Doctor st(DoctorKind::detdl, 6);
  const auto r = feed(
      st, 6, [](std::int64_t e) { return 0.3 + 0.001 * static_cast<double>(e); }, &quiet);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::slow_convergence);
  EXPECT_EQ(r->epoch, 2);
}

TEST(DoctorRules, DetdlChainNamesTheLayerWhereTheGradientVanishes) {
  // Three kernels: relative gradients 1e-5, 1, 1: the first layer vanishes.
  const MonitorStats m = probe({1e-5, 0, 1, 0, 1, 0});
  Doctor d(DoctorKind::detdl, 10);
  const auto r = feed(
      d, 10, [](std::int64_t) { return 0.1; }, &m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->problems[0], Problem::vanishing_gradient);
  EXPECT_EQ(r->layer, "0.weight");
}

TEST(DoctorRules, NamesParse) {
  EXPECT_EQ(parse_problem("VG"), Problem::vanishing_gradient);
  EXPECT_EQ(parse_problem("dying_relu"), Problem::dying_relu);
  EXPECT_FALSE(parse_problem("overfit"));
  EXPECT_EQ(parse_doctor("autotrainer"), DoctorKind::autotrainer);
  EXPECT_FALSE(parse_doctor("AutoTrainer"));
  EXPECT_THROW(Doctor(DoctorKind::detdl, 0), std::invalid_argument);
}

nets::Experiment mlp_run(float lr) {
  nets::Experiment e;
  e.net = "mlp";
  e.data = "blobs";
  e.epochs = 10;
  e.schedule.base_lr = lr;
  return e;
}

// A live doctor that only watches leaves the run as it is (its hash is the undoctored
// twin's), and replaying its record gives the diagnosis the live doctor made.
TEST(LiveDoctor, WatchingChangesNothingAndTheRecordReplays) {
  for (float lr : {1e-6f, 0.01f, 10.0f}) {
    for (DoctorKind kind : {DoctorKind::autotrainer, DoctorKind::detdl}) {
      SCOPED_TRACE(testing::Message() << "lr " << lr << " " << doctor_name(kind));
      const nets::Experiment e = mlp_run(lr);
      const nets::RunOutput plain = nets::run_experiment(e);
      DoctorOptions o;
      o.kind = kind;
      o.stop = false;
      LiveDoctor live(e, o);
      nets::RunOptions ro;
      live.attach(ro);
      const nets::RunOutput watched = nets::run_experiment(e, ro);
      EXPECT_EQ(watched.result.weight_hash, plain.result.weight_hash);
      EXPECT_FALSE(watched.result.stopped_early);
      const auto replay = diagnose_record(watched.record, kind, o.params, "record");
      ASSERT_EQ(replay.has_value(), live.diagnosis().has_value());
      if (replay) {
        EXPECT_EQ(replay->epoch, live.diagnosis()->epoch);
        EXPECT_EQ(replay->problems, live.diagnosis()->problems);
        EXPECT_EQ(replay->reason, live.diagnosis()->reason);
      }
      if (lr == 1e-6f) {  // far too small: slow convergence, for both
        ASSERT_TRUE(live.diagnosis());
        EXPECT_EQ(live.diagnosis()->problems[0], Problem::slow_convergence);
      }
      if (lr == 0.01f) {
        EXPECT_FALSE(live.diagnosis().has_value());
      }
    }
  }
}

TEST(LiveDoctor, ADiagnosisStopsTheRunAtItsEpoch) {
  const nets::Experiment e = mlp_run(1e-6f);
  DoctorOptions o;
  o.kind = DoctorKind::autotrainer;
  LiveDoctor live(e, o);
  nets::RunOptions ro;
  live.attach(ro);
  const nets::RunOutput out = nets::run_experiment(e, ro);
  ASSERT_TRUE(live.diagnosis());
  EXPECT_TRUE(out.result.stopped_early);
  EXPECT_EQ(static_cast<std::int64_t>(out.result.epochs.size()), live.diagnosis()->epoch + 1);
  EXPECT_EQ(out.record.value("stopped_after_epoch", false), true);
  // The probes are in the record at AutoTrainer's check epochs (1 and 4, 1-based).
  EXPECT_TRUE(out.record["epochs"][0].contains("monitor"));
  EXPECT_FALSE(out.record["epochs"][1].contains("monitor"));
}

// detdl's probes cost at most 2% of the training: on short epochs they are spaced out (a
// function of the run's shape only), and the record carries them at those epochs.
TEST(LiveDoctor, DetdlSpacesItsProbesOnShortEpochs) {
  MonitorConfig m;
  m.every = 1;
  m.budget = 0.02;  // a probe of P steps: P / (0.02 x S) epochs apart
  EXPECT_NEAR(m.probe_steps(256), (256.0 + 256.0 / 3) / 256 + 0.2, 1e-12);  // 1.53
  EXPECT_NEAR(m.probe_steps(32), (32.0 + 256.0 / 3) / 32 + 0.2, 1e-12);     // 3.87
  EXPECT_EQ(m.spacing(16, 256), 5);                                         // BUTTER's wine epochs
  EXPECT_EQ(m.spacing(50, 256), 2);
  EXPECT_EQ(m.spacing(80, 32), 3);    // small batches: the dead-unit forwards weigh more
  EXPECT_EQ(m.spacing(469, 128), 1);  // MNIST
  m.every = 3;                        // never closer than `every`
  EXPECT_EQ(m.spacing(469, 128), 3);
  EXPECT_EQ(m.spacing(16, 256), 5);
  m.budget = 0.0;
  EXPECT_EQ(m.spacing(16, 256), 3);
  m.every = 0;
  EXPECT_EQ(m.spacing(16, 256), 0);
  DoctorParams p;
  EXPECT_EQ(p.monitor(DoctorKind::autotrainer).budget, 0.0);  // AutoTrainer's schedule
  EXPECT_EQ(p.monitor(DoctorKind::detdl).budget, 0.02);
  p.every = 2;
  EXPECT_EQ(p.monitor(DoctorKind::detdl).budget, 0.0);  // an explicit schedule is kept

  const nets::Experiment e = mlp_run(0.01f);
  DoctorOptions o;
  o.kind = DoctorKind::detdl;
  o.stop = false;
  LiveDoctor live(e, o);
  nets::RunOptions ro;
  live.attach(ro);
  const nets::RunOutput out = nets::run_experiment(e, ro);
  const auto epochs = static_cast<std::int64_t>(out.result.epochs.size());
  ASSERT_EQ(epochs, e.epochs);
  const std::int64_t steps = out.result.steps / epochs;
  const std::int64_t every = o.params.monitor(DoctorKind::detdl).spacing(steps, e.batch_size);
  EXPECT_GT(every, 1) << steps << " steps per epoch";
  for (std::int64_t i = 0; i < epochs; ++i)
    EXPECT_EQ(out.record["epochs"][i].contains("monitor"), i % every == 0) << "epoch " << i;
  EXPECT_EQ(live.record_entry()["probe_budget"], 0.02);
}

}  // namespace
}  // namespace detdl::doctor
